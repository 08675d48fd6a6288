import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { SqliteStore } from "../../server/store/sqlite.js";
import { storeContract } from "../contract/store-contract.js";

storeContract("sqlite", async (metrics) => {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-store-"));
  const path = join(dir, "store.db");
  return {
    store: new SqliteStore(path, { metrics }),
    reopen: async () => new SqliteStore(path),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe("the SQLite store's write-ahead log is checkpointed on a thread, not inside an append's commit", () => {
  it("commits let the log grow past SQLite's 1,000 pages (the thread checkpoints it later)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-store-ckpt-"));
    const path = join(dir, "store.db");
    // No timed checkpoint during the appends: only what a commit would do by itself counts.
    const store = new SqliteStore(path, { checkpointDelayMs: 60_000 });
    await store.init();
    const probe = new Database(path);
    try {
      // 40 commits of ~60 pages each (two 1 KB copies per message): had a commit checkpointed at
      // SQLite's 1,000 pages, the log would have started over and hold about 1,000 pages or fewer.
      for (let c = 0; c < 40; c++)
        await store.appendMany(
          Array.from({ length: 100 }, (_, i) => ({
            id: `m-${c}-${i}`,
            owners: ["bob", "alice"],
            envelope: JSON.stringify({ ct: "x".repeat(1000), c, i }),
          })),
        );
      // A PASSIVE checkpoint from another connection reports the log's size (and copies it).
      const [first] = probe.pragma("wal_checkpoint(PASSIVE)") as Array<{ log: number; checkpointed: number }>;
      assert.ok(first!.log > 1500, `${first!.log} pages in the log after 40 commits`);
    } finally {
      probe.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the SQLite store reports commits that waited for another process's write lock", () => {
  it("counts the refused tries and the wait of a commit that found the lock held, and none otherwise", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-store-lock-"));
    const path = join(dir, "store.db");
    const waits: Array<{ seconds: number; tries: number }> = [];
    const batches: number[] = [];
    const store = new SqliteStore(path, {
      metrics: {
        batch: (appends) => batches.push(appends),
        lockWait: (seconds, tries) => waits.push({ seconds, tries }),
        error: () => {},
      },
    });
    await store.init();
    // Another process's writer, as the second server is: it holds the write lock until it commits.
    const other = new Database(path);
    try {
      await store.append({ id: "m-free", owners: ["bob", "alice"], envelope: "{}" });
      assert.equal(waits.length, 0, "a commit that found the lock free waited for nothing");
      other.exec("BEGIN IMMEDIATE");
      const appended = store.append({ id: "m-held", owners: ["bob", "alice"], envelope: "{}" });
      // The group commit (on the store's writer thread) finds the lock held and backs off: the
      // lock is let go once the store counted a refused try.
      const refused = () => (store as unknown as { busyRetries: number }).busyRetries;
      for (let i = 0; i < 1000 && refused() === 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(refused() > 0, "the commit was refused while the lock was held");
      other.exec("COMMIT");
      const result = await appended;
      assert.equal(result.duplicate, false);
      assert.equal(waits.length, 1, "one commit waited");
      assert.ok(waits[0]!.tries >= 1, `${waits[0]!.tries} refused tries`);
      assert.ok(waits[0]!.seconds >= 0);
      assert.deepEqual(batches, [1, 1]);
    } finally {
      other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
