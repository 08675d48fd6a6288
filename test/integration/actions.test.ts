import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { uuidv7 } from "../../core/protocol/ids.js";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  to: string | null;
  group: string | null;
  text: string;
  sentAt: string;
  serverTime: string;
  verified: boolean;
  problem?: string;
  replyTo: string | null;
  edited: string | null;
  deleted: boolean;
  reactions: Record<string, string[]>;
}

const PASSPHRASE = "orbit tangerine cellar votive\n";

/**
 * Replies, edits, deletes and reactions (issue 17) on a real stack: a balancer and a server
 * over CurveZMQ on loopback, the SQLite store, the built CLI; alice, bob and carol in a group,
 * carol offline the whole time, and bob's second profile (his identity restored in another home).
 */
describe("message actions: reply, edit, delete, react (real stack, three users)", () => {
  let stack: RealStack;
  const ids: Record<string, string> = {};
  let plainBefore: string;
  const bob2 = () => ({ home: join(stack.dir, "homes", "bob-second") });

  const ok = async (user: string, args: string[], opts: { home?: string; stdin?: string } = {}) => {
    const r = await stack.cli(user, args, { timeoutMs: 60_000, ...opts });
    assert.equal(r.code, 0, `${user} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const history = async (user: string, args: string[], opts: { home?: string } = {}) =>
    (await ok(user, ["history", ...args, "--json"], opts))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
  const byId = (lines: Line[], id: string) => {
    const l = lines.find((x) => x.id === id);
    assert.ok(l, `message ${id} is in the history`);
    return l;
  };
  /** The envelopes of `owner`'s mailbox, straight from the store (what the server sees). */
  const stored = (owner: string): string[] => {
    const db = new Database(stack.store.replace(/^sqlite:/, ""), { readonly: true });
    try {
      return (
        db.prepare("SELECT envelope FROM mailbox WHERE owner = ?").all(owner) as Array<{ envelope: string }>
      ).map((r) => r.envelope);
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
    // bob's second profile: his identity restored from the passphrase backup into another home.
    await ok("bob", ["keys", "backup"], { stdin: PASSPHRASE });
    await ok("bob", ["keys", "restore"], { ...bob2(), stdin: PASSPHRASE });
    ids.lunch = await ok("alice", ["send", "--group", "team", "lunch at 12?"]);
    ids.oops = await ok("alice", ["send", "--group", "team", "wrong chat, sorry"]);
    ids.plain = await ok("alice", ["send", "--group", "team", "a plain message nobody touches"]);
    ids.ping = await ok("bob", ["send", "alice", "ping"]);
    plainBefore = JSON.stringify(byId(await history("bob", ["--group", "team"]), ids.plain!));
  });
  after(async () => {
    await stack?.stop();
  });

  it("send --reply-to: the reference travels sealed, history --json shows replyTo, unknown ids are refused", async () => {
    ids.reply = await ok("bob", ["send", "--group", "team", "12 works", "--reply-to", ids.lunch!]);
    ids.pong = await ok("alice", ["send", "bob", "pong", "--reply-to", ids.ping!]);
    const team = await history("alice", ["--group", "team"]);
    assert.equal(byId(team, ids.reply!).replyTo, ids.lunch);
    assert.equal(byId(team, ids.lunch!).replyTo, null);
    assert.equal(byId(await history("bob", ["alice"]), ids.pong!).replyTo, ids.ping);
    // The server never sees the reference: alice's copy of the reply holds its own id, not the target's.
    const copy = stored("alice").find((e) => e.includes(ids.reply!));
    assert.ok(copy, "positive control: the reply's envelope is in alice's mailbox");
    assert.equal(copy.includes(ids.lunch!), false);
    // An id the sender never had, and one of another conversation: not_found, exit 5.
    const unknown = await stack.cli("alice", ["send", "--group", "team", "x", "--reply-to", uuidv7()]);
    assert.equal(unknown.code, 5, unknown.stderr);
    assert.match(unknown.stderr, /no message .* in this conversation/);
    const elsewhere = await stack.cli("alice", ["send", "--group", "team", "x", "--reply-to", ids.ping!]);
    assert.equal(elsewhere.code, 5, elsewhere.stderr);
  });

  it("edit and delete: the author's change reaches every member; anyone else is refused", async () => {
    const notMine = await stack.cli("bob", ["edit", ids.lunch!, "bob was here"]);
    assert.equal(notMine.code, 4, notMine.stderr);
    assert.match(notMine.stderr, /only its author may edit/);
    const notMineDel = await stack.cli("bob", ["delete", ids.lunch!]);
    assert.equal(notMineDel.code, 4, notMineDel.stderr);
    const missing = await stack.cli("alice", ["edit", uuidv7(), "x"]);
    assert.equal(missing.code, 5, missing.stderr);
    await ok("alice", ["edit", ids.lunch!, "lunch at 1?"]);
    await ok("alice", ["delete", ids.oops!]);
    for (const [user, opts] of [
      ["alice", {}],
      ["bob", {}],
      ["bob", bob2()],
    ] as const) {
      const team = await history(user, ["--group", "team"], opts);
      const lunch = byId(team, ids.lunch!);
      assert.equal(lunch.text, "lunch at 1?", `${user} sees the edit`);
      assert.ok(lunch.edited && !Number.isNaN(Date.parse(lunch.edited)), "edited is an ISO time");
      const oops = byId(team, ids.oops!);
      assert.equal(oops.deleted, true);
      assert.equal(oops.text, "");
      // The group's system lines (issue 17) are rows with `system` set: messages are the others.
      const messages = team.filter((l) => (l as { system?: unknown }).system === null);
      assert.equal(messages.length, 4, "actions are not shown as messages");
    }
    // bob's second profile edits what his first one sent: it is his message on every device.
    await ok("bob", ["edit", ids.reply!, "12 works, see you"], bob2());
    const edited = byId(await history("alice", ["--group", "team"]), ids.reply!);
    assert.equal(edited.text, "12 works, see you");
    assert.equal(edited.replyTo, ids.lunch, "an edit keeps the reply reference");
    const human = await ok("bob", ["history", "--group", "team"]);
    assert.match(human, /lunch at 1\? \(edited\)/);
    assert.match(human, /\(message deleted\)/);
    assert.doesNotMatch(human, /wrong chat/);
  });

  it("react and react --remove: reactions per emoji, in name order; a bad emoji is a usage error", async () => {
    await ok("bob", ["react", ids.lunch!, "👍"]);
    await ok("alice", ["react", ids.lunch!, "👍"]);
    await ok("bob", ["react", ids.lunch!, "🎉"]);
    await ok("bob", ["react", ids.lunch!, "🎉", "--remove"]);
    const bad = await stack.cli("bob", ["react", ids.lunch!, "not an emoji"]);
    assert.equal(bad.code, 2, bad.stderr);
    const control = await stack.cli("bob", ["react", ids.lunch!, "\u001b[2J"]);
    assert.equal(control.code, 2, control.stderr);
    for (const [user, opts] of [
      ["alice", {}],
      ["bob", bob2()],
    ] as const) {
      const lunch = byId(await history(user, ["--group", "team"], opts), ids.lunch!);
      assert.deepEqual(lunch.reactions, { "👍": ["alice", "bob"] }, `${user}'s view`);
    }
    assert.deepEqual(byId(await history("alice", ["--group", "team"]), ids.reply!).reactions, {});
  });

  it("carol, offline the whole time, recovers every reply, edit, delete and reaction; her history verifies", async () => {
    const team = await history("carol", ["--group", "team"]);
    const lunch = byId(team, ids.lunch!);
    assert.equal(lunch.text, "lunch at 1?");
    assert.ok(lunch.edited);
    assert.deepEqual(lunch.reactions, { "👍": ["alice", "bob"] });
    assert.equal(byId(team, ids.oops!).deleted, true);
    assert.equal(byId(team, ids.reply!).replyTo, ids.lunch);
    // Actions are numbered with the messages: no false gap.
    const v = await stack.cli("carol", ["verify-history", "--group", "team"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  it("the daemon's send with replyTo, edit, delete and react work as the commands do", async () => {
    const daemon = spawnDaemon(stack, "alice");
    try {
      const reply = await daemon.call("send", { group: "team", text: "via daemon", replyTo: ids.reply });
      assert.ok(reply.result, JSON.stringify(reply.error));
      const sent = (reply.result as { id: string }).id;
      assert.ok((await daemon.call("edit", { id: sent, text: "via daemon, edited" })).result);
      assert.ok((await daemon.call("react", { id: ids.reply, emoji: "🙂" })).result);
      const stray = await daemon.call("send", { group: "team", text: "x", replyTo: uuidv7() });
      assert.equal(stray.error?.data?.code, "not_found");
      const forbidden = await daemon.call("delete", { id: ids.reply });
      assert.equal(forbidden.error?.data?.code, "forbidden");
      const team = await history("bob", ["--group", "team"]);
      const line = byId(team, sent);
      assert.equal(line.replyTo, ids.reply);
      assert.equal(line.text, "via daemon, edited");
      assert.deepEqual(byId(team, ids.reply!).reactions, { "🙂": ["alice"] });
      assert.ok((await daemon.call("delete", { id: sent })).result);
      assert.equal(byId(await history("bob", ["--group", "team"]), sent).deleted, true);
    } finally {
      await daemon.stop();
    }
  });

  it("existing --json fields of a plain message are unchanged; the new ones are added after them", async () => {
    const now = byId(await history("bob", ["--group", "team"]), ids.plain!);
    assert.equal(JSON.stringify(now), plainBefore);
    const parsed = JSON.parse(plainBefore) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), [
      "id",
      "from",
      "to",
      "group",
      "text",
      "sentAt",
      "serverTime",
      "verified",
      "replyTo",
      "edited",
      "deleted",
      "reactions",
      "file",
      "status",
      "readBy",
      "mention",
      "unread",
      "system",
    ]);
    assert.equal(parsed.text, "a plain message nobody touches");
    assert.equal(parsed.from, "alice");
    assert.equal(parsed.verified, true);
    assert.deepEqual(
      [parsed.replyTo, parsed.edited, parsed.deleted, parsed.reactions, parsed.file],
      [null, null, false, {}, null],
    );
  });

  it("group info [--json]: owner, members and invitations; unknown group exits 5, a stranger 4", async () => {
    const info = JSON.parse(await ok("bob", ["group", "info", "team", "--json"])) as {
      name: string;
      owner: string;
      members: string[];
      invited: string[];
    };
    assert.deepEqual(
      { ...info, members: [...info.members].sort() },
      {
        name: "team",
        owner: "alice",
        members: ["alice", "bob", "carol"],
        invited: [],
        // Issue 17's group roles, after the keys above.
        admins: [],
        title: null,
      },
    );
    assert.match(await ok("alice", ["group", "info", "team"]), /^team: owner alice; members: .*bob/);
    assert.equal((await stack.cli("bob", ["group", "info", "nosuchgroup"])).code, 5);
    await ok("dave", ["register"]);
    assert.equal((await stack.cli("dave", ["group", "info", "team"])).code, 4);
  });

  it("an edit forged into the store by a non-author is ignored by every client and flagged by verify-history", async () => {
    // Positive control first: alice's history verifies with her own edits and deletes in it.
    const clean = await stack.cli("alice", ["verify-history", "--group", "team"]);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    // bob's own client would refuse; a modified client signs and sends the edit anyway.
    const fromBob = () =>
      stored("carol").filter((e) => (JSON.parse(e) as { from: string }).from === "bob").length;
    const before = fromBob();
    const forger = await zeromqClient(stack.dir, "bob", stack.endpoints, { register: false });
    try {
      await forger.send(
        { group: "team" },
        "bob rewrote alice",
        {},
        { action: { kind: "edit", target: ids.lunch! } },
      );
    } finally {
      await forger.dispose();
    }
    assert.equal(fromBob(), before + 1, "the forged edit is in carol's mailbox");
    for (const user of ["alice", "carol"]) {
      assert.equal(byId(await history(user, ["--group", "team"]), ids.lunch!).text, "lunch at 1?", user);
      const v = await stack.cli(user, ["verify-history", "--group", "team"]);
      assert.equal(v.code, 1, `${user}: ${v.stdout}${v.stderr}`);
      assert.match(v.stdout, /bob signed a edit of .* a message by alice: only its author may/);
    }
  });
});

/** `zmqchat daemon --stdio` for `user`, one JSON-RPC request per line. */
function spawnDaemon(stack: RealStack, user: string) {
  const child: ChildProcess = spawn(process.execPath, [ZMQCHAT_BIN, "--user", user, "daemon", "--stdio"], {
    env: { ...process.env, ZMQCHAT_HOME: join(stack.dir, "homes", user), ZMQCHAT_ENDPOINT: stack.endpoint },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const replies = new Map<number, Reply>();
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  createInterface({ input: child.stdout! }).on("line", (l) => {
    const r = JSON.parse(l) as Reply & { id?: number };
    if (typeof r.id === "number") replies.set(r.id, r);
  });
  let next = 1;
  return {
    async call(method: string, params: unknown): Promise<Reply> {
      const id = next++;
      child.stdin!.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
      return waitFor(`the daemon's answer to ${method} (${stderr})`, () => replies.get(id), 60_000);
    },
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

type Reply = { result?: unknown; error?: { code: number; message: string; data?: { code?: string } } };
