/**
 * The real TUI, driven in tmux as a person would, on a real local stack (zmqchat up): alice and
 * bob in two TUIs, carol on the command line. Screens are kept under test/artifacts/tui/.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { UP_TIMEOUT_MS } from "../helpers/cli.js";
import { freeBasePort } from "../helpers/stack.js";
import { Tmux } from "../helpers/tmux.js";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = join(ROOT, "dist/bin/zmqchat.js");
const ARTIFACTS = join(ROOT, "test/artifacts/tui");

/** Runs the CLI; `stopAfterMs` interrupts a command that runs until interrupted (listen). */
function cli(
  home: string,
  args: string[],
  stopAfterMs?: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, "--home", home, ...args],
      {
        env: { ...process.env, ZMQCHAT_LOG_LEVEL: "warn" },
        timeout: stopAfterMs ?? (args[0] === "up" ? UP_TIMEOUT_MS : 30_000),
        killSignal: "SIGINT",
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

async function until<T>(what: string, fn: () => Promise<T | null>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe("the TUI in tmux on a real local stack", { timeout: 900_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), "zmqchat-tui-e2e-"));
  const stackHome = join(base, "stack");
  const homes = { alice: join(base, "alice"), bob: join(base, "bob"), carol: join(base, "carol") };
  const tmux = new Tmux(ARTIFACTS);
  let endpoint = "";
  let listen: ChildProcess | null = null;
  let shot = 0;
  const save = (target: string, name: string) =>
    tmux.save(target, `${String(++shot).padStart(2, "0")}-${name}`);

  /** The TUI command line, with a clean environment (CI=0: Ink renders nothing when it thinks it is in CI). */
  const tuiLine = (home: string, user?: string) =>
    [
      `env -u ZMQCHAT_USER -u ZMQCHAT_ENDPOINT CI=0 LANG=C.UTF-8 TERM=screen-256color ZMQCHAT_BELL=false`,
      `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} --home ${JSON.stringify(home)}`,
      user ? `--user ${user}` : "",
      `--endpoint ${endpoint}`,
    ].join(" ");

  before(async () => {
    assert.ok(existsSync(BIN), `build first (npm run build): ${BIN} is missing`);
    const port = await freeBasePort();
    endpoint = `tcp://127.0.0.1:${port}`;
    const up = await cli(stackHome, ["up", "--detach", "--port", String(port), "--servers", "2"]);
    assert.equal(up.code, 0, `zmqchat up failed: ${up.stderr}`);
    const reg = await cli(homes.carol, ["--user", "carol", "--endpoint", endpoint, "register"]);
    assert.equal(reg.code, 0, reg.stderr);
  });

  after(async () => {
    listen?.kill("SIGINT");
    tmux.kill();
    await cli(stackHome, ["down"]);
    rmSync(base, { recursive: true, force: true });
  });

  it("two people chat 1:1 and in a group, share a profile with the CLI, and catch up after being away", async () => {
    const env = { LANG: "C.UTF-8" };
    tmux.newSession("alice", { width: 120, height: 36, env });
    tmux.newSession("bob", { width: 120, height: 36, env });

    // alice: --user for a name with no profile here signs her up at once.
    tmux.run("alice", tuiLine(homes.alice, "alice"));
    await tmux.waitFor("alice", /alice ● online/, { what: "alice online" });
    assert.equal(tmux.show("alice", "#{alternate_on}"), "1", "the TUI runs in the alternate screen");
    save("alice", "alice-signed-up");

    // bob: no --user and no profile: the sign-up screen asks for a name.
    tmux.run("bob", tuiLine(homes.bob));
    await tmux.waitFor("bob", "Choose your user name");
    save("bob", "bob-signup-screen");
    tmux.type("bob", "bob");
    tmux.keys("bob", "Enter");
    await tmux.waitFor("bob", /bob ● online/, { what: "bob online" });

    // alice opens a chat with bob (Ctrl-N) and sends.
    tmux.keys("alice", "C-n");
    await tmux.waitFor("alice", "New chat with");
    tmux.type("alice", "bob");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("alice", "Message bob");
    tmux.type("alice", "hello bob");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("alice", /✓\s+alice\s+hello bob/, { what: "alice's message stored (✓)" });
    save("alice", "alice-sent-to-bob");

    // bob sees it arrive with an unread mark on alice and in the status bar.
    await tmux.waitFor("bob", (s) => /alice\s+(\? )?1[│║]/.test(s) && s.includes("1 unread"), {
      what: "an unread mark on alice",
    });
    save("bob", "bob-unread-from-alice");

    // bob starts in Contacts, where keys are not text: the hint and the double border say so
    // without colour, and ? shows the help. He selects alice (j), opens the chat (Enter), replies.
    // (The hint row shows once the sign-up notice has timed out.)
    const start = await tmux.waitFor("bob", /\[Contacts\] ↑↓ Enter: open/, {
      what: "the hint naming the focused pane",
    });
    assert.match(start, /╔═+╗/, "the focused pane has a double border");
    assert.match(start, /║▶ Contacts/);
    tmux.type("bob", "?");
    await tmux.waitFor("bob", "Help — Esc, q or Enter closes");
    save("bob", "bob-help-from-contacts");
    tmux.type("bob", "q");
    await tmux.waitFor("bob", (s) => !s.includes("Help — Esc"), { what: "the help closed" });
    tmux.keys("bob", "j");
    tmux.keys("bob", "Enter");
    await tmux.waitFor("bob", /alice\s+hello bob/, { what: "alice's message in bob's history" });
    assert.doesNotMatch(tmux.capture("bob"), /1 unread/, "opening the chat clears the unread count");
    tmux.type("bob", "hi alice");
    tmux.keys("bob", "Enter");
    await tmux.waitFor("alice", /bob\s+hi alice/, { what: "bob's reply on alice's screen" });
    save("alice", "alice-got-reply");

    // Typing while the history pane has focus loses nothing: the text goes to the composer,
    // 'i' included, and Enter sends it whole.
    tmux.keys("alice", "BTab");
    await tmux.waitFor("alice", "[History]");
    tmux.type("alice", "reply from TUI while listen runs");
    await tmux.waitFor("alice", "[Composer]");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("bob", /alice\s+reply from TUI while listen runs/, {
      what: "the whole text typed from the history pane on bob's screen",
    });

    // A pasted message keeps its lines (bracketed paste), Enter sends it.
    tmux.paste("alice", "first line\nsecond line");
    await tmux.waitFor("alice", (s) => s.includes("first line") && s.includes("second line"));
    tmux.keys("alice", "Enter");
    await tmux.waitFor("bob", (s) => /alice\s+first line/.test(s) && s.includes("second line"), {
      what: "the pasted two-line message on bob's screen",
    });

    // The same profile from the command line while alice's TUI runs: send, history and listen.
    const sent = await cli(homes.alice, [
      "--user",
      "alice",
      "--endpoint",
      endpoint,
      "send",
      "bob",
      "from alice cli",
    ]);
    assert.equal(sent.code, 0, `send while the TUI runs: ${sent.stderr}`);
    const hist = await cli(homes.alice, [
      "--user",
      "alice",
      "--endpoint",
      endpoint,
      "history",
      "bob",
      "--json",
    ]);
    assert.equal(hist.code, 0, `history while the TUI runs: ${hist.stderr}`);
    const texts = hist.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { text: string }).text);
    for (const t of ["hello bob", "hi alice", "first line\nsecond line", "from alice cli"])
      assert.ok(texts.includes(t), `history has ${t}`);
    await tmux.waitFor("alice", /alice\s+from alice cli/, { what: "the CLI's message in alice's TUI" });
    await tmux.waitFor("bob", /alice\s+from alice cli/, { what: "the CLI's message in bob's TUI" });
    tmux.type("bob", "while alice listens");
    tmux.keys("bob", "Enter");
    await tmux.waitFor("alice", /bob\s+while alice listens/, { what: "bob's next message in alice's TUI" });
    // listen for the same profile starts and prints the backlog while the TUI runs (no lock errors).
    // It runs until interrupted: stopped once the backlog is out (polled, so a loaded machine is no failure).
    const backlog = { stdout: "", stderr: "" };
    const listening = spawn(
      process.execPath,
      [BIN, "--home", homes.alice, "--user", "alice", "--endpoint", endpoint, "listen", "--json"],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ZMQCHAT_LOG_LEVEL: "warn" } },
    );
    const listenExit = new Promise((done) => listening.once("exit", done));
    listening.stdout.on("data", (d: Buffer) => {
      backlog.stdout += d.toString();
    });
    listening.stderr.on("data", (d: Buffer) => {
      backlog.stderr += d.toString();
    });
    try {
      await until(
        "listen to print the backlog",
        async () => (backlog.stdout.includes("hi alice") ? true : null),
        60_000,
      );
    } catch (err) {
      throw new Error(`listen printed the backlog: ${backlog.stdout} ${backlog.stderr}`, { cause: err });
    } finally {
      listening.kill("SIGINT");
      await listenExit;
    }
    assert.doesNotMatch(backlog.stderr, /locked|SQLITE_BUSY/i);
    save("alice", "alice-tui-and-cli-share-profile");

    // A group of three: alice creates it with a slash command, carol is on the command line.
    tmux.type("alice", "/group create team bob carol");
    tmux.keys("alice", "Enter");
    // The notice lasts 8 s, which a loaded machine can miss: the group listed and open is what stays.
    await tmux.waitFor("alice", (screen) => screen.includes("created #team") || /▸#team/.test(screen), {
      what: "#team created",
    });
    // Being added is an invitation: bob accepts in the TUI, carol on the command line.
    tmux.type("bob", "/accept team");
    tmux.keys("bob", "Enter");
    await tmux.waitFor("bob", "you joined #team");
    // Accepting opens #team; bob looks at alice's conversation instead, so #team can gather unread.
    tmux.type("bob", "/msg alice");
    tmux.keys("bob", "Enter");
    await tmux.waitFor("bob", "Message alice (", { what: "bob's composer on alice's conversation" });
    const carolJoins = await cli(homes.carol, [
      "--user",
      "carol",
      "--endpoint",
      endpoint,
      "group",
      "accept",
      "team",
    ]);
    assert.equal(carolJoins.code, 0, carolJoins.stderr);
    tmux.type("alice", "hello team");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("alice", /✓\s+alice\s+hello team/);
    await tmux.waitFor("bob", (s) => /#team\s+1[│║]/.test(s) || /alice\s+hello team/.test(s), {
      what: "#team with an unread mark in bob's Groups (or open, if accepting opened it)",
    });
    const carolSees = await until("carol's history of #team", async () => {
      const r = await cli(homes.carol, [
        "--user",
        "carol",
        "--endpoint",
        endpoint,
        "history",
        "--group",
        "team",
        "--json",
      ]);
      return r.code === 0 && r.stdout.includes("hello team") ? r.stdout : null;
    });
    assert.match(carolSees, /"from":"alice"/);
    const carolSent = await cli(homes.carol, [
      "--user",
      "carol",
      "--endpoint",
      endpoint,
      "send",
      "--group",
      "team",
      "carol here",
    ]);
    assert.equal(carolSent.code, 0, carolSent.stderr);
    await tmux.waitFor("alice", /carol\s+carol here/, { what: "carol's message on alice's screen" });
    // bob opens the group from the Groups pane (Tab, Tab, j, Enter).
    tmux.keys("bob", "Tab");
    tmux.keys("bob", "Tab");
    tmux.keys("bob", "j");
    tmux.keys("bob", "Enter");
    await tmux.waitFor("bob", (s) => /alice\s+hello team/.test(s) && /carol\s+carol here/.test(s), {
      what: "#team's history on bob's screen",
    });
    // Esc goes back to the Groups pane; "/" from there jumps to the composer to start a command.
    tmux.keys("bob", "Escape");
    tmux.type("bob", "/");
    tmux.type("bob", "members");
    tmux.keys("bob", "Enter");
    await tmux.waitFor("bob", "#team: alice (owner), bob, carol");
    tmux.keys("bob", "C-u");
    tmux.type("bob", "bob here");
    tmux.keys("bob", "Enter");
    await tmux.waitFor("alice", /bob\s+bob here/, { what: "bob's group message on alice's screen" });
    save("alice", "alice-group-of-three");
    save("bob", "bob-group-of-three");

    // Resizing: too small says so; back to a normal size redraws everything.
    tmux.resize("alice", 50, 12);
    await tmux.waitFor("alice", "too small");
    save("alice", "alice-too-small");
    tmux.resize("alice", 120, 36);
    await tmux.waitFor("alice", /bob\s+bob here/, { what: "the redraw after growing again" });

    // bob leaves with /quit: the terminal is restored (main screen, cooked mode, echo on).
    tmux.type("bob", "/quit");
    tmux.keys("bob", "Enter");
    await until("bob's TUI to exit", async () =>
      tmux.show("bob", "#{pane_current_command}") === "bash" ? true : null,
    );
    assert.equal(tmux.show("bob", "#{alternate_on}"), "0", "the alternate screen was left");
    tmux.run(
      "bob",
      `clear; echo "STTY: $(stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' ')"`,
    );
    const stty = await tmux.waitFor("bob", /STTY: -?icanon -?echo/);
    assert.match(stty, /STTY: icanon echo/, "cooked mode and echo are back");
    save("bob", "bob-after-quit");

    // While bob is away alice writes to him; bob comes back and sees everything.
    tmux.type("alice", "/msg bob while you were away");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("alice", /✓\s+alice\s+while you were away/);
    tmux.type("alice", "and one more");
    tmux.keys("alice", "Enter");
    await tmux.waitFor("alice", /✓\s+alice\s+and one more/);
    tmux.run("bob", `clear; ${tuiLine(homes.bob)}`);
    await tmux.waitFor("bob", (s) => /bob ● online/.test(s) && /alice\s+(\? )?2[│║]/.test(s), {
      what: "bob back online with 2 unread from alice",
    });
    save("bob", "bob-back-unread");
    tmux.keys("bob", "j");
    tmux.keys("bob", "Enter");
    const back = await tmux.waitFor("bob", /alice\s+and one more/, {
      what: "the messages from while bob was away",
    });
    for (const t of [
      "hello bob",
      "hi alice",
      "from alice cli",
      "while alice listens",
      "while you were away",
      "and one more",
    ]) {
      assert.ok(back.includes(t), `bob's history shows "${t}"`);
    }
    save("bob", "bob-sees-everything");
    tmux.keys("bob", "C-c");
    await until("bob's second TUI to exit", async () =>
      tmux.show("bob", "#{pane_current_command}") === "bash" ? true : null,
    );
    tmux.keys("alice", "C-c");
    await until("alice's TUI to exit", async () =>
      tmux.show("alice", "#{pane_current_command}") === "bash" ? true : null,
    );
    assert.equal(tmux.show("alice", "#{alternate_on}"), "0");
  });

  it("listen for a profile whose TUI runs prints live messages", async () => {
    tmux.run("alice", tuiLine(homes.alice, "alice"));
    await tmux.waitFor("alice", /alice ● online/);
    let listened = "";
    let status = "";
    listen = spawn(
      process.execPath,
      [BIN, "--home", homes.alice, "--user", "alice", "--endpoint", endpoint, "listen", "--json"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    listen.stdout?.on("data", (d: Buffer) => {
      listened += d.toString();
    });
    listen.stderr?.on("data", (d: Buffer) => {
      status += d.toString();
    });
    await until("listen to be online", async () => (status.includes("online") ? true : null));
    const r = await cli(homes.bob, [
      "--user",
      "bob",
      "--endpoint",
      endpoint,
      "send",
      "alice",
      "live for listen",
    ]);
    assert.equal(r.code, 0, r.stderr);
    await until(
      "listen to print a live message",
      async () => (listened.includes("live for listen") ? true : null),
      8000,
    );
  });

  it("offline: messages wait in the on-disk outbox (TUI and send --queue), shown pending, sent on reconnect; the first screen fits 80 columns", async () => {
    tmux.newSession("carol", { width: 80, height: 24, env: { LANG: "C.UTF-8" } });
    tmux.run("carol", tuiLine(homes.carol, "carol"));
    await tmux.waitFor("carol", /carol ● online/, { what: "carol online" });
    await tmux.waitFor(
      "carol",
      "[Contacts] ↑↓ Enter: open · Tab: pane · Ctrl-N: chat · ?: help · Ctrl-C: quit",
      {
        what: "the whole key hint on an 80-column terminal",
      },
    );
    save("carol", "carol-first-screen-80-columns");
    tmux.keys("carol", "C-n");
    await tmux.waitFor("carol", "New chat with");
    tmux.type("carol", "alice");
    tmux.keys("carol", "Enter");
    await tmux.waitFor("carol", "Message alice");

    const down = await cli(stackHome, ["down"]);
    assert.equal(down.code, 0, down.stderr);
    await tmux.waitFor("carol", /carol ○ offline/, { what: "carol sees the service gone" });
    tmux.type("carol", "written offline");
    tmux.keys("carol", "Enter");
    await tmux.waitFor("carol", (s) => s.includes("[in the outbox") && s.includes("1 in the outbox"), {
      what: "the message pending in the outbox",
    });
    const queued = await cli(homes.carol, [
      "--user",
      "carol",
      "--endpoint",
      endpoint,
      "send",
      "--queue",
      "alice",
      "queued by the CLI",
    ]);
    assert.equal(queued.code, 0, queued.stderr);
    await tmux.waitFor("carol", (s) => s.includes("queued by the CLI") && s.includes("2 in the outbox"), {
      what: "the CLI's queued message in the TUI's outbox",
    });
    save("carol", "carol-offline-outbox");

    const port = endpoint.replace(/^.*:/, "");
    const up = await cli(stackHome, ["up", "--detach", "--port", port, "--servers", "2"]);
    assert.equal(up.code, 0, `zmqchat up again failed: ${up.stderr}`);
    await tmux.waitFor(
      "carol",
      (s) =>
        /✓\s+carol\s+written offline/.test(s) &&
        /✓\s+carol\s+queued by the CLI/.test(s) &&
        !s.includes("in the outbox"),
      { what: "both sent once the service is back", timeoutMs: 30_000 },
    );
    save("carol", "carol-outbox-sent");
    const seen = await cli(homes.alice, [
      "--user",
      "alice",
      "--endpoint",
      endpoint,
      "history",
      "carol",
      "--json",
    ]);
    assert.equal(seen.code, 0, seen.stderr);
    const texts = seen.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { text: string }).text);
    assert.deepEqual(
      texts.filter((t) => t === "written offline" || t === "queued by the CLI"),
      ["written offline", "queued by the CLI"],
      "each once, in the order written",
    );

    // Issue #19: carol links a second device, then revokes it from the TUI's /devices view
    // (↓ selects it, r asks, y confirms); the TUI signs in again with the rotated keys.
    const carol2 = join(base, "carol-second");
    const as = (home: string, args: string[]) =>
      cli(home, ["--user", "carol", "--endpoint", endpoint, ...args]);
    const offer = await as(homes.carol, ["devices", "add", "--name", "second", "--json"]);
    assert.equal(offer.code, 0, offer.stderr);
    const { code, device } = JSON.parse(offer.stdout) as { code: string; device: string };
    const linked = await as(carol2, ["devices", "link", code]);
    assert.equal(linked.code, 0, linked.stderr);
    tmux.type("carol", "/devices");
    tmux.keys("carol", "Enter");
    await tmux.waitFor("carol", (s) => s.includes("Your devices") && s.includes("second"), {
      what: "the devices view",
    });
    tmux.type("carol", "r");
    await tmux.waitFor("carol", "the device you are on", { what: "this device refused" });
    tmux.keys("carol", "Down");
    tmux.type("carol", "r");
    // The question and its keys fit an 80-column terminal.
    await tmux.waitFor("carol", `revoke ${device} (second)? y: yes · n: no`, { what: "the question" });
    save("carol", "carol-devices-revoke-question");
    tmux.type("carol", "y");
    await tmux.waitFor("carol", (s) => s.includes(`revoked ${device}`) && /carol ● online/.test(s), {
      what: "revoked, and signed in again with the new keys",
      timeoutMs: 30_000,
    });
    save("carol", "carol-devices-revoked");
    const cut = await as(carol2, ["sync"]);
    assert.equal(cut.code, 4, `the revoked device is cut off: ${cut.stderr}`);
    const still = await as(homes.carol, ["sync"]);
    assert.equal(still.code, 0, `the TUI's profile carries on with the saved keys: ${still.stderr}`);
    tmux.keys("carol", "C-c");
  });
});
