/**
 * Message actions in the real TUI (issue 17), driven in tmux on a real local stack: alice and
 * bob in two TUIs. The "new messages" divider, a reply with its quote, a reaction appearing at
 * the other side, an edit, a delete, and a non-author's edit refused. Screens are kept under
 * test/artifacts/tui-actions/.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { UP_TIMEOUT_MS } from "../helpers/cli.js";
import { freeBasePort } from "../helpers/stack.js";
import { Tmux } from "../helpers/tmux.js";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = join(ROOT, "dist/bin/zmqchat.js");
const ARTIFACTS = join(ROOT, "test/artifacts/tui-actions");

function cli(home: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, "--home", home, ...args],
      {
        env: { ...process.env, ZMQCHAT_LOG_LEVEL: "warn" },
        timeout: args[0] === "up" ? UP_TIMEOUT_MS : 30_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

describe("message actions in the TUI, in tmux on a real local stack", { timeout: 900_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), "zmqchat-tui-actions-"));
  const stackHome = join(base, "stack");
  const homes = { alice: join(base, "alice"), bob: join(base, "bob") };
  const tmux = new Tmux(ARTIFACTS);
  let endpoint = "";
  let shot = 0;
  const save = (target: string, name: string) =>
    tmux.save(target, `${String(++shot).padStart(2, "0")}-${name}`);

  const tuiLine = (home: string, user: string) =>
    [
      `env -u ZMQCHAT_USER -u ZMQCHAT_ENDPOINT CI=0 LANG=C.UTF-8 TERM=screen-256color ZMQCHAT_BELL=false`,
      `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} --home ${JSON.stringify(home)}`,
      `--user ${user} --endpoint ${endpoint}`,
    ].join(" ");

  before(async () => {
    assert.ok(existsSync(BIN), `build first (npm run build): ${BIN} is missing`);
    const port = await freeBasePort();
    endpoint = `tcp://127.0.0.1:${port}`;
    const up = await cli(stackHome, ["up", "--detach", "--port", String(port), "--servers", "2"]);
    assert.equal(up.code, 0, `zmqchat up failed: ${up.stderr}`);
  });

  after(async () => {
    tmux.kill();
    await cli(stackHome, ["down"]);
    rmSync(base, { recursive: true, force: true });
  });

  it("✓✓ delivered and ✔✔ read marks, presence, typing, divider, reply with its quote, a reaction seen by the other side, an edit, a delete; a non-author's edit refused", async () => {
    const env = { LANG: "C.UTF-8" };
    for (const who of ["alice", "bob"] as const) {
      tmux.newSession(who, { width: 120, height: 36, env });
      tmux.run(who, tuiLine(homes[who], who));
      await tmux.waitFor(who, new RegExp(`${who} ● online`), { what: `${who} online` });
    }

    // alice writes twice; bob has two unread.
    tmux.keys("alice", "C-n");
    await tmux.waitFor("alice", "New chat with");
    tmux.type("alice", "bob");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("alice", "Message bob");
    tmux.type("alice", "first from alice");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("alice", /✓\s+alice\s+first from alice/);
    tmux.type("alice", "second from alice");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("alice", /✓\s+alice\s+second from alice/);
    await tmux.waitFor("bob", "2 unread", { what: "two unread on bob's side" });
    // bob's TUI stored them (delivered, ✓✓) but does not show them yet (not read).
    await tmux.waitFor("alice", /✓✓\s+alice\s+first from alice/, { what: "✓✓ delivered on alice's screen" });
    save("alice", "alice-delivered");
    assert.doesNotMatch(tmux.capture("alice"), /✔✔/, "not read before bob opens the chat");
    // Presence: bob's TUI shares "online"; alice's Contacts pane shows the dot.
    await tmux.waitFor("alice", /● ▸?bob/, { what: "bob's presence dot in alice's Contacts" });

    // bob opens the chat: the divider sits above the first unread message.
    tmux.type("bob", "/msg alice");
    tmux.keys("bob", "Enter");
    const opened = await tmux.waitFor("bob", /new messages[\s\S]*first from alice[\s\S]*second from alice/, {
      what: "the new-messages divider above alice's first message",
    });
    save("bob", "bob-divider");
    assert.doesNotMatch(opened, /2 unread/);
    // bob's screen shows them now: read (✔✔) on alice's.
    await tmux.waitFor("alice", /✔✔\s+alice\s+first from alice/, { what: "✔✔ read on alice's screen" });
    save("alice", "alice-read");

    // bob replies to alice's first message: History (Shift-Tab), ↑↑ selects it, r replies.
    tmux.keys("bob", "BTab");
    await tmux.waitFor("bob", "[History]");
    tmux.keys("bob", "Up");
    tmux.keys("bob", "Up");
    await tmux.waitFor("bob", /r: reply · e: edit/, { what: "the hint for a selected message" });
    tmux.type("bob", "r");
    await tmux.waitFor("bob", "↪ Replying to alice: first from alice", {
      what: "the quote above bob's composer",
    });
    save("bob", "bob-replying");
    tmux.type("bob", "reply from bob");
    await tmux.waitFor("alice", "bob is typing…", { what: "bob typing on alice's screen" });
    save("alice", "alice-sees-typing");
    tmux.keys("bob", "Enter");
    const quoted = await tmux.waitFor("alice", /↪ alice: first from alice[\s\S]*reply from bob/, {
      what: "the quote above bob's reply on alice's screen",
    });
    assert.match(quoted, /bob\s+↪ alice: first from alice/);
    save("alice", "alice-sees-reply");
    await tmux.waitFor("bob", /bob\s+↪ alice: first from alice/, { what: "the quote on bob's own screen" });
    // bob's message ends his "typing…".
    await tmux.waitFor("alice", (s) => !s.includes("is typing"), {
      what: "typing gone once bob's reply came",
    });
    // Typing that stops without a message goes away on its own.
    // (Signals are throttled, one per 3 s: bob goes on typing, a key per look, until one goes out.)
    const deadline = Date.now() + 30_000;
    while (!tmux.capture("alice").includes("bob is typing…")) {
      assert.ok(Date.now() < deadline, "bob typing again on alice's screen");
      tmux.type("bob", "x");
      await new Promise((r) => setTimeout(r, 250));
    }
    tmux.keys("bob", "C-u");
    await tmux.waitFor("alice", (s) => !s.includes("is typing"), { what: "typing gone after bob stopped" });

    // alice reacts to bob's reply (the newest): History, ↑, +, 1 (👍); bob sees it.
    tmux.keys("alice", "BTab");
    await tmux.waitFor("alice", "[History]");
    tmux.keys("alice", "Up");
    await tmux.waitFor("alice", /r: reply · e: edit/);
    // A non-author's edit is refused with a clear status line, and nothing is sent.
    tmux.type("alice", "e");
    await tmux.waitFor("alice", "only its author may edit a message: this one is bob's");
    save("alice", "alice-edit-refused");
    tmux.type("alice", "+");
    await tmux.waitFor("alice", "React:", { what: "the emoji picker" });
    save("alice", "alice-picker");
    tmux.type("alice", "1");
    await tmux.waitFor("bob", /👍 alice/, { what: "alice's reaction on bob's screen" });
    save("bob", "bob-sees-reaction");
    await tmux.waitFor("alice", /👍 alice/, { what: "alice's reaction on her own screen" });

    // alice edits her first message: ↑↑ (past "second"), e, the composer holds its text.
    tmux.keys("alice", "Up");
    tmux.keys("alice", "Up");
    tmux.type("alice", "e");
    await tmux.waitFor("alice", "✎ Editing your message", { what: "the edit banner" });
    tmux.keys("alice", "C-u");
    tmux.type("alice", "first, edited");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("bob", /alice\s+first, edited \(edited\)/, { what: "the edit on bob's screen" });
    // The quote above bob's reply follows the edit.
    await tmux.waitFor("bob", /↪ alice: first, edited/, { what: "the quote follows the edit" });
    save("bob", "bob-sees-edit");

    // alice deletes her second message: History, ↑↑ (past bob's reply), d, y.
    tmux.keys("alice", "BTab");
    await tmux.waitFor("alice", "[History]");
    tmux.keys("alice", "Up");
    tmux.keys("alice", "Up");
    tmux.type("alice", "d");
    await tmux.waitFor("alice", /Delete for everyone\? "second from alice"/, { what: "the delete question" });
    tmux.type("alice", "y");
    await tmux.waitFor("bob", (s) => s.includes("(message deleted)") && !s.includes("second from alice"), {
      what: "the delete on bob's screen",
    });
    save("bob", "bob-sees-delete");
    await tmux.waitFor("alice", "(message deleted)");

    // The history on the command line agrees with what the screens show.
    const hist = await cli(homes.bob, [
      "--user",
      "bob",
      "--endpoint",
      endpoint,
      "history",
      "alice",
      "--json",
    ]);
    assert.equal(hist.code, 0, hist.stderr);
    const rows = hist.stdout
      .trim()
      .split("\n")
      .map(
        (l) =>
          JSON.parse(l) as {
            text: string;
            edited: string | null;
            deleted: boolean;
            replyTo: string | null;
            reactions: Record<string, string[]>;
            id: string;
          },
      );
    const first = rows.find((r) => r.text === "first, edited");
    assert.ok(first?.edited, "the edit is in the history");
    assert.ok(
      rows.some((r) => r.deleted && r.text === ""),
      "the delete is in the history",
    );
    const reply = rows.find((r) => r.text === "reply from bob");
    assert.equal(reply?.replyTo, first?.id);
    assert.deepEqual(reply?.reactions, { "👍": ["alice"] });
  });
});
