import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { AckBatch } from "../../core/client/ack-batch.js";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import {
  GAP_PAGE,
  gapLimit,
  HOLD_MS,
  LiveDeliveries,
  type LiveDeps,
  MAX_HOLD_MS,
  MAX_QUEUED_BYTES,
} from "../../core/client/live.js";
import { PARALLEL_MIN } from "../../core/client/opener.js";
import { MAX_DELIVERIES_PER_FRAME } from "../../core/protocol/limits.js";
import type { MailboxItem } from "../../core/protocol/schema.js";
import { SqliteStore } from "../../server/store/sqlite.js";

const id = (n: number) => `0190f000-0000-7000-8000-${String(n).padStart(12, "0")}`;

function item(n: number, cursor: string): MailboxItem {
  return {
    cursor,
    serverTime: new Date(1_700_000_000_000 + n).toISOString(),
    envelope: {
      v: 1,
      suite: "test",
      id: id(n),
      from: "alice",
      device: "0123456789abcdef",
      to: "bob",
      group: null,
      seq: n,
      sentAt: new Date(1_700_000_000_000 + n).toISOString(),
      nonce: "AA",
      ct: "",
      keys: [{ to: "bob", wk: "AA" }],
      sig: "AA",
    },
  };
}

const frame = (it: MailboxItem, prev?: string | null) => ({
  v: 1,
  type: "deliver",
  owner: "bob",
  item: it,
  ...(prev !== undefined ? { prev } : {}),
});

/** What opening an item gives, without crypto: the unit under test is the ordering, not the opener. */
function opened(i: MailboxItem): ChatMessage {
  const e = i.envelope;
  return {
    id: e.id,
    conv: "u:alice",
    from: e.from,
    to: e.to,
    group: e.group,
    text: `m${e.seq}`,
    sentAt: e.sentAt,
    serverTime: i.serverTime,
    cursor: i.cursor,
    verified: true,
    problem: null,
    seq: e.seq,
    device: e.device,
  };
}

