import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { uuidv7 } from "../../core/protocol/ids.js";
import type { V1Http } from "../../server/store/influx/http.js";
import { InfluxStore } from "../../server/store/influx.js";
import { type Influxd, startInfluxd } from "../helpers/influxd.js";

// How a written batch settles (group-commit.ts, watermarks.ts, predecessors.ts) on a real
// influxd, with two stores standing for two servers: the round trips it takes.

/** Every InfluxQL request a store sends, as sent. */
function spyQueries(store: InfluxStore): string[] {
  const http = (store as unknown as { ctx: { http: V1Http } }).ctx.http;
  const sent: string[] = [];
  const query = http.query.bind(http);
  http.query = (q, options) => {
    sent.push(q);
    return query(q, options);
  };
  return sent;
}

describe("InfluxDB group commit: settling a batch", () => {
  let influxd: Influxd;
  const stores: InfluxStore[] = [];

  before(async () => {
    influxd = await startInfluxd();
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await influxd?.stop();
  });

  it("reads the copies' predecessors in the request whose watermarks show them visible", async () => {
    // A window far longer than the test: every copy settles by the other store's watermark.
    const open = () => new InfluxStore({ url: influxd.url, db: "settle", safetyWindowMs: 5000 });
    const [a, b] = [open(), open()];
    stores.push(a, b);
    await Promise.all([a.init(), b.init()]);
    const sent = spyQueries(a);
    const first = await a.append({ id: uuidv7(), owners: ["bob", "alice"], envelope: "{}" });
    const second = await a.append({ id: uuidv7(), owners: ["bob", "alice"], envelope: "{}" });
    // The predecessors were told (so they were read): the first copy has none, the second the first.
    assert.equal(first.placed.get("bob")?.prev, null);
    assert.equal(second.placed.get("bob")?.prev, first.placed.get("bob")?.cursor);
    assert.equal(second.placed.get("alice")?.prev, first.placed.get("alice")?.cursor);
    const predecessorReads = sent.filter((q) => q.includes("ORDER BY time DESC LIMIT"));
    assert.ok(predecessorReads.length >= 2, `predecessor reads: ${predecessorReads.length}`);
    for (const q of predecessorReads) assert.match(q, /FROM "watermarks"/, `read alone: ${q}`);
  });
});
