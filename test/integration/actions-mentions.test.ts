import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  text: string;
  edited: string | null;
  reactions: Record<string, string[]>;
  mention: boolean;
}

/**
 * Mentions, mute, and edits/reactions reaching `listen` live (issue 17) on a real stack with the
 * built CLI: alice, bob and carol in a group, carol offline until she reads.
 */
describe("mentions, mute and live actions (real stack, three users)", () => {
  let stack: RealStack;
  const ok = async (user: string, args: string[]) => {
    const r = await stack.cli(user, args, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${user} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const history = async (user: string, args: string[]) =>
    (await ok(user, ["history", ...args, "--json"]))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);

  before(async () => {
    stack = await startStack({ servers: 1 });
    for (const u of ["alice", "bob", "carol"]) await ok(u, ["register"]);
    await ok("alice", ["group", "create", "team", "bob", "carol"]);
    await ok("bob", ["group", "accept", "team"]);
    await ok("carol", ["group", "accept", "team"]);
  });
  after(async () => {
    await stack?.stop();
  });

  it("@name flags the message for that member only (carol offline until now too); an address is no mention", async () => {
    const id = await ok("alice", ["send", "--group", "team", "@carol lunch? mail bob@example.org"]);
    const mentioned = (lines: Line[]) => lines.find((l) => l.id === id)!.mention;
    assert.equal(mentioned(await history("carol", ["--group", "team"])), true);
    assert.equal(mentioned(await history("bob", ["--group", "team"])), false);
    assert.equal(mentioned(await history("alice", ["--group", "team"])), false, "not your own");
  });

  it("mute USER | --group GROUP [--off]: listed, kept per profile, messages still stored and shown", async () => {
    assert.match(await ok("carol", ["mute", "--group", "team"]), /^muted group team/);
    await ok("carol", ["mute", "alice"]);
    assert.deepEqual((await ok("carol", ["mute"])).split("\n"), ["--group team", "alice"]);
    assert.equal(await ok("bob", ["mute"]), "", "bob muted nothing");
    const id = await ok("alice", ["send", "--group", "team", "@carol still there?"]);
    const line = (await history("carol", ["--group", "team"])).find((l) => l.id === id);
    assert.ok(line?.mention, "a muted conversation's messages are still stored and shown");
    await ok("carol", ["mute", "--group", "team", "--off"]);
    await ok("carol", ["mute", "alice", "--off"]);
    assert.equal(await ok("carol", ["mute"]), "");
    const both = await stack.cli("carol", ["mute", "alice", "--group", "team"]);
    assert.equal(both.code, 2, both.stderr);
    const bad = await stack.cli("carol", ["mute", "--group", "Not A Name"]);
    assert.equal(bad.code, 2, bad.stderr);
  });

  it("listen shows an edit and a reaction live: the message again, as it is now", async () => {
    const id = await ok("alice", ["send", "--group", "team", "meet at 12"]);
    const lines: Line[] = [];
    const child: ChildProcess = spawn(process.execPath, [ZMQCHAT_BIN, "--user", "bob", "listen", "--json"], {
      env: {
        ...process.env,
        ZMQCHAT_HOME: join(stack.dir, "homes", "bob"),
        ZMQCHAT_ENDPOINT: stack.endpoint,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stderr!.resume();
    createInterface({ input: child.stdout! }).on("line", (l) => lines.push(JSON.parse(l) as Line));
    const exited = new Promise((r) => child.once("exit", r));
    try {
      await waitFor("bob's listen prints the message", () => lines.find((l) => l.id === id), 60_000);
      await ok("alice", ["edit", id, "meet at 1"]);
      await waitFor(
        "bob's listen prints the edited message",
        () => lines.find((l) => l.id === id && l.text === "meet at 1" && l.edited !== null),
        60_000,
      );
      await ok("carol", ["react", id, "👍"]);
      await waitFor(
        "bob's listen prints the reaction",
        () => lines.find((l) => l.id === id && l.reactions["👍"]?.includes("carol")),
        60_000,
      );
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  });
});
