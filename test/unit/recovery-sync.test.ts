import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, mock } from "node:test";
import Database from "better-sqlite3";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { RECEIPT_BURST_MS, ReceiptSender } from "../../core/client/receipt-sender.js";
import { searchMessages } from "../../core/client/search.js";
import { silentLogger } from "../../core/logger.js";
import { chatMessage } from "../helpers/chat-message.js";
import { waitFor } from "../helpers/stack.js";

let cursor = 1000;
function fromAlice(text: string, more: Partial<ChatMessage> = {}): ChatMessage {
  cursor++;
  return chatMessage(cursor, {
    conv: "u:alice",
    from: "alice",
    to: "bob",
    group: null,
    text,
    device: "0123456789abcdef",
    replyTo: null,
    ...more,
  });
}

/** Rows waiting to be indexed for search, read on a connection of its own. */
function waitingForIndex(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM messages_fts_todo").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe("recovery into a fresh cache (issue 15)", () => {
  it("holds the background search indexing during a recovery; a search meanwhile still finds every message", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-recovery-"));
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const path = join(dir, "cache.db");
      const cache = new Cache(path);
      // Positive control: without a hold, the index catches up by itself a second after a write.
      cache.addMessages([fromAlice("before the recovery")], String(cursor));
      assert.equal(waitingForIndex(path), 1);
      mock.timers.tick(1000);
      assert.equal(waitingForIndex(path), 0, "indexed by itself without a hold");

      const release = cache.holdIndexing();
      const pages = [0, 1, 2].map((p) => [fromAlice(`page ${p} zebra`), fromAlice(`page ${p} yak`)]);
      for (const page of pages) cache.addMessages(page, page.at(-1)!.cursor);
      mock.timers.tick(10_000);
      assert.equal(waitingForIndex(path), 6, "nothing indexed in the background while held");
      // A search during the hold indexes what waits first: it misses nothing.
      assert.equal(searchMessages(cache, "zebra").length, 3);
      assert.equal(waitingForIndex(path), 0);

      cache.addMessages([fromAlice("last page zebra")], String(cursor));
      assert.equal(waitingForIndex(path), 1);
      release();
      release(); // a second call changes nothing
      mock.timers.tick(1000);
      assert.equal(waitingForIndex(path), 0, "indexed by itself once the hold ends");
      assert.equal(searchMessages(cache, "zebra").length, 4);
      await cache.close();
    } finally {
      mock.timers.reset();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sends a recovery's delivered receipts after it, not between its pages", async () => {
    const cache = new Cache(":memory:");
    cache.receipts.owner = "bob";
    const sent: string[][] = [];
    const client = {
      online: true,
      recovering: true,
      async send(_t: { user: string }, _text: string, _o: object, extra?: { receipt?: { ids: string[] } }) {
        sent.push(extra!.receipt!.ids);
        return fromAlice("(ack)");
      },
    };
    const sender = new ReceiptSender(client, cache.receipts, silentLogger);
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const page = [fromAlice("one"), fromAlice("two")];
      cache.addMessages(page, page[1]!.cursor);
      for (let i = 0; i < 8; i++) mock.timers.tick(RECEIPT_BURST_MS);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(sent, [], "nothing sent while the recovery runs");
      assert.equal(cache.receipts.waiting(), true, "the receipts wait in the cache");
      client.recovering = false;
      mock.timers.tick(RECEIPT_BURST_MS);
      await waitFor("the receipts", () => sent.length === 1, 5000);
      assert.deepEqual(sent, [page.map((m) => m.id)], "one event for the whole recovery");
    } finally {
      mock.timers.reset();
      sender.stop();
      await cache.close();
    }
  });

  it("stores a page with one id at two places once, at its first place, and keeps the replay for verify-history", async () => {
    const cache = new Cache(":memory:");
    cache.receipts.owner = "bob";
    const first = fromAlice("pay 10 to carol");
    const other = fromAlice("something else");
    cursor++;
    const replay = { ...first, cursor: String(cursor), seq: first.seq };
    cache.addMessages([first, other, replay], replay.cursor);
    const shown = cache.history("u:alice", 10);
    assert.deepEqual(
      shown.map((m) => [m.id, m.cursor]),
      [
        [first.id, first.cursor],
        [other.id, other.cursor],
      ],
      "stored once, at the place it was first handed out",
    );
    assert.deepEqual(cache.replays("u:alice"), [{ id: first.id, cursors: [first.cursor, replay.cursor] }]);
    // One delivered receipt per new message, queued in the same transaction.
    assert.deepEqual(
      cache.receipts.batches().map((b) => [b.status, b.ids]),
      [["delivered", [first.id, other.id]]],
    );
    await cache.close();
  });

  it("drops a page's delivered receipt that a read receipt from the user's other device in the same page makes moot", async () => {
    const cache = new Cache(":memory:");
    cache.receipts.owner = "bob";
    const m = fromAlice("hello");
    cursor++;
    const readOnPhone: ChatMessage = {
      ...fromAlice("(read receipt)"),
      from: "bob",
      to: "alice",
      cursor: String(cursor),
      receipt: { status: "read", group: null, ids: [m.id] },
    };
    // Positive control: alone, the message gets a delivered receipt.
    const alone = new Cache(":memory:");
    alone.receipts.owner = "bob";
    alone.addMessages([m], m.cursor);
    assert.deepEqual(
      alone.receipts.batches().map((b) => b.status),
      ["delivered"],
    );
    await alone.close();
    cache.addMessages([m, readOnPhone], readOnPhone.cursor);
    assert.deepEqual(cache.receipts.batches(), [], "alice was told by bob's phone already");
    await cache.close();
  });
});
