import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { Cache } from "../../core/client/cache.js";

describe("cache shared by several processes of one profile", () => {
  it("a transaction that reads the cursor before writing holds the write lock from its start", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-cache-lock-"));
    const path = join(dir, "cache.db");
    const cache = new Cache(path);
    // Another process's connection, which does not wait for locks.
    const other = new Database(path);
    other.pragma("busy_timeout = 0");
    const otherWrites = () =>
      other.prepare("INSERT OR REPLACE INTO state (key, value) VALUES ('x', ?)").run("1");
    try {
      // Positive control: a deferred transaction that reads first takes a snapshot; a write by
      // another connection in between makes its own write fail with "database is locked".
      const raw = new Database(path);
      assert.throws(
        () =>
          raw.transaction(() => {
            raw.prepare("SELECT value FROM state WHERE key = 'cursor'").get();
            otherWrites();
            raw.prepare("INSERT OR REPLACE INTO state (key, value) VALUES ('cursor', '5')").run();
          })(),
        /database is locked/,
      );
      raw.close();
      // Cache.transaction: the other connection is the one that has to wait, and ours commits.
      const result = cache.transaction(() => {
        void cache.cursor;
        assert.throws(otherWrites, /database is locked/);
        return cache.addNext(
          [
            {
              id: "m1",
              conv: "u:alice",
              from: "alice",
              to: "bob",
              group: null,
              text: "hi",
              sentAt: new Date().toISOString(),
              serverTime: new Date().toISOString(),
              cursor: "7",
              verified: true,
              problem: null,
              seq: 1,
              device: "d",
            },
          ],
          null,
          "7",
        );
      });
      assert.equal(result?.length, 1);
      assert.equal(cache.cursor, "7");
      otherWrites();
    } finally {
      other.close();
      await cache.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("sequence numbers taken together (Cache.nextSeq)", () => {
  it("are committed before the event loop moves on: another connection's write in the next turn does not wait", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-cache-seq-"));
    const path = join(dir, "cache.db");
    const cache = new Cache(path);
    // A second connection in this thread that does not wait for locks: waiting here would block
    // the only thread that could release the lock (a real one waits out its busy timeout).
    const other = new Database(path);
    other.pragma("busy_timeout = 0");
    const otherWrites = () =>
      other.prepare("INSERT OR REPLACE INTO state (key, value) VALUES ('x', ?)").run("1");
    try {
      // Queued before the numbers are taken, so it runs before anything they queue for later.
      const nextTurn = new Promise<void>((resolve, reject) =>
        setImmediate(() => {
          try {
            otherWrites();
            resolve();
          } catch (err) {
            reject(err);
          }
        }),
      );
      const seqs = [cache.nextSeq("u:bob"), cache.nextSeq("u:bob")];
      // Resumed sends of one burst take theirs a few microtasks later, in the same transaction.
      await Promise.resolve();
      seqs.push(cache.nextSeq("u:bob"));
      assert.deepEqual(seqs, [1, 2, 3]);
      // Positive control: while the numbers are being taken, the write lock is held.
      assert.throws(otherWrites, /database is locked/);
      // The next turn of the event loop finds the lock free.
      await nextTurn;
      const row = other.prepare("SELECT next FROM seqs WHERE conv = 'u:bob'").get() as { next: number };
      assert.equal(row.next, 3, "the numbers taken are committed");
    } finally {
      other.close();
      await cache.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
