import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { CACHE_PAGE_BYTES, Cache, type ChatMessage } from "../../core/client/cache.js";
import { chatMessage } from "../helpers/chat-message.js";

function message(cursor: number): ChatMessage {
  return chatMessage(cursor, {
    conv: "u:bob",
    from: "bob",
    to: "alice",
    group: null,
    // Longer than a page: the row overflows into more pages and must still read back whole.
    text: `m${cursor} ${"x".repeat(cursor % 2 === 0 ? 200 : 3000)}`,
  });
}

function pageSize(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma("page_size", { simple: true }) as number;
  } finally {
    db.close();
  }
}

async function inDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-cache-pages-"));
  try {
    await run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Stores 40 messages one transaction each (as live deliveries arrive) and reads them back. */
async function roundTrip(path: string): Promise<void> {
  const cache = new Cache(path);
  const sent = Array.from({ length: 40 }, (_, i) => message(i + 1));
  try {
    for (const m of sent) cache.addMessages([m], m.cursor);
    const back = cache.history("u:bob", 100);
    assert.deepEqual(
      back.map((m) => [m.id, m.text]),
      sent.map((m) => [m.id, m.text]),
    );
  } finally {
    await cache.close();
  }
  // And again after a reopen, from the file.
  const again = new Cache(path);
  try {
    assert.equal(again.history("u:bob", 100).length, sent.length);
  } finally {
    await again.close();
  }
}

describe("cache page size", () => {
  it("a new cache is made with CACHE_PAGE_BYTES pages (set before WAL mode, when it still takes)", async () => {
    await inDir(async (dir) => {
      const path = join(dir, "new.db");
      await roundTrip(path);
      assert.equal(CACHE_PAGE_BYTES, 1024);
      assert.equal(pageSize(path), CACHE_PAGE_BYTES);
    });
  });

  it("a cache made before, with SQLite's 4,096 B pages in WAL mode, keeps them and works as before", async () => {
    await inDir(async (dir) => {
      const path = join(dir, "old.db");
      // What an earlier version left: SQLite's default page size, already in WAL mode.
      const old = new Database(path);
      old.pragma("journal_mode = WAL");
      old.exec("CREATE TABLE earlier (x INTEGER)");
      old.close();
      assert.equal(pageSize(path), 4096);
      await roundTrip(path);
      assert.equal(pageSize(path), 4096);
    });
  });
});
