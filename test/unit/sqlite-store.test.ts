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
