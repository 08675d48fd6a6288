import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Results, table } from "../../bench/lib/report.js";
import { distribution, extent, median, percentile } from "../../bench/lib/stats.js";
import { cpuMicros, rssBytes } from "../../bench/lib/sysinfo.js";
import { benchText, parseBenchText } from "../../bench/lib/text.js";

// The whole bench runs once in `npm test` (scripts/test.sh: npm run bench -- --quick); these
// check the arithmetic its figures rest on.
describe("bench figures", () => {
  it("takes nearest-rank percentiles and leaves out missing values", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(xs, 50), 50);
    assert.equal(percentile(xs, 99), 99);
    assert.equal(percentile(xs, 100), 100);
    const d = distribution(Float64Array.from([3, Number.NaN, 1, 2]));
    assert.deepEqual(d, { count: 3, p50: 2, p99: 3, max: 3 });
    assert.deepEqual(extent([Number.NaN, 5, -1]), { min: -1, max: 5 });
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
  });

  it("tags message texts so a receiver can spot a duplicate", () => {
    const t = benchText("c1", 1234, 200);
    assert.equal(Buffer.byteLength(t), 200);
    assert.deepEqual(parseBenchText(t), { tag: "c1", index: 1234 });
    assert.equal(parseBenchText("hello"), null);
  });

  it("computes medians, ranges, ratios to the baseline and targets", () => {
    const r = new Results();
    const meta = { workload: "w", label: "l", unit: "msg/s", better: "higher" as const };
    for (const v of [100, 300, 200]) r.add("base", v, meta);
    for (const v of [50, 70, 60]) r.add("fig", v, { ...meta, baseline: "base" });
    r.target("fig", ">=", 1 / 3, "ratio");
    r.target("fig", ">=", 100);
    r.target("fig", ">=", 55, "median", [8, 15]);
    r.unavailable("other", meta, "influxd is not installed");
    const figs = r.finish();
    const fig = figs.find((f) => f.id === "fig")!;
    assert.equal(fig.median, 60);
    assert.equal(fig.min, 50);
    assert.equal(fig.max, 70);
    assert.equal(fig.ratioToBaseline, 0.3);
    assert.deepEqual(
      fig.targets?.map((t) => t.met),
      [false, false, true],
    );
    const text = table(figs);
    assert.match(text, /ratio >= 0\.33: NOT met; >= 100: NOT met; #8 #15 >= 55\.0: met/);
    assert.match(text, /not available: influxd is not installed/);
    assert.match(text, /0\.30×/);
  });

  it("gives each figure compared with a baseline its ratio to the peer system's figure for that baseline", () => {
    const r = new Results();
    const meta = { workload: "w", label: "l", unit: "msg/s", better: "higher" as const };
    r.comparePeer("base", "peer");
    r.add("base", 1000, meta);
    r.add("peer", 400, meta);
    r.add("fig", 100, { ...meta, baseline: "base" });
    r.add("alone", 100, meta);
    const figs = r.finish();
    const fig = figs.find((f) => f.id === "fig")!;
    assert.equal(fig.ratioToBaseline, 0.1);
    assert.equal(fig.ratioToPeer, 0.25);
    assert.equal(figs.find((f) => f.id === "alone")!.ratioToPeer, undefined);
    assert.match(table(figs), /× mosquitto[\s\S]*0\.10×\s+0\.25×/);
  });

  it("reads CPU time and RSS from /proc", () => {
    assert.ok(cpuMicros(process.pid) > 0);
    assert.ok(rssBytes(process.pid) > 1024 * 1024);
  });
});
