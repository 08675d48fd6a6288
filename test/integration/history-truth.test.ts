import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  text: string;
  verified: boolean;
  problem?: string;
}
const lines = (s: string): Line[] =>
  s
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);

/** A message that would retitle the terminal, clear it, ring the bell and reverse what follows. */
const EVIL = "launch \x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[31mred\u202etxt.exe\u2066 \x9b1m end\ttab\nline two";
// biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for control characters
const RAW = /[\x1b\x07\x9b\u202e\u2066\u200e\u200f\u061c]/;

describe("history tells the truth: order, replays, safe terminal output, exit codes", () => {
  let stack: RealStack;
  before(async () => {
    stack = await startStack({ servers: 1 });
    for (const u of ["alice", "bob", "carol", "dave", "erin"])
      assert.equal((await stack.cli(u, ["register"])).code, 0);
    assert.equal((await stack.cli("alice", ["group", "create", "team", "bob"])).code, 0);
    assert.equal((await stack.cli("bob", ["group", "accept", "team"])).code, 0);
  });
  after(async () => {
    await stack?.stop();
  });

  function store(): Database.Database {
    const db = new Database(stack.store.replace(/^sqlite:/, ""));
    db.pragma("busy_timeout = 10000");
    return db;
  }

  async function send(from: string, to: string, text: string): Promise<string> {
    const r = await stack.cli(from, ["send", to, text]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  }

  it("verify-history exits 0 for a complete conversation in order (control)", async () => {
    for (const t of ["one", "two", "three"]) await send("alice", "dave", t);
    const r = await stack.cli("dave", ["verify-history", "alice", "--json"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { complete: boolean; outOfOrder: unknown[]; replayed: unknown[] };
    assert.equal(report.complete, true);
    assert.deepEqual(report.outOfOrder, []);
    assert.deepEqual(report.replayed, []);
  });

  it("flags messages a server reordered in the mailbox, naming their ids", async () => {
    const ids: string[] = [];
    for (const t of ["first", "second", "third"]) ids.push(await send("alice", "bob", t));
    // The server swaps the first and the third in bob's mailbox before bob syncs.
    const db = store();
    try {
      const pos = (id: string) =>
        (db.prepare("SELECT pos FROM mailbox WHERE owner = 'bob' AND msg_id = ?").get(id) as { pos: number })
          .pos;
      const [a, c] = [pos(ids[0]!), pos(ids[2]!)];
      db.transaction(() => {
        db.prepare("UPDATE mailbox SET pos = -1 WHERE pos = ?").run(a);
        db.prepare("UPDATE mailbox SET pos = ? WHERE pos = ?").run(a, c);
        db.prepare("UPDATE mailbox SET pos = ? WHERE pos = -1").run(c);
      })();
    } finally {
      db.close();
    }
    const r = await stack.cli("bob", ["verify-history", "alice"]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stdout, /INCOMPLETE/);
    assert.match(r.stdout, /out of order/);
    // The third (now first) is fine on its own; the two placed after it are out of order.
    assert.ok(r.stdout.includes(ids[1]!) && r.stdout.includes(ids[0]!), r.stdout);
    const json = JSON.parse((await stack.cli("bob", ["verify-history", "alice", "--json"])).stdout) as {
      outOfOrder: Array<{ id: string; after: { id: string } }>;
    };
    assert.deepEqual(
      json.outOfOrder.map((o) => [o.id, o.after.id]),
      [
        [ids[1], ids[2]],
        [ids[0], ids[2]],
      ],
    );
  });

  it("flags a message a server replayed at a new place in the mailbox, naming its id", async () => {
    const first = await send("alice", "carol", "pay 10 to erin");
    await send("alice", "carol", "and nothing else");
    const db = store();
    try {
      db.prepare(
        "INSERT INTO mailbox (owner, msg_id, server_time, envelope) SELECT owner, msg_id || '-again', server_time, envelope FROM mailbox WHERE owner = 'carol' AND msg_id = ?",
      ).run(first);
    } finally {
      db.close();
    }
    const r = await stack.cli("carol", ["verify-history", "alice"]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`replayed ${first}`));
    const h = lines((await stack.cli("carol", ["history", "alice", "--json"])).stdout);
    assert.equal(h.filter((m) => m.id === first).length, 1, "the replay is not shown twice");
  });

  it("history, search and listen show escape sequences and bidi controls visibly; --json stays exact", async () => {
    const id = await send("alice", "erin", EVIL);
    const human = await stack.cli("erin", ["history", "alice"]);
    assert.equal(human.code, 0, human.stderr);
    // Positive control: the text really holds the raw sequences the check looks for.
    assert.match(EVIL, RAW);
    assert.doesNotMatch(human.stdout, RAW);
    assert.ok(human.stdout.includes("\\x1b]0;pwned\\x07") && human.stdout.includes("\\u202e"), human.stdout);
    const json = lines((await stack.cli("erin", ["history", "alice", "--json"])).stdout);
    assert.equal(json.find((m) => m.id === id)?.text, EVIL, "--json returns the exact text");

    const found = await stack.cli("erin", ["search", "launch"]);
    assert.equal(found.code, 0, found.stderr);
    assert.ok(found.stdout.includes("pwned"), found.stdout);
    assert.doesNotMatch(found.stdout, RAW);
    const foundJson = lines((await stack.cli("erin", ["search", "launch", "--json"])).stdout);
    assert.equal(foundJson[0]?.text, EVIL);

    await send("alice", "erin", `${EVIL} again`);
    const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", "erin", "listen"], {
      env: {
        ...process.env,
        ZMQCHAT_HOME: join(stack.dir, "homes", "erin"),
        ZMQCHAT_ENDPOINT: stack.endpoint,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    try {
      await waitFor("listen to print the message", () => out.includes("again"), 30_000);
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGINT");
      await exited;
    }
    assert.ok(out.includes("pwned"), out);
    assert.doesNotMatch(out, RAW);
  });

  it("unknown users and groups exit 5, a group you are not in exits 4", async () => {
    const cases: Array<[string[], number]> = [
      [["history", "nosuch"], 5],
      [["history", "--group", "nosuch"], 5],
      [["history", "--group", "team"], 4],
      [["verify-history", "nosuch"], 5],
      [["verify-history", "--group", "nosuch"], 5],
      [["verify-history", "--group", "team"], 4],
      [["search", "hello", "--from", "nosuch"], 5],
      [["search", "hello", "--group", "nosuch"], 5],
      [["search", "hello", "--group", "team"], 4],
      [["keys", "fingerprint", "nosuch"], 5],
    ];
    for (const [args, code] of cases) {
      const r = await stack.cli("erin", args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.length > 0, `${args.join(" ")} says why`);
    }
    // Controls: the same commands on what exists and is yours exit 0.
    for (const args of [
      ["history", "alice"],
      ["verify-history", "dave"],
      ["keys", "fingerprint", "alice"],
      // Registered but never seen here: fetched and pinned, not "unknown".
      ["keys", "fingerprint", "carol"],
    ]) {
      const r = await stack.cli("erin", args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    }
    assert.equal((await stack.cli("bob", ["history", "--group", "team"])).code, 0);
  });
});
