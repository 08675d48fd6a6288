import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { chatMessage } from "../helpers/chat-message.js";

function own(cursor: number, text = `m${cursor}`): ChatMessage {
  return chatMessage(cursor, { conv: "u:bob", from: "alice", to: "bob", group: null, text });
}

function withFile(run: (path: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-cache-batching-"));
    try {
      await run(join(dir, "cache.db"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

describe("acknowledged sends stored in runs (Cache.addAcked)", () => {
  it("moves the cursor over the acks that follow it, places only those, and tells which were new", async () => {
    const cache = new Cache(":memory:");
    cache.receipts.owner = "alice";
    try {
      cache.addMessages([own(10)], "10");
      const before = own(5);
      cache.addAcked([{ message: before, prev: undefined, dequeue: false }]);
      // 11 and 12 follow the cursor (10), 14 does not (13 is not here), 15 follows 14 but the
      // cursor stopped at 12, `before` is a repeat, 16 follows nothing said (prev undefined).
      const m11 = own(11);
      const m12 = own(12);
      const m14 = own(14);
      const m15 = own(15);
      const m16 = own(16);
      const fresh = cache.addAcked([
        { message: m11, prev: "10", dequeue: false },
        { message: m12, prev: "11", dequeue: false },
        { message: before, prev: undefined, dequeue: false },
        { message: m14, prev: "13", dequeue: false },
        { message: m15, prev: "14", dequeue: false },
        { message: m16, prev: undefined, dequeue: false },
      ]);
      assert.deepEqual(fresh, [true, true, false, true, true, true]);
      assert.equal(cache.cursor, "12");
      // Placed (a mailbox place kept) only where they followed the cursor: a later mailbox copy
      // of the others takes its place then, and no replay is seen for them.
      const moved = own(14);
      moved.id = m14.id;
      moved.cursor = "20";
      cache.addMessages([moved], "20");
      assert.deepEqual(cache.replays("u:bob"), []);
      assert.deepEqual(
        cache.history("u:bob", 10).map((m) => m.cursor),
        ["5", "10", "11", "12", "15", "16", "20"],
      );
      // Positive control: a second place for a message that was placed is a replay.
      const replay = own(12);
      replay.id = m12.id;
      replay.cursor = "30";
      cache.addMessages([replay], "30");
      assert.deepEqual(
        cache.replays("u:bob").map((r) => r.id),
        [m12.id],
      );
    } finally {
      await cache.close();
    }
  });

  it("takes out of the outbox exactly the acks that ask for it", async () => {
    const cache = new Cache(":memory:");
    try {
      const a = own(1);
      const b = own(2);
      for (const m of [a, b])
        cache.enqueue({
          id: m.id,
          conv: m.conv,
          target: { user: "bob" },
          text: m.text,
          seq: m.seq,
          sentAt: m.sentAt,
          lastError: null,
        });
      assert.deepEqual(
        cache.addAcked([
          { message: a, prev: null, dequeue: true },
          { message: b, prev: "1", dequeue: false },
        ]),
        [true, true],
      );
      assert.deepEqual(
        cache.outbox().map((o) => o.id),
        [b.id],
      );
      assert.equal(cache.cursor, "2");
    } finally {
      await cache.close();
    }
  });
});

describe("sequence numbers counted in memory while composing (Cache.nextSeq)", () => {
  it(
    "writes what was counted before the commit, per conversation, and gives back the latest on release",
    withFile(async (path) => {
      const cache = new Cache(path);
      const other = new Database(path);
      other.pragma("busy_timeout = 10000");
      const next = (conv: string) =>
        (other.prepare("SELECT next FROM seqs WHERE conv = ?").get(conv) as { next: number } | undefined)
          ?.next;
      try {
        const bob = [cache.nextSeq("u:bob"), cache.nextSeq("u:bob"), cache.nextSeq("u:bob")];
        const team = [cache.nextSeq("g:team"), cache.nextSeq("g:team")];
        // The third to bob was never sent: given back while it is the latest.
        cache.releaseSeq("u:bob", 3);
        bob.push(cache.nextSeq("u:bob"), cache.nextSeq("u:bob"));
        // A number that is not the latest is not given back.
        cache.releaseSeq("u:bob", 2);
        assert.deepEqual(bob, [1, 2, 3, 3, 4]);
        assert.deepEqual(team, [1, 2]);
        await new Promise<void>((resolve) => setImmediate(resolve));
        assert.equal(next("u:bob"), 4, "committed: the last number taken for bob");
        assert.equal(next("g:team"), 2);
        // The next burst counts on from what was committed, in this connection and in a new one.
        // (A burst without a release: only the commit writes what was counted.)
        assert.deepEqual([cache.nextSeq("u:bob"), cache.nextSeq("u:bob"), cache.nextSeq("u:bob")], [5, 6, 7]);
        await new Promise<void>((resolve) => setImmediate(resolve));
        assert.equal(next("u:bob"), 7);
        await cache.close();
        const again = new Cache(path);
        try {
          assert.equal(again.nextSeq("u:bob"), 8);
          assert.equal(again.nextSeq("g:team"), 3);
        } finally {
          await again.close();
        }
        assert.equal(next("u:bob"), 8);
      } finally {
        other.close();
        await cache.close();
      }
    }),
  );
});

describe("contacts kept between reads (Cache.contact)", () => {
  const keys = { sign: "S".repeat(43), enc: "E".repeat(43) };
  const newKeys = { sign: "T".repeat(43), enc: "F".repeat(43) };

  it(
    "sees another connection's change, its own changes, and forgets what a rollback undid",
    withFile(async (path) => {
      const cache = new Cache(path);
      const other = new Database(path);
      other.pragma("busy_timeout = 10000");
      try {
        assert.equal(cache.contact("bob"), null);
        assert.equal(cache.see("bob", keys), "pinned");
        assert.deepEqual(cache.contact("bob")?.keys, keys, "its own pin");
        assert.equal(cache.contact("bob")?.pending, null);
        // Another process (`zmqchat keys ...` on the same profile) records a key change.
        other
          .prepare("UPDATE contacts SET pending_sign = ?, pending_enc = ? WHERE name = 'bob'")
          .run(newKeys.sign, newKeys.enc);
        assert.deepEqual(cache.contact("bob")?.pending, newKeys, "another connection's change");
        assert.equal(cache.trust("bob"), true);
        assert.deepEqual(cache.contact("bob")?.keys, newKeys, "its own trust");
        assert.equal(cache.contact("bob")?.verified, false);
        assert.equal(cache.markVerified("bob"), true);
        assert.equal(cache.contact("bob")?.verified, true, "its own verification");
        // A change read back inside a transaction that then rolls back is not kept.
        assert.throws(() =>
          cache.transaction(() => {
            cache.see("bob", keys);
            assert.deepEqual(cache.contact("bob")?.pending, keys);
            throw new Error("undo");
          }),
        );
        assert.equal(cache.contact("bob")?.pending, null);
        // What is handed out is shared: nobody may change it.
        assert.throws(() => {
          (cache.contact("bob")!.keys as { sign: string }).sign = "x";
        }, TypeError);
        // Another contact added by another connection is seen.
        other
          .prepare("INSERT INTO contacts (name, sign_key, enc_key, pinned_at) VALUES ('carol', ?, ?, ?)")
          .run(keys.sign, keys.enc, new Date().toISOString());
        assert.deepEqual(cache.contact("carol")?.keys, keys);
      } finally {
        other.close();
        await cache.close();
      }
    }),
  );
});