describe("live deliveries (core/client/live.ts)", () => {
  let dir: string;
  let cache: Cache;
  let mailbox: MailboxItem[];
  let syncs: number;
  let opens: number;
  let openSizes: number[];
  let emitted: string[];
  let live: LiveDeliveries;
  let deps: LiveDeps;
  let fetches: Array<{ after: string | null; limit: number }>;
  /**
   * The live path with `fetch` (as ChatClient gives it): one page of the mailbox after `after`.
   * `during` runs as the page is read (what happens meanwhile: acknowledgements storing copies).
   */
  const withFetch = (during?: () => void, extra: Partial<LiveDeps> = {}) =>
    new LiveDeliveries("bob", {
      ...deps,
      ...extra,
      fetch: async (after, limit) => {
        fetches.push({ after, limit });
        during?.();
        const from = after === null ? -1n : BigInt(after);
        const rest = mailbox.filter((i) => BigInt(i.cursor) > from);
        return { items: rest.slice(0, limit), more: rest.length > limit };
      },
    });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "zmqchat-live-"));
    cache = new Cache(join(dir, "cache.db"));
    mailbox = [];
    syncs = 0;
    opens = 0;
    openSizes = [];
    emitted = [];
    fetches = [];
    const emit = (m: ChatMessage) => emitted.push(m.text);
    deps = {
      cache,
      open: async (items) => {
        opens++;
        openSizes.push(items.length);
        return items.map(opened);
      },
      // A sync as ChatClient does it: everything after the cursor, stored with the last cursor.
      sync: async () => {
        syncs++;
        const after = cache.cursor === null ? -1n : BigInt(cache.cursor);
        const page = mailbox.filter((i) => BigInt(i.cursor) > after);
        if (page.length === 0) return 0;
        const fresh = cache.addMessages(page.map(opened), page.at(-1)!.cursor);
        for (const m of fresh) emit(m);
        return fresh.length;
      },
      running: () => null,
      emit,
      warn: (err) => {
        throw err;
      },
    };
    live = new LiveDeliveries("bob", deps);
  });

  afterEach(async () => {
    await cache.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("applies deliveries that follow the cursor directly, in order, without a sync", async () => {
    const items = [item(1, "3"), item(2, "7"), item(3, "8")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    live.push(frame(items[1]!, "3"));
    live.push(frame(items[2]!, "7"));
    await live.idle();
    assert.deepEqual(emitted, ["m1", "m2", "m3"]);
    assert.equal(syncs, 0);
    assert.equal(cache.cursor, "8");
    // Frames that arrive together are opened and stored as one run.
    assert.equal(opens, 1);
  });

  it("takes a deliver.many frame as its deliveries: applied directly in one run, in order, without a sync", async () => {
    const items = [item(1, "3"), item(2, "7"), item(3, "8")];
    mailbox.push(...items);
    live.push({
      v: 1,
      type: "deliver.many",
      owner: "bob",
      frames: [frame(items[0]!, null), frame(items[1]!, "3"), frame(items[2]!, "7")],
    });
    await live.idle();
    assert.deepEqual(emitted, ["m1", "m2", "m3"]);
    assert.equal(syncs, 0);
    assert.equal(opens, 1);
    assert.equal(cache.cursor, "8");
  });

  it("drops a delivery at or behind the cursor on its cursor alone (the sender's own copy after its ack): no envelope check, no sync; one ahead is still checked", async () => {
    const items = [item(1, "3"), item(2, "7")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    live.push(frame(items[1]!, "3"));
    await live.idle();
    const told: string[] = [];
    const l = new LiveDeliveries("bob", { ...deps, alreadyStored: (c) => told.push(c) });
    // Behind the cursor, with an envelope that would not pass the check: dropped quietly.
    l.push({ ...frame(items[0]!, null), item: { ...items[0]!, envelope: { junk: true } } });
    await l.idle();
    assert.equal(syncs, 0);
    assert.deepEqual(told, ["7"]);
    // Positive control: the same junk ahead of the cursor is malformed and makes a sync.
    l.push({ ...frame(item(3, "9"), "7"), item: { ...item(3, "9"), envelope: { junk: true } } });
    await l.idle();
    assert.equal(syncs, 1);
  });

  it("the cursor moving forward while a run is opened (the sender's ack stored its own copies) makes no sync: the run is judged again; nothing twice, order kept", async () => {
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await live.idle();
    const told: string[] = [];
    let acked = false;
    const l = new LiveDeliveries("bob", {
      ...deps,
      alreadyStored: (c) => told.push(c),
      open: async (list) => {
        // While the first run is opened, the acknowledgement of items[1] and items[2] stores them.
        if (!acked) {
          acked = true;
          cache.addMessages([opened(items[1]!), opened(items[2]!)], "8");
        }
        return deps.open(list);
      },
    });
    for (const i of [1, 2, 3]) l.push(frame(items[i]!, items[i - 1]!.cursor));
    await l.idle();
    assert.equal(syncs, 0, "no sync");
    assert.deepEqual(told, ["8"]);
    // m2 and m3 were stored by the ack (not emitted here); m4 follows the new cursor and is applied.
    assert.deepEqual(emitted, ["m1", "m4"]);
    assert.equal(cache.cursor, "12");
    assert.equal(cache.messageCount(), 4);
  });

  it("the cursor moving forward under a run still syncs when the batch also held a malformed delivery", async () => {
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await live.idle();
    let acked = false;
    const l = new LiveDeliveries("bob", {
      ...deps,
      open: async (list) => {
        if (!acked) {
          acked = true;
          cache.addMessages([opened(items[1]!)], "7");
        }
        return deps.open(list);
      },
    });
    l.push(frame(items[1]!, "3"));
    l.push(frame(items[2]!, "7"));
    // Malformed (no item): only a sync can say what it was.
    l.push({ v: 1, type: "deliver", owner: "bob", prev: "8" });
    await l.idle();
    assert.equal(syncs, 1, "the malformed delivery is not forgotten");
    assert.equal(cache.cursor, "12");
  });

  it("the cursor moving under a run to a place no delivery follows makes a sync", async () => {
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await live.idle();
    let moved = false;
    const l = new LiveDeliveries("bob", {
      ...deps,
      open: async (list) => {
        // Another process of this profile stores up to cursor 10 (an item no delivery here names).
        if (!moved) {
          moved = true;
          cache.addMessages([opened(items[1]!), opened(item(9, "10"))], "10");
        }
        return deps.open(list);
      },
    });
    l.push(frame(items[1]!, "3"));
    l.push(frame(items[3]!, "8"));
    await l.idle();
    assert.equal(syncs, 1);
    assert.equal(cache.cursor, "12");
  });

  it("frames pushed raw (as they come off the socket) are parsed when applied: a delivery, a deliver.many, and one not JSON (a sync)", async () => {
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12")];
    mailbox.push(...items);
    const raw = (v: unknown) => Buffer.from(JSON.stringify(v));
    live.push(raw(frame(items[0]!, null)));
    live.push(
      raw({
        v: 1,
        type: "deliver.many",
        owner: "bob",
        frames: [frame(items[1]!, "3"), frame(items[2]!, "7")],
      }),
    );
    await live.idle();
    assert.deepEqual(emitted, ["m1", "m2", "m3"]);
    assert.equal(syncs, 0);
    assert.equal(opens, 1, "one run");
    live.push(Buffer.from('{"v":1,"type":"deliver",'));
    await live.idle();
    assert.equal(syncs, 1, "not JSON: a malformed delivery, a sync");
    assert.deepEqual(emitted, ["m1", "m2", "m3", "m4"]);
  });

  it("raw frames wait only up to MAX_QUEUED_BYTES: beyond it they are dropped for a sync", async () => {
    const items = [item(1, "3"), item(2, "7")];
    mailbox.push(...items);
    // A frame bigger than the bound (the socket's own limit is far lower; the bound is what counts).
    live.push(Buffer.alloc(MAX_QUEUED_BYTES + 1, 0x20));
    await live.idle();
    await new Promise((r) => setImmediate(r));
    assert.equal(syncs, 1);
    assert.equal(opens, 0, "nothing parsed or opened from the dropped frame");
    assert.deepEqual(emitted, ["m1", "m2"], "the sync read the mailbox");
  });

  it("a malformed deliver.many (too many frames, not a list, a batch inside a batch, empty) makes a sync, never a crash", async () => {
    const items = [item(1, "3"), item(2, "7")];
    mailbox.push(...items);
    const many = (frames: unknown) => ({ v: 1, type: "deliver.many", owner: "bob", frames });
    const bad = [
      many(Array.from({ length: MAX_DELIVERIES_PER_FRAME + 1 }, () => frame(items[0]!, null))),
      many("not a list"),
      many([many([frame(items[0]!, null)])]),
      many([]),
      { ...many([frame(items[0]!, null)]), owner: "Not A Name" },
    ];
    for (const b of bad) {
      const before = syncs;
      live.push(b);
      await live.idle();
      assert.ok(syncs > before, `a sync after ${JSON.stringify(b).slice(0, 80)}`);
    }
    // The syncs read the mailbox: everything once, in order.
    assert.deepEqual(emitted, ["m1", "m2"]);
    // Positive control: a good batch after them is applied without a sync.
    const next = item(3, "9");
    mailbox.push(next);
    const before = syncs;
    live.push(many([frame(next, "7")]));
    await live.idle();
    assert.equal(syncs, before);
    assert.deepEqual(emitted, ["m1", "m2", "m3"]);
  });

  it("syncs on a gap that does not close within HOLD_MS, then applies what follows directly; nothing twice, order kept", async () => {
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    // items[1]'s delivery is lost: items[2] does not follow the cursor, waits, then a sync reads the gap.
    live.push(frame(items[2]!, "7"));
    await live.idle();
    assert.equal(syncs, 1);
    assert.deepEqual(emitted, ["m1", "m2", "m3", "m4"]);
    // Late duplicates of what the sync already read are dropped.
    live.push(frame(items[1]!, "3"));
    live.push(frame(items[2]!, "7"));
    live.push(frame(items[3]!, "8"));
    await live.idle();
    assert.deepEqual(emitted, ["m1", "m2", "m3", "m4"]);
    assert.equal(syncs, 1);
    assert.equal(cache.cursor, "12");
    // What follows the cursor after the sync is applied directly again.
    const next = item(5, "13");
    mailbox.push(next);
    live.push(frame(next, "12"));
    await live.idle();
    assert.deepEqual(emitted, ["m1", "m2", "m3", "m4", "m5"]);
    assert.equal(syncs, 1);
  });

  it("a hold that runs out reads just the gap (one page after the cursor) instead of syncing; only the gap and what it holds up are opened; nothing twice, order kept", async () => {
    const live = withFetch();
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12"), item(5, "13")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await live.idle();
    opens = 0;
    openSizes = [];
    // items[1]'s server publishes late: the two after it wait, the hold runs out, the gap is read.
    live.push(frame(items[2]!, "7"));
    live.push(frame(items[3]!, "8"));
    await live.idle();
    assert.equal(syncs, 0, "no sync");
    // Cursors 3 → 7: at most 4 items can lie in the gap.
    assert.deepEqual(fetches, [{ after: "3", limit: 4 }]);
    assert.deepEqual(emitted, ["m1", "m2", "m3", "m4"]);
    assert.deepEqual(openSizes, [3], "the gap's item and the two held, opened once, together");
    assert.equal(cache.cursor, "12");
    // The late delivery, and a repeat of a held one, are behind the cursor now: dropped.
    live.push(frame(items[1]!, "3"));
    live.push(frame(items[2]!, "7"));
    await live.idle();
    assert.deepEqual(emitted, ["m1", "m2", "m3", "m4"]);
    // What follows is applied directly again.
    live.push(frame(items[4]!, "12"));
    await live.idle();
    assert.deepEqual(emitted, ["m1", "m2", "m3", "m4", "m5"]);
    assert.equal(syncs, 0);
    assert.equal(fetches.length, 1);
    assert.equal(cache.cursor, "13");
  });

  it("the cursor moving on while a gap is read (the sender's acks store its own copies) makes no sync: what is held is judged again; nothing twice, order kept", async () => {
    // At the sender: a receipt (items[3]) follows two of its own messages (items[1], items[2])
    // whose acknowledgements have not come yet when the hold runs out.
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await live.idle();
    const told: string[] = [];
    // While the gap is read, the acknowledgements store the two (AckBatch → Cache.addAcked).
    const l = withFetch(
      () =>
        cache.addAcked([
          { message: opened(items[1]!), prev: "3", dequeue: false },
          { message: opened(items[2]!), prev: "7", dequeue: false },
        ]),
      { alreadyStored: (c) => told.push(c) },
    );
    l.push(frame(items[3]!, "8"));
    await l.idle();
    assert.deepEqual(fetches, [{ after: "3", limit: 5 }], "one gap read");
    assert.equal(syncs, 0, "no sync");
    // m2 and m3 were stored by their acks (not emitted here); the receipt follows the new cursor.
    assert.deepEqual(emitted, ["m1", "m4"]);
    assert.equal(cache.cursor, "12");
    assert.equal(cache.messageCount(), 4);
  });

  it("a gap read that the cursor moves under, but not up to the held delivery, waits for the rest afresh, then reads it; no sync", async () => {
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await live.idle();
    let first = true;
    // The first read races the ack of items[1] alone; items[2]'s never comes (lost reply).
    const l = withFetch(() => {
      if (first) cache.addAcked([{ message: opened(items[1]!), prev: "3", dequeue: false }]);
      first = false;
    });
    l.push(frame(items[3]!, "8"));
    await l.idle();
    assert.deepEqual(fetches, [
      { after: "3", limit: 5 },
      { after: "7", limit: 1 },
    ]);
    assert.equal(syncs, 0, "no sync");
    assert.deepEqual(emitted, ["m1", "m3", "m4"]);
    assert.equal(cache.cursor, "12");
  });

  it("a gap the page does not close (more than GAP_PAGE items missing) makes a sync; nothing twice, order kept", async () => {
    const live = withFetch();
    const n = GAP_PAGE + 3;
    const items = Array.from({ length: n }, (_, i) => item(i + 1, String(10 + i)));
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    // Only the last one comes live: GAP_PAGE + 1 items are missing before it.
    live.push(frame(items[n - 1]!, items[n - 2]!.cursor));
    await live.idle();
    assert.equal(fetches.length, 1);
    assert.equal(syncs, 1);
    assert.deepEqual(
      emitted,
      items.map((i) => `m${i.envelope.seq}`),
    );
    assert.equal(cache.cursor, items.at(-1)!.cursor);
  });

  it("a long run is opened in chunks the opener keeps on the calling thread (never its worker threads), stored as one run, in order", async () => {
    const n = PARALLEL_MIN * 3 + 5;
    const items = Array.from({ length: n }, (_, i) => item(i + 1, String(10 + i)));
    mailbox.push(...items);
    for (const [i, it] of items.entries()) live.push(frame(it, i === 0 ? null : items[i - 1]!.cursor));
    await live.idle();
    assert.equal(emitted.length, n);
    assert.deepEqual(
      emitted,
      items.map((it) => `m${it.envelope.seq}`),
    );
    assert.equal(syncs, 0);
    assert.equal(cache.cursor, items.at(-1)!.cursor);
    // Every open call stays below the opener's threshold for its threads (opener.ts).
    assert.ok(
      openSizes.every((k) => k < PARALLEL_MIN),
      `open calls of ${openSizes.join(", ")} items`,
    );
    assert.equal(
      openSizes.reduce((a, b) => a + b, 0),
      n,
    );
  });

  it("a delivery that overtakes its predecessor (two servers publishing) waits for it: in order, no sync", async () => {
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await new Promise((r) => setImmediate(r));
    // Two runs arrive ahead of items[1], in separate turns.
    live.push(frame(items[3]!, "8"));
    await new Promise((r) => setImmediate(r));
    live.push(frame(items[2]!, "7"));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(emitted, ["m1"], "nothing is applied past the missing one");
    live.push(frame(items[1]!, "3"));
    await live.idle();
    assert.deepEqual(emitted, ["m1", "m2", "m3", "m4"]);
    assert.equal(syncs, 0);
    assert.equal(cache.cursor, "12");
  });

  it("a delivery already covered by the cursor (the sender's own copy, stored from its ack) costs nothing", async () => {
    const mine = item(1, "5");
    mailbox.push(mine);
    assert.deepEqual(cache.addNext([opened(mine)], null, "5")?.length, 1);
    live.push(frame(mine, null));
    await live.idle();
    assert.deepEqual(emitted, []);
    assert.equal(syncs, 0);
    assert.equal(cache.messageCount(), 1);
  });

  it("a burst of acknowledgements is stored together, moving the cursor through our own copies", async () => {
    const acks = new AckBatch(cache);
    const mine = [item(1, "4"), item(2, "6"), item(3, "9")];
    mailbox.push(...mine);
    // Acknowledgements come back out of order; their prevs chain 4 → 6 → 9 from an empty mailbox.
    const stored = await Promise.all([
      acks.add(opened(mine[2]!), "6", false),
      acks.add(opened(mine[0]!), null, false),
      acks.add(opened(mine[1]!), "4", false),
    ]);
    assert.deepEqual(
      stored.map((s) => s.map((m) => m.text)),
      [["m3"], ["m1"], ["m2"]],
    );
    assert.equal(cache.cursor, "9");
    // Their live copies then cost nothing: no sync, nothing shown twice.
    for (const [i, it] of mine.entries()) live.push(frame(it, i === 0 ? null : mine[i - 1]!.cursor));
    await live.idle();
    assert.equal(syncs, 0);
    assert.deepEqual(emitted, []);
    assert.equal(cache.messageCount(), 3);
  });

  it("a delivery without prev (an older server) makes a sync, as before", async () => {
    const it1 = item(1, "2");
    mailbox.push(it1);
    live.push(frame(it1));
    await live.idle();
    assert.equal(syncs, 1);
    assert.deepEqual(emitted, ["m1"]);
  });

  /** Lets queued drains run (setImmediate is not faked) while setTimeout and Date are. */
  const turns = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };

  it("a hold is drawn out while other deliveries keep arriving: a publisher late by more than HOLD_MS costs no sync", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const items = [item(1, "3"), item(2, "7"), item(3, "8"), item(4, "12"), item(5, "13")];
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await turns();
    // items[1] comes 120 ms late (one server behind the other); the deliveries after it keep coming.
    live.push(frame(items[2]!, "7"));
    await turns();
    t.mock.timers.tick(40);
    live.push(frame(items[3]!, "8"));
    await turns();
    t.mock.timers.tick(40);
    live.push(frame(items[4]!, "12"));
    await turns();
    t.mock.timers.tick(40);
    assert.deepEqual(emitted, ["m1"], "nothing is applied past the missing one");
    assert.equal(syncs, 0, "the hold is still on at 120 ms: deliveries kept arriving");
    live.push(frame(items[1]!, "3"));
    await turns();
    assert.deepEqual(emitted, ["m1", "m2", "m3", "m4", "m5"]);
    assert.equal(syncs, 0);
    assert.equal(cache.cursor, "13");
  });

  it("with fetch, a hold is not drawn out: the gap is read after HOLD_MS although deliveries keep arriving; nothing twice, order kept", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const live = withFetch();
    const n = 12;
    const items = Array.from({ length: n }, (_, i) => item(i + 1, String(10 + i)));
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await turns();
    // items[1] comes late (its server is behind); one later delivery every 20 ms meanwhile.
    let readAt = -1;
    for (let i = 2; i < n; i++) {
      live.push(frame(items[i]!, items[i - 1]!.cursor));
      await turns();
      t.mock.timers.tick(20);
      await turns();
      if (fetches.length > 0 && readAt < 0) readAt = Date.now();
    }
    assert.equal(fetches.length, 1, "one gap read");
    assert.ok(readAt >= HOLD_MS && readAt <= HOLD_MS + 20, `gap read at ${readAt} ms, not drawn out`);
    assert.deepEqual(fetches[0], { after: "10", limit: 1 }, "cursors 10 → 11: one item can lie in the gap");
    // The late delivery is behind the cursor now: dropped.
    live.push(frame(items[1]!, items[0]!.cursor));
    await turns();
    assert.equal(syncs, 0);
    assert.deepEqual(
      emitted,
      items.map((i) => `m${i.envelope.seq}`),
    );
    assert.equal(cache.cursor, items.at(-1)!.cursor);
  });

  it("gapLimit: a gap read asks for no more items than the cursors leave room for, at most GAP_PAGE", () => {
    assert.equal(gapLimit("3", 7n), 4);
    assert.equal(gapLimit(null, 5n), 5);
    assert.equal(gapLimit("9", 10n), 1);
    assert.equal(gapLimit("10", 10n), 1, "never less than one");
    assert.equal(gapLimit("0", 10_000n), GAP_PAGE);
    assert.equal(
      gapLimit("1700000000000000000", 1700000000000000300n),
      GAP_PAGE,
      "time-like cursors far apart",
    );
  });

  it("a gap that outlasts MAX_HOLD_MS syncs even while deliveries keep arriving; nothing twice, order kept", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const n = Math.ceil(MAX_HOLD_MS / 40) + 4;
    const items = Array.from({ length: n }, (_, i) => item(i + 1, String(10 + i)));
    mailbox.push(...items);
    live.push(frame(items[0]!, null));
    await turns();
    // items[1] never comes live; one later delivery every 40 ms.
    for (let i = 2; i < n; i++) {
      live.push(frame(items[i]!, items[i - 1]!.cursor));
      await turns();
      t.mock.timers.tick(40);
      await turns();
      if (syncs > 0) break;
    }
    assert.equal(syncs, 1);
    assert.ok(Date.now() >= MAX_HOLD_MS - 40 && Date.now() <= MAX_HOLD_MS + 80, `synced at ${Date.now()} ms`);
    assert.deepEqual(
      emitted,
      items.map((i) => `m${i.envelope.seq}`),
    );
  });

  it("Cache.addNext stores nothing when the cursor is not at prev", () => {
    cache.addMessages([opened(item(1, "3"))], "3");
    assert.equal(cache.addNext([opened(item(2, "9"))], "5", "9"), null);
    assert.equal(cache.cursor, "3");
    assert.equal(cache.messageCount(), 1);
  });

  it("the SQLite store tells every copy's prev (so the path above is taken on it)", async () => {
    const store = new SqliteStore(join(dir, "store.db"));
    await store.init();
    try {
      const a = await store.append({ id: id(1), owners: ["bob", "alice"], envelope: "{}" });
      const b = await store.append({ id: id(2), owners: ["bob"], envelope: "{}" });
      assert.equal(a.placed.get("bob")!.prev, null);
      assert.equal(a.placed.get("alice")!.prev, null);
      assert.equal(b.placed.get("bob")!.prev, a.placed.get("bob")!.cursor);
    } finally {
      await store.close();
    }
  });
});
