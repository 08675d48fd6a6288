import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { type RealStack, startStack } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  text: string;
  status: "sent" | "delivered" | "read" | null;
  readBy: string[] | null;
}

const PASSPHRASE = "orbit tangerine cellar votive\n";

/**
 * Delivery and read receipts (issue 17) on a real stack with the built CLI: alice, bob and carol
 * in a group, carol offline until the end, bob's second profile, and read receipts turned off.
 */
describe("receipts: sent, delivered, read (real stack, three users)", () => {
  let stack: RealStack;
  const bob2 = () => ({ home: join(stack.dir, "homes", "bob-second") });

  const ok = async (
    user: string,
    args: string[],
    opts: { home?: string; stdin?: string; env?: NodeJS.ProcessEnv } = {},
  ) => {
    const r = await stack.cli(user, args, { timeoutMs: 60_000, ...opts });
    assert.equal(r.code, 0, `${user} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const history = async (
    user: string,
    args: string[],
    opts: { home?: string; env?: NodeJS.ProcessEnv } = {},
  ) =>
    (await ok(user, ["history", ...args, "--json"], opts))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
  /**
   * A command sends its queued receipts as it exits, waiting at most a few seconds; on a loaded
   * machine some wait for the user's next command. This is that next command.
   */
  const settle = (user: string, opts: { home?: string; env?: NodeJS.ProcessEnv } = {}) =>
    ok(user, ["sync"], opts);
  const byId = (lines: Line[], id: string) => {
    const l = lines.find((x) => x.id === id);
    assert.ok(l, `message ${id} is in the history`);
    return l;
  };
  /** How many envelopes `from` has put in `owner`'s mailbox (what the server stores). */
  const storedFrom = (owner: string, from: string): number => {
    const db = new Database(stack.store.replace(/^sqlite:/, ""), { readonly: true });
    try {
      return (
        db.prepare("SELECT envelope FROM mailbox WHERE owner = ?").all(owner) as Array<{ envelope: string }>
      ).filter((r) => (JSON.parse(r.envelope) as { from: string }).from === from).length;
    } finally {
      db.close();
    }
  };

  before(async () => {
    stack = await startStack({ servers: 1 });
    for (const u of ["alice", "bob", "carol"]) await ok(u, ["register"]);
    await ok("alice", ["group", "create", "team", "bob", "carol"]);
    await ok("bob", ["group", "accept", "team"]);
    await ok("carol", ["group", "accept", "team"]);
    await ok("bob", ["keys", "backup"], { stdin: PASSPHRASE });
    await ok("bob", ["keys", "restore"], { ...bob2(), stdin: PASSPHRASE });
  });
  after(async () => {
    await stack?.stop();
  });

  it("1:1: sent until bob's device stores it, delivered after, read once bob is shown it; one receipt event per burst", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await ok("alice", ["send", "bob", `burst ${i}`]));
    for (const id of ids) assert.equal(byId(await history("alice", ["bob"]), id).status, "sent");
    const before = storedFrom("alice", "bob");
    // A script reading history --json through a pipe is not bob reading: delivered, not read.
    await history("bob", ["alice"]);
    await settle("bob");
    const view = await history("alice", ["bob"]);
    for (const id of ids) assert.equal(byId(view, id).status, "delivered", "stored by bob's device");
    assert.equal(storedFrom("alice", "bob"), before + 1, "one delivery receipt for the five messages");
    // bob's own messages have no status in alice's view, and alice's have none in bob's.
    for (const l of await history("bob", ["alice"])) assert.equal(l.status, null);
    await ok("bob", ["history", "alice", "--mark-read"]);
    await settle("bob");
    const read = await history("alice", ["bob"]);
    for (const id of ids) assert.equal(byId(read, id).status, "read");
    assert.equal(storedFrom("alice", "bob"), before + 2, "one read receipt for the five messages");
    assert.equal(byId(read, ids[0]!).readBy, null, "readBy is for group messages");
    // Receipts are numbered like messages: no gap on either side; and they are not shown as messages.
    for (const u of ["alice", "bob"]) {
      const v = await stack.cli(u, ["verify-history", u === "alice" ? "bob" : "alice"]);
      assert.equal(v.code, 0, `${u}: ${v.stdout}${v.stderr}`);
    }
    assert.equal((await history("alice", ["bob"])).length, 5);
  });

  it("bob's second profile sees the status of what his first one sent", async () => {
    const id = await ok("bob", ["send", "alice", "from bob's first device"]);
    await ok("alice", ["history", "bob", "--mark-read"]);
    await settle("alice");
    assert.equal(byId(await history("bob", ["alice"]), id).status, "read");
    assert.equal(byId(await history("bob", ["alice"], bob2()), id).status, "read");
  });

  it("groups: readBy lists who read; delivered only once carol, offline until now, has it; then read", async () => {
    const id = await ok("alice", ["send", "--group", "team", "team lunch?"]);
    await ok("bob", ["history", "--group", "team", "--mark-read"]);
    await settle("bob");
    let line = byId(await history("alice", ["--group", "team"]), id);
    assert.deepEqual([line.status, line.readBy], ["sent", ["bob"]], "carol has not got it yet");
    await ok("carol", ["history", "--group", "team", "--mark-read"]);
    await settle("carol");
    line = byId(await history("alice", ["--group", "team"]), id);
    assert.deepEqual([line.status, line.readBy], ["read", ["bob", "carol"]]);
    // carol's receipt went to alice alone: bob's mailbox holds nothing from carol.
    assert.equal(storedFrom("bob", "carol"), 0);
  });

  it("readReceipts false: none sent (status stops at delivered), and none shown", async () => {
    const off = { env: { ZMQCHAT_READ_RECEIPTS: "false" } };
    const id = await ok("alice", ["send", "bob", "are you reading this?"]);
    await ok("bob", ["history", "alice", "--mark-read"], off);
    await settle("bob", off);
    assert.equal(byId(await history("alice", ["bob"]), id).status, "delivered");
    // Positive control: with receipts on, the same reading makes it read.
    const id2 = await ok("alice", ["send", "bob", "and this?"]);
    await ok("bob", ["history", "alice", "--mark-read"]);
    await settle("bob");
    assert.equal(byId(await history("alice", ["bob"]), id2).status, "read");
    // bob with receipts off does not see that alice read his message.
    const mine = await ok("bob", ["send", "alice", "read receipts are off here"]);
    await ok("alice", ["history", "bob", "--mark-read"]);
    await settle("alice");
    assert.equal(byId(await history("bob", ["alice"], off), mine).status, "delivered");
    assert.equal(byId(await history("bob", ["alice"]), mine).status, "read");
  });
});
