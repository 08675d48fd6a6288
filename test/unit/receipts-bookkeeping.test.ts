import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type Database from "better-sqlite3";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { uuidv7 } from "../../core/protocol/ids.js";

function fromCarol(n: number, start = 0): ChatMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    id: uuidv7(),
    conv: "u:carol",
    from: "carol",
    to: "bob",
    group: null,
    text: `m${i}`,
    sentAt: new Date().toISOString(),
    serverTime: new Date().toISOString(),
    cursor: String(start + i + 1),
    verified: true,
    problem: null,
    seq: start + i + 1,
    device: "0123456789abcdef",
  }));
}

describe("receipts bookkeeping (issue 15: cheap and bounded)", () => {
  it("sends each receipt once, keeps no row per delivered receipt, and keeps at most sentKept read rows", async () => {
    const cache = new Cache(":memory:");
    const r = cache.receipts;
    r.owner = "bob";
    r.sentKept = 150;
    const db = (cache as unknown as { db: Database.Database }).db;
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    const messages = fromCarol(400);
    cache.addMessages(messages, "400");
    // Positive control: storing them queued one delivered receipt each.
    assert.equal(count("SELECT count(*) AS n FROM receipts_out WHERE status = 'delivered'"), 400);
    for (const b of r.batches()) r.sent(b);
    assert.equal(r.waiting(), false, "nothing waits once every batch went out");
    assert.equal(count("SELECT count(*) AS n FROM receipts_sent"), 0, "no row per delivered receipt");
    // Stored again (a second sync of the same page): not queued again.
    cache.addMessages(messages, "400");
    assert.equal(r.waiting(), false);

    cache.transaction(() => r.markRead(messages.slice(0, 300)));
    const reads = r.batches();
    assert.deepEqual(
      reads.map((b) => [b.status, b.ids.length]),
      [
        ["read", 100],
        ["read", 100],
        ["read", 100],
      ],
    );
    for (const b of reads) r.sent(b);
    assert.equal(r.waiting(), false);
    assert.ok(count("SELECT count(*) AS n FROM receipts_sent") <= 150, "read rows are pruned to sentKept");
    // Shown again: the newest read receipts are remembered and not sent twice.
    cache.transaction(() => r.markRead(messages.slice(250, 300)));
    assert.equal(r.waiting(), false);
    await cache.close();
  });

  it("drops the delivered rows an older cache kept", async () => {
    const cache = new Cache(":memory:");
    const db = (cache as unknown as { db: Database.Database }).db;
    db.prepare("INSERT INTO receipts_sent (id, status) VALUES ('a', 'delivered'), ('b', 'read')").run();
    // Opening the receipts store again (as a newer client opening an older cache does) prunes them.
    new (cache.receipts.constructor as new (db: Database.Database) => unknown)(db);
    const rows = db.prepare("SELECT id, status FROM receipts_sent ORDER BY id").all();
    assert.deepEqual(rows, [{ id: "b", status: "read" }]);
    await cache.close();
  });

  it("records a receipt event's ids in one go: own messages show delivered, a repeat tells nobody again", async () => {
    const cache = new Cache(":memory:");
    const r = cache.receipts;
    r.owner = "bob";
    const received: string[][] = [];
    r.onReceived = (e) => received.push(e.ids);
    // Bob's own messages to carol.
    const mine = fromCarol(3).map((m) => ({ ...m, from: "bob", to: "carol", conv: "u:carol" }));
    cache.addMessages(mine, "3");
    // Positive control: before the receipt they are only sent.
    assert.deepEqual(
      cache.history("u:carol", 10).map((m) => m.status),
      ["sent", "sent", "sent"],
    );
    const receipt: ChatMessage = {
      ...fromCarol(1, 3)[0]!,
      receipt: { status: "delivered", group: null, ids: [mine[0]!.id, mine[2]!.id, mine[0]!.id] },
    };
    cache.addMessages([receipt], "4");
    await Promise.resolve();
    assert.deepEqual(
      cache.history("u:carol", 10).map((m) => m.status),
      ["delivered", "sent", "delivered"],
    );
    assert.equal(received.length, 1);
    // The same receipt again (a sync replaying it): stored once, nobody told twice.
    r.record({ ...receipt, receipt: receipt.receipt! });
    await Promise.resolve();
    assert.equal(received.length, 1);
    await cache.close();
  });

  it("batches a window per author, conversation and status, MAX_RECEIPT_IDS at most, in queue order", async () => {
    const cache = new Cache(":memory:");
    const r = cache.receipts;
    r.owner = "bob";
    const from = (who: string, n: number, start: number) =>
      fromCarol(n, start).map((m) => ({ ...m, from: who, conv: `u:${who}` }));
    // carol 150, dave 10, carol 60 more: carol's second batch takes her later rows up to 100.
    cache.addMessages(from("carol", 150, 0), "150");
    cache.addMessages(from("dave", 10, 150), "160");
    cache.addMessages(from("carol", 60, 160), "220");
    assert.deepEqual(
      r.batches().map((b) => [b.author, b.status, b.ids.length]),
      [
        ["carol", "delivered", 100],
        ["carol", "delivered", 100],
        ["dave", "delivered", 10],
        ["carol", "delivered", 10],
      ],
    );
    await cache.close();
  });

  it("keeps no row for the user's own delivered receipts, and still keeps own read receipts", async () => {
    const cache = new Cache(":memory:");
    const r = cache.receipts;
    r.owner = "bob";
    const db = (cache as unknown as { db: Database.Database }).db;
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    const theirs = fromCarol(100);
    cache.addMessages(theirs, "100");
    const ids = theirs.map((m) => m.id);
    // Bob's receipt to carol for all 100, as its acknowledgement (or a sync) stores it.
    const own = (status: "delivered" | "read", cursor: number): ChatMessage => ({
      ...fromCarol(1, cursor - 1)[0]!,
      from: "bob",
      to: "carol",
      receipt: { status, group: null, ids },
    });
    cache.addMessages([own("delivered", 101)], "101");
    assert.equal(
      count("SELECT count(*) AS n FROM receipts WHERE reader = 'bob'"),
      0,
      "an own delivered receipt keeps no row (it kept one per id)",
    );
    // Positive control: an own read receipt is kept (it tells this device what another one read).
    cache.addMessages([own("read", 102)], "102");
    assert.equal(count("SELECT count(*) AS n FROM receipts WHERE reader = 'bob' AND status = 'read'"), 100);
    // Carol's messages read the same either way: they are not bob's, so they have no status.
    assert.deepEqual(new Set(cache.history("u:carol", 200).map((m) => m.status)), new Set([null]));
    await cache.close();
  });
});
