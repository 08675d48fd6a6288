import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { uuidv7 } from "../../core/protocol/ids.js";

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
});
