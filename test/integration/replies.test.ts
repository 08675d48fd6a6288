import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { ChatClient } from "../../core/client/client.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { MAX_FRAME_BYTES, MAX_REPLY_BYTES, MAX_TEXT_BYTES } from "../../core/protocol/limits.js";
import { SqliteStore } from "../../server/store/sqlite.js";
import { type DisposableClient, zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  text: string;
  verified: boolean;
}

const lines = <T = Line>(stdout: string): T[] =>
  stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);

/** Real public keys for users made directly in the store (messages are sealed for them; they never log in). */
const someKeys = () => generateIdentity("x").publicKeys;

/**
 * Replies bounded in bytes and group storage linear in members (issue 13), on a real stack:
 * a balancer and two server processes over ZeroMQ on loopback, SQLite store, the built CLI.
 * Bulk set-up (hundreds of users, 35 big groups) goes straight into the shared store file
 * instead of through hundreds of CLI processes.
 */
describe("bounded replies and linear group storage (real stack)", () => {
  let stack: RealStack;
  let store: SqliteStore;
  const clients: DisposableClient[] = [];

  /**
   * An in-process client for a user the CLI registered (its profile, a cache of its own), one live
   * client per user at a time (the earlier one is closed), as in the product: two connections to one cache file on one thread can stall each other
   * for the cache's busy timeout (a write waits synchronously for the lock the other holds until
   * the end of its turn, and that turn cannot end while the thread waits).
   */
  const byUser = new Map<string, DisposableClient>();
  async function clientOf(user: string): Promise<ChatClient> {
    const known = byUser.get(user);
    if (known) {
      await known.dispose();
      clients.splice(clients.indexOf(known), 1);
    }
    const client = await zeromqClient(stack.dir, user, stack.endpoints, {
      register: false,
      cache: join(stack.dir, `${user}-lib-cache.db`),
    });
    clients.push(client);
    byUser.set(user, client);
    await client.login();
    return client;
  }

  before(async () => {
    stack = await startStack({ servers: 2 });
    for (const u of ["alice", "bob", "dave", "erin"]) {
      const r = await stack.cli(u, ["register"]);
      assert.equal(r.code, 0, r.stderr);
    }
    store = new SqliteStore(stack.store.replace(/^sqlite:/, ""));
    await store.init();
    // 600 more users: more than one `users` page (500), so `contacts` must follow pages.
    for (let i = 0; i < 600; i++)
      await store.registerUser({ name: `u${String(i).padStart(3, "0")}`, keys: someKeys() });
  });

  after(async () => {
    for (const c of clients) await c.dispose();
    await store?.close();
    await stack?.stop();
  });

  it("60 messages of 16 KiB to one user: sync and history exit 0 with every message", {
    timeout: 120_000,
  }, async () => {
    const alice = await clientOf("alice");
    // Quotes double in the sealed JSON: the largest ciphertext a text of 16 KiB can make.
    const texts = Array.from({ length: 60 }, (_, i) => {
      const head = `message ${i} `;
      const fill = i % 2 === 0 ? '"' : "x";
      return head + fill.repeat(MAX_TEXT_BYTES - head.length);
    });
    const sent: string[] = [];
    for (let i = 0; i < texts.length; i += 10) {
      const batch = await Promise.all(texts.slice(i, i + 10).map((t) => alice.send({ user: "bob" }, t)));
      sent.push(...batch.map((m) => m.id));
    }
    const db = new Database(stack.store.replace(/^sqlite:/, ""), { readonly: true });
    const stored = (
      db.prepare("SELECT sum(length(envelope)) AS n FROM mailbox WHERE owner = 'bob'").get() as { n: number }
    ).n;
    db.close();
    console.log(`# bob's mailbox holds ${stored} bytes of envelopes (frame limit ${MAX_FRAME_BYTES})`);
    assert.ok(stored > MAX_FRAME_BYTES, "positive control: the mailbox does not fit in one frame");

    // The service's own pages: bounded by bytes, `more` until the last.
    const bob = await clientOf("bob");
    let cursor: string | null = null;
    let pages = 0;
    let items = 0;
    for (;;) {
      const page: Awaited<ReturnType<typeof bob.request<"sync">>> = await bob.request("sync", {
        after: cursor,
        limit: 2000,
      });
      pages++;
      items += page.items.length;
      const bytes = Buffer.byteLength(JSON.stringify(page));
      assert.ok(bytes < MAX_REPLY_BYTES + 64 * 1024, `a sync page of ${bytes} bytes`);
      if (!page.more) break;
      cursor = page.items.at(-1)!.cursor;
    }
    console.log(`# ${items} messages came in ${pages} sync pages`);
    assert.equal(items, 60);
    assert.ok(pages >= 3);

    const sync = await stack.cli("bob", ["sync", "--json"], { timeoutMs: 60_000 });
    assert.equal(sync.code, 0, sync.stderr);
    const history = await stack.cli("bob", ["history", "alice", "--json", "--limit", "1000"], {
      timeoutMs: 60_000,
    });
    assert.equal(history.code, 0, history.stderr);
    const got = lines(history.stdout);
    // Sent ten at a time, so the mailbox order among each ten is the service's: compare as sets.
    assert.deepEqual(got.map((m) => m.id).sort(), [...sent].sort());
    const textOf = new Map(sent.map((id, i) => [id, texts[i]]));
    assert.ok(
      got.every((m) => m.verified && m.text === textOf.get(m.id)),
      "every text verified and intact",
    );
  });

  it("a recovery of 3,000 messages into a fresh cache: sync exits 0 with every message", {
    timeout: 180_000,
  }, async () => {
    const alice = await clientOf("alice");
    const count = 3000;
    const started = Date.now();
    for (let i = 0; i < count; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, count - i) }, (_, j) =>
          alice.send({ user: "erin" }, `recover ${i + j}`),
        ),
      );
    }
    const seeded = (Date.now() - started) / 1000;
    const t0 = Date.now();
    const sync = await stack.cli("erin", ["sync", "--json"], { timeoutMs: 120_000 });
    const secs = (Date.now() - t0) / 1000;
    assert.equal(sync.code, 0, sync.stderr);
    console.log(
      `# seeded ${count} messages in ${seeded.toFixed(1)} s; erin's sync into a fresh cache took ${secs.toFixed(1)} s`,
    );
    assert.deepEqual(JSON.parse(sync.stdout), { recovered: count, total: count });
    const history = await stack.cli("erin", ["history", "alice", "--json", "--limit", String(count)], {
      timeoutMs: 60_000,
    });
    assert.equal(history.code, 0, history.stderr);
    const got = lines(history.stdout);
    assert.equal(got.length, count);
    assert.ok(got.every((m) => m.verified));
    assert.equal(new Set(got.map((m) => m.text)).size, count, "every message once");
  });

  it("a user in 35 groups of 256 members: `groups --json` lists all 35; `contacts` lists every user", {
    timeout: 120_000,
  }, async () => {
    const fillers = Array.from({ length: 255 }, (_, i) => `u${String(i).padStart(3, "0")}`);
    for (let g = 0; g < 35; g++) {
      await store.createGroup({
        name: `big${String(g).padStart(2, "0")}`,
        owner: "dave",
        members: ["dave", ...fillers],
      });
    }
    const r = await stack.cli("dave", ["groups", "--json"], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const groups = lines<{ name: string; members: string[] }>(r.stdout);
    assert.equal(groups.length, 35);
    assert.ok(groups.every((g) => g.members.length === 256));
    // The service's pages: bounded by bytes, so 35 groups of 256 members with keys take several.
    const dave = await clientOf("dave");
    const first = await dave.request("groups", {});
    const firstBytes = Buffer.byteLength(JSON.stringify(first));
    console.log(`# groups: the first page holds ${first.groups.length} of 35 groups in ${firstBytes} bytes`);
    assert.equal(first.more, true);
    assert.ok(firstBytes <= MAX_REPLY_BYTES + 1024, `${firstBytes} bytes`);
    assert.equal((await dave.groups()).length, 35, "the client follows every page");

    const contacts = await stack.cli("dave", ["contacts", "--json"], { timeoutMs: 60_000 });
    assert.equal(contacts.code, 0, contacts.stderr);
    const names = lines<{ name: string }>(contacts.stdout).map((c) => c.name);
    assert.equal(
      names.length,
      604,
      `alice, bob, dave, erin and 600 more, over two pages; got ${names.slice(0, 5)} … ${names.slice(-5)}`,
    );
  });

  it("bytes stored per group message grow linearly with members (8, 64, 256)", {
    timeout: 120_000,
  }, async () => {
    const dave = await clientOf("dave");
    const db = new Database(stack.store.replace(/^sqlite:/, ""), { readonly: true });
    const texts = { short: "a short message to the whole group", "16 KiB": "z".repeat(MAX_TEXT_BYTES) };
    try {
      for (const [kind, text] of Object.entries(texts)) {
        const figures: Array<{ members: number; bytes: number; v1: number }> = [];
        for (const n of [8, 64, 256]) {
          const group = `lin${n}`;
          const members = [
            "dave",
            ...Array.from({ length: n - 1 }, (_, i) => `u${String(i).padStart(3, "0")}`),
          ];
          if (!(await store.getGroup(group)))
            await store.createGroup({ name: group, owner: "dave", members });
          const m = await dave.send({ group }, text);
          const row = db
            .prepare(
              "SELECT count(*) AS copies, sum(length(envelope)) AS bytes FROM mailbox WHERE msg_id = ?",
            )
            .get(m.id) as { copies: number; bytes: number };
          assert.equal(row.copies, n, "one copy per member");
          const copyOf = (owner: string) =>
            JSON.parse(
              (
                db
                  .prepare("SELECT envelope FROM mailbox WHERE msg_id = ? AND owner = ?")
                  .get(m.id, owner) as {
                  envelope: string;
                }
              ).envelope,
            ) as { keys: Array<{ to: string; wk: string }> };
          for (const owner of ["u000", "dave"]) {
            assert.deepEqual(
              copyOf(owner).keys.map((k) => k.to),
              [owner],
              "a copy (the sender's too) holds only its owner's wrapped key",
            );
          }
          // What the v1 format stored: every copy carried every member's wrapped key.
          const keyBytes = JSON.stringify(copyOf("u000").keys[0]).length + 1;
          figures.push({ members: n, bytes: row.bytes, v1: n * (row.bytes / n + (n - 1) * keyBytes) });
        }
        for (const f of figures) {
          console.log(
            `# ${kind} text, group of ${f.members}: ${f.bytes} bytes stored (${Math.round(f.bytes / f.members)} per member); the v1 format: ${Math.round(f.v1)} bytes`,
          );
        }
        const [f8, f64, f256] = figures as [(typeof figures)[0], (typeof figures)[0], (typeof figures)[0]];
        assert.ok(
          f256.bytes / f64.bytes < 4.5,
          `bytes(256)/bytes(64) = ${(f256.bytes / f64.bytes).toFixed(2)}`,
        );
        assert.ok(f64.bytes / f8.bytes < 9, `bytes(64)/bytes(8) = ${(f64.bytes / f8.bytes).toFixed(2)}`);
        const perMember = figures.map((f) => f.bytes / f.members);
        assert.ok(
          Math.max(...perMember) / Math.min(...perMember) < 1.1,
          `per member: ${perMember.join(", ")}`,
        );
      }
    } finally {
      db.close();
    }
  });
});
