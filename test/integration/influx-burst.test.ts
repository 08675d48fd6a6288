import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { uuidv7 } from "../../core/protocol/ids.js";
import { InfluxStore } from "../../server/store/influx.js";
import type { StoredItem } from "../../server/store/store.js";
import { type Influxd, startInfluxd } from "../helpers/influxd.js";

describe("InfluxStore under a burst into one mailbox", () => {
  let influxd: Influxd;
  before(async () => {
    influxd = await startInfluxd();
  });
  after(() => influxd?.stop());

  it("stores 10,000 concurrent appends, many in the same millisecond, and reads back every one", async (t) => {
    const store = new InfluxStore({ url: influxd.url, db: "burst" });
    await store.init();
    try {
      const n = 10_000;
      const ids = Array.from({ length: n }, () => uuidv7());
      const started = performance.now();
      const results = await Promise.all(
        ids.map((id, i) =>
          store.append({ id, owners: ["bob"], envelope: JSON.stringify({ n: i, pad: "x".repeat(200) }) }),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      t.diagnostic(`${n} appends in ${seconds.toFixed(2)} s: ${Math.round(n / seconds)} appends/s`);

      const cursors = results.map((r) => r.placed.get("bob")!.cursor);
      assert.equal(new Set(cursors).size, n, "every append got its own position");
      assert.ok(results.every((r) => !r.duplicate));
      const perMs = new Map<string, number>();
      for (const c of cursors) perMs.set(c.slice(0, -6), (perMs.get(c.slice(0, -6)) ?? 0) + 1);
      const busiest = Math.max(...perMs.values());
      t.diagnostic(`busiest millisecond held ${busiest} appends`);
      assert.ok(busiest > 1, "the test must put several appends into one millisecond");
      for (const c of cursors) assert.ok(BigInt(c) > 2n ** 53n, "cursors are exact nanoseconds beyond 2^53");

      const readStarted = performance.now();
      const seen: StoredItem[] = [];
      let after: string | null = null;
      for (;;) {
        const page: { items: StoredItem[]; more: boolean } = await store.read("bob", after, 2000);
        seen.push(...page.items);
        if (!page.more) break;
        after = page.items.at(-1)!.cursor;
      }
      t.diagnostic(`read ${seen.length} back in ${((performance.now() - readStarted) / 1000).toFixed(2)} s`);
      assert.equal(seen.length, n, "none lost");
      const numbers = seen.map((x) => (JSON.parse(x.envelope) as { n: number }).n);
      assert.equal(new Set(numbers).size, n, "none merged");
      assert.deepEqual(
        seen.map((x) => x.cursor),
        [...cursors].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)),
        "read order is append order and cursors round-trip exactly",
      );
      // The appends were queued in order, so positions follow the order of the calls.
      assert.deepEqual(
        numbers,
        [...numbers].sort((a, b) => a - b),
      );
    } finally {
      await store.close();
    }
  });

  it("splits a fan-out bigger than one request into several writes", async () => {
    const store = new InfluxStore({ url: influxd.url, db: "fanout", maxBatchBytes: 4096 });
    await store.init();
    try {
      const owners = Array.from({ length: 40 }, (_, i) => `member${i}`);
      const envelope = JSON.stringify({ text: "y".repeat(1000) });
      const r = await store.append({ id: uuidv7(), owners, envelope });
      assert.equal(r.placed.size, owners.length);
      for (const owner of owners) {
        const { items } = await store.read(owner, null, 10);
        assert.deepEqual(
          items.map((x) => [x.cursor, x.envelope]),
          [[r.placed.get(owner)!.cursor, envelope]],
        );
      }
    } finally {
      await store.close();
    }
  });
});
