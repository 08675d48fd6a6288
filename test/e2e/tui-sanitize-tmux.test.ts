/**
 * A message full of escape sequences and bidi controls, shown by the real TUI in tmux: the
 * raw bytes the TUI writes to the terminal (tmux pipe-pane) hold none of the sender's
 * controls, the screen shows them as visible escapes, and the window title stays.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";
import { Tmux } from "../helpers/tmux.js";

const ROOT = resolve(import.meta.dirname, "../..");
const ARTIFACTS = join(ROOT, "test/artifacts/tui");
const EVIL = "launch \x1b]0;pwned\x07\x1b[2J\x1b[31mred \u202eexe.txt\u2066 \x9b1m end";

describe("the TUI shows untrusted text without letting it drive the terminal", { timeout: 900_000 }, () => {
  let stack: RealStack;
  const base = mkdtempSync(join(tmpdir(), "zmqchat-tui-sanitize-"));
  const log = join(base, "dan-pane.raw");
  const tmux = new Tmux(ARTIFACTS);

  before(async () => {
    assert.ok(existsSync(ZMQCHAT_BIN), "build first (npm run build)");
    stack = await startStack({ servers: 1 });
    for (const u of ["carol", "dan"])
      assert.equal((await stack.cli(u, ["register"], { home: join(base, u) })).code, 0);
    const sent = await stack.cli("carol", ["send", "dan", EVIL], { home: join(base, "carol") });
    assert.equal(sent.code, 0, sent.stderr);
  });

  after(async () => {
    tmux.kill();
    await stack?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it("no raw ESC, BEL, C1 or bidi control of a message reaches the terminal; the screen shows them visibly", async () => {
    tmux.newSession("dan", { width: 110, height: 30, env: { LANG: "C.UTF-8" } });
    tmux.tmux("pipe-pane", "-t", "dan", "-o", `cat >> ${JSON.stringify(log)}`);

    // Positive control: raw bytes written to the pane are in the log, and an OSC retitles the window.
    tmux.run("dan", "printf '\\033]0;control\\007'");
    await waitFor("the control title", () => tmux.show("dan", "#{pane_title}") === "control");
    await waitFor("the control bytes in the log", () =>
      existsSync(log) ? readFileSync(log, "latin1").includes("\x1b]0;control\x07") : false,
    );
    const offset = statSync(log).size;

    tmux.run(
      "dan",
      [
        "env -u ZMQCHAT_USER -u ZMQCHAT_ENDPOINT CI=0 LANG=C.UTF-8 TERM=screen-256color ZMQCHAT_BELL=false",
        `${JSON.stringify(process.execPath)} ${JSON.stringify(ZMQCHAT_BIN)} --home ${JSON.stringify(join(base, "dan"))}`,
        `--user dan --endpoint ${stack.endpoint}`,
      ].join(" "),
    );
    await tmux.waitFor("dan", /dan ● online/, { what: "dan online", timeoutMs: 30_000 });
    tmux.keys("dan", "C-n");
    await tmux.waitFor("dan", "New chat with");
    tmux.type("dan", "carol");
    tmux.keys("dan", "Enter");
    const screen = await tmux.waitFor("dan", (s) => s.includes("pwned") && s.includes("end"), {
      what: "carol's message on dan's screen",
      timeoutMs: 30_000,
    });
    tmux.save("dan", "sanitized-message");
    assert.ok(screen.includes("\\x1b]0;pwned\\x07"), screen);
    assert.ok(screen.includes("\\u202e") && screen.includes("\\x9b"), screen);
    assert.notEqual(tmux.show("dan", "#{pane_title}"), "pwned", "the message did not retitle the window");

    const raw = readFileSync(log).subarray(offset);
    const text = raw.toString("utf8");
    assert.ok(
      text.includes("pwned") && text.includes("exe.txt"),
      "the TUI drew the message (the log sees it)",
    );
    assert.ok(!text.includes("\x1b]0;pwned"), "no OSC from the message");
    assert.ok(!raw.includes(0x07), "no BEL");
    assert.ok(!text.includes("\x1b[2J\x1b[31mred"), "no screen clear from the message");
    for (const bidi of ["\u202e", "\u2066", "\u200e", "\u200f"])
      assert.ok(!text.includes(bidi), "no bidi control");
    assert.ok(!text.includes("\u009b"), "no C1 CSI");
    tmux.keys("dan", "C-c");
  });
});
