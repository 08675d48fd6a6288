import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { histogramQuantile, largest, type Samples } from "../../bench/lib/metrics.js";

const h = "zmqchat_server_store_batch_seconds";
function scrape(counts: Record<string, number>): Samples {
  return new Map(Object.entries(counts).map(([le, n]) => [`${h}_bucket{le="${le}"}`, n]));
}

describe("bench metrics: a quantile from Prometheus histogram buckets", () => {
  it("takes the bucket of the quantile from the change between scrapes, summed over processes", () => {
    const before = [scrape({ "0.001": 50, "0.005": 50, "0.025": 50, "+Inf": 50 }), scrape({})];
    // 100 new observations: 90 ≤ 1 ms, 8 in (1, 5] ms, 1 in (5, 25] ms (two processes), 1 past 25 ms.
    const after = [
      scrape({ "0.001": 140, "0.005": 146, "0.025": 146, "+Inf": 147 }),
      scrape({ "0.001": 0, "0.005": 2, "0.025": 3, "+Inf": 3 }),
    ];
    assert.equal(histogramQuantile(before, after, h, 0.5), 0.001);
    assert.equal(histogramQuantile(before, after, h, 0.98), 0.005);
    assert.equal(histogramQuantile(before, after, h, 0.99), 0.025);
    assert.equal(histogramQuantile(before, after, h, 1), Infinity);
  });

  it("keeps to the samples whose labels hold the given ones", () => {
    const r = "zmqchat_server_request_seconds";
    const m = (type: string, counts: Record<string, number>): Array<[string, number]> =>
      Object.entries(counts).map(([le, n]) => [`${r}_bucket{le="${le}",type="${type}"}`, n]);
    const before = [
      new Map([...m("sync", { "0.001": 0, "+Inf": 0 }), ...m("send.many", { "0.001": 0, "+Inf": 0 })]),
    ];
    const after = [
      new Map([...m("sync", { "0.001": 0, "+Inf": 100 }), ...m("send.many", { "0.001": 100, "+Inf": 100 })]),
    ];
    assert.equal(histogramQuantile(before, after, r, 0.99, 'type="send.many"'), 0.001);
    assert.equal(histogramQuantile(before, after, r, 0.99, 'type="sync"'), Infinity);
    assert.equal(
      histogramQuantile(before, after, r, 0.99),
      Infinity,
      "positive control: both types together",
    );
  });

  it("is NaN with no observations", () => {
    const same = [scrape({ "0.001": 5, "+Inf": 5 })];
    assert.ok(Number.isNaN(histogramQuantile(same, same, h, 0.99)));
  });
});

describe("bench metrics: the largest of one gauge across processes", () => {
  const g = "zmqchat_server_nodejs_eventloop_lag_max_seconds";
  it("takes the largest process's value, ignoring other names and processes without it", () => {
    const a: Samples = new Map([
      [g, 0.012],
      ["zmqchat_balancer_nodejs_eventloop_lag_max_seconds", 0.5],
    ]);
    const b: Samples = new Map([[g, 0.031]]);
    const c: Samples = new Map();
    assert.equal(largest([a, b, c], g), 0.031);
    assert.equal(largest([c, a], g), 0.012);
  });

  it("is NaN when no process has it", () => {
    assert.ok(Number.isNaN(largest([new Map()], "zmqchat_server_nodejs_eventloop_lag_max_seconds")));
  });
});
