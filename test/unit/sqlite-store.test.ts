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
      // The group commit runs on the next turn of the event loop, finds the lock held and backs off.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
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

describe("the SQLite store syncs the log after a commit, outside the write lock, before anything of it is relied on", () => {
  /** A log sync the test lets finish (or fail) when it wants; `calls` resolves at the first. */
  function heldSync() {
    const waiting: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
    let called!: () => void;
    const calls = new Promise<void>((r) => {
      called = r;
    });
    return {
      calls,
      waiting,
      syncFile: (_fd: number) =>
        new Promise<void>((resolve, reject) => {
          waiting.push({ resolve, reject });
          called();
        }),
    };
  }

  async function within<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within 5 s`)), 5000);
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  it("an append resolves once the log is synced, and the other server may write while the sync runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-store-sync-"));
    const path = join(dir, "store.db");
    const sync = heldSync();
    const store = new SqliteStore(path, { syncFile: sync.syncFile });
    await store.init();
    const other = new Database(path);
    try {
      let settled = false;
      const appended = store.append({ id: "m-1", owners: ["bob", "alice"], envelope: "{}" }).finally(() => {
        settled = true;
      });
      await within(sync.calls, "the log sync after the commit");
      // The commit is done and its lock released: another process's writer gets it at once.
      other.exec("BEGIN IMMEDIATE");
      other.exec("ROLLBACK");
      await new Promise((r) => setImmediate(r));
      assert.equal(settled, false, "the append resolved before its commit was synced");
      for (const w of sync.waiting.splice(0)) w.resolve();
      assert.equal((await within(appended, "the append")).duplicate, false);
    } finally {
      other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a read hands out appended items only once the log is synced", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-store-sync-read-"));
    const path = join(dir, "store.db");
    const sync = heldSync();
    const store = new SqliteStore(path, { syncFile: sync.syncFile });
    await store.init();
    try {
      const appended = store.append({ id: "m-1", owners: ["bob", "alice"], envelope: "{}" });
      await within(sync.calls, "the log sync after the commit");
      // Committed, so visible, but not yet durable: the read waits for a sync too.
      const got: { page?: { items: unknown[] } } = {};
      const read = store.read("bob", null, 10).then((p) => {
        got.page = p;
        return p;
      });
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      assert.equal(got.page, undefined, "the read handed out an item not yet synced");
      // The append's sync, then the read's (it came while the first ran), each let through.
      while (!got.page) {
        for (const w of sync.waiting.splice(0)) w.resolve();
        await new Promise((r) => setImmediate(r));
      }
      const [, page] = await within(Promise.all([appended, read]), "the append and the read");
      assert.equal(page.items.length, 1);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a failed sync refuses the batch; sent again, it is stored once, at the place the first commit gave it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-store-sync-fail-"));
    const path = join(dir, "store.db");
    let fail = true;
    const errors: string[] = [];
    const store = new SqliteStore(path, {
      metrics: { batch: () => {}, error: (op) => errors.push(op) },
      syncFile: async () => {
        if (fail) throw new Error("EIO: i/o error, fdatasync");
      },
    });
    await store.init();
    try {
      await assert.rejects(store.append({ id: "m-1", owners: ["bob", "alice"], envelope: "{}" }), (err) => {
        assert.equal((err as { code?: string }).code, "unavailable");
        return true;
      });
      assert.deepEqual(errors, ["append"]);
      fail = false;
      const again = await store.append({ id: "m-1", owners: ["bob", "alice"], envelope: "{}" });
      assert.equal(again.duplicate, true);
      const page = await store.read("bob", null, 10);
      assert.equal(page.items.length, 1);
      assert.equal(again.placed.get("bob")!.cursor, page.items[0]!.cursor);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
