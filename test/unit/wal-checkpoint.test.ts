import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { type CheckpointResult, WalCheckpointer } from "../../core/wal-checkpoint.js";

const batch = (from: number, n: number): ChatMessage[] =>
  Array.from({ length: n }, (_, k) => ({
    id: uuidv7(),
    conv: "u:alice",
    from: "alice",
    to: "bob",
    group: null,
    text: `message ${from + k} ${"x".repeat(180)}`,
    sentAt: new Date().toISOString(),
    serverTime: new Date().toISOString(),
    cursor: String(from + k + 1),
    verified: true,
    problem: null,
    seq: from + k + 1,
    device: "0123456789abcdef",
  }));

describe("the cache's write-ahead log is checkpointed on a worker thread (wal-checkpoint.ts)", () => {
  it("commits here never checkpoint at SQLite's 1,000 pages; the worker copies the whole log; close removes it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-ckpt-"));
    const path = join(dir, "cache.db");
    const cache = new Cache(path);
    // The search index catches up by itself a second after the first write, in slices between turns
    // of the event loop, each a write of its own. Slices running while this test awaits its
    // checkpoints add their pages to the log after it started over (seen on a loaded CI machine,
    // Node 24: "2669 pages after the log started over"): what is measured here is the checkpoints,
    // so the index waits until the end.
    const releaseIndex = cache.holdIndexing();
    try {
      for (let i = 0; i < 10_000; i += 100)
        cache.addNext(batch(i, 100), i === 0 ? null : String(i), String(i + 100));
      // The first write armed the checkpointer's own timer (1 s): let it fire first (timers run in
      // the order they expire, so it runs before this wait's), or its checkpoint could still hold
      // the log when the write below starts and keep the log from starting over (seen once on a
      // loaded CI machine: "4496 pages after the log started over").
      await new Promise((r) => setTimeout(r, 1100));
      const first = await cache.checkpointer!.checkpoint();
      // Had this connection checkpointed by itself (every 1,000 pages), the log would have started
      // over and hold fewer pages than that.
      assert.ok(first.log > 1000, `${first.log} pages in the log`);
      assert.equal(first.checkpointed, first.log, "every page copied into the database");
      // The next write starts the log over.
      cache.addNext(batch(10_000, 10), "10000", "10010");
      const second = await cache.checkpointer!.checkpoint();
      assert.ok(second.log < 100, `${second.log} pages after the log started over`);
      assert.equal(cache.messageCount(), 10_010);
    } finally {
      releaseIndex();
      await cache.close();
    }
    // The worker's connection, the last one, checkpoints and removes the log when it closes, and
    // close() waits for that: whoever removes the directory next finds nothing left being written.
    assert.equal(existsSync(`${path}-wal`), false, "the log is gone once close() has settled");
    assert.equal(existsSync(`${path}-shm`), false, "the shared-memory file is gone too");
    const again = new Cache(path);
    assert.equal(again.messageCount(), 10_010);
    assert.equal(again.cursor, "10010");
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Steady writes on the event loop while the thread checkpoints: 4,000 commits of a page each, a
   * checkpoint asked every 100, none by the writing connection itself. Returns the log's largest
   * size in pages (the file never shrinks: SQLite writes it over from the start when it starts over)
   * and the checkpoints' answers.
   */
  async function steadyWrites(fullAt: number): Promise<{ logPages: number; results: CheckpointResult[] }> {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-ckpt-steady-"));
    const path = join(dir, "steady.db");
    const db = new Database(path);
    db.pragma("busy_timeout = 10000");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("wal_autocheckpoint = 0");
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)");
    const insert = db.prepare("INSERT INTO t (body) VALUES (?)");
    const checkpointer = new WalCheckpointer(path, 60_000, fullAt);
    const body = Buffer.alloc(3000, 7);
    const asked: Promise<CheckpointResult>[] = [];
    try {
      // The thread is up before the writes begin (it starts on the first checkpoint).
      await checkpointer.checkpoint();
      for (let i = 1; i <= 4000; i++) {
        insert.run(body);
        if (i % 100 === 0) asked.push(checkpointer.checkpoint());
        // About 4,000 commits a second, with the event loop's turns between them.
        if (i % 4 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      const results = await Promise.all(asked);
      const logPages = statSync(`${path}-wal`).size / 4096;
      assert.equal((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, 4000);
      return { logPages, results };
    } finally {
      await checkpointer.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("under steady writes the log starts over (FULL after PASSIVE); with PASSIVE alone it grows with every write", async () => {
    const fixed = await steadyWrites(200);
    assert.ok(
      fixed.results.some((r) => r.full),
      `a FULL checkpoint finished: ${JSON.stringify(fixed.results.slice(0, 5))}`,
    );
    // Some 12,000 pages were written (about 3 a commit): the log started over, again and again
    // (here it peaked at 340-900 pages, on a machine kept busy by two other processes too).
    assert.ok(
      fixed.logPages < 4000,
      `the log reached ${fixed.logPages} pages: ${JSON.stringify(fixed.results)}`,
    );
    // Positive control: the same writes with PASSIVE only (the checkpoint of before) keep every page
    // in the log, which only the writing connection's own checkpoint would have started over.
    const passive = await steadyWrites(Number.POSITIVE_INFINITY);
    assert.ok(!passive.results.some((r) => r.full), "no FULL checkpoint when it is off");
    assert.ok(passive.logPages > 8000, `the log reached ${passive.logPages} pages with PASSIVE alone`);
  });
});
