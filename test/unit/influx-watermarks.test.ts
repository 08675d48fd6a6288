import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { LaneClock } from "../../server/store/influx/clock.js";
import { InfluxContext } from "../../server/store/influx/context.js";
import { V1Http } from "../../server/store/influx/http.js";
import { LaneLease } from "../../server/store/influx/lane-lease.js";
import { Watermarks } from "../../server/store/influx/watermarks.js";
import { SafetyWindow } from "../../server/store/influx/window.js";
import { answer, FakeV1 } from "./influx-fake-v1.js";

// Lane watermarks (watermarks.ts) against a fake v1 endpoint: what a process publishes, and
// when the others' watermarks let it say that everything up to a time is visible.

let fake: FakeV1;
let http: V1Http;
before(async () => {
  fake = await FakeV1.start();
  http = new V1Http({ url: fake.url, db: "db", timeoutMs: 2000 });
});
after(async () => {
  http.close();
  await fake.close();
});

function setUp(windowMs: number, everyMs = 10_000) {
  fake.points.length = 0;
  const ctx = new InfluxContext(
    http,
    { retryForMs: 1000, where: "the fake" },
    new SafetyWindow(windowMs),
    undefined,
  );
  const lanes = new LaneLease(ctx, 60_000, "me");
  lanes.clock = new LaneClock(1);
  let inflight: bigint | null = null;
  const marks = new Watermarks(ctx, lanes, { everyMs, quietMs: 60_000 }, () => inflight);
  // Live holders: me and "other" (and "gone", whose latest mark is a release).
  const others = new Map<string, bigint>();
  fake.onQuery = (q) => {
    const [lanesQ] = q.split("; ");
    assert.match(lanesQ!, /FROM "lanes"/);
    return answer(
      [
        { tags: { lane: "1", holder: "me" }, columns: ["time", "alive"], values: [[1n, true]] },
        { tags: { lane: "2", holder: "other" }, columns: ["time", "alive"], values: [[1n, true]] },
        {
          tags: { lane: "3", holder: "gone" },
          columns: ["time", "alive"],
          values: [
            [1n, true],
            [2n, false],
          ],
        },
      ],
      [
        ...[...others].map(([holder, wm]) => ({
          tags: { holder },
          columns: ["time", "wm"],
          values: [[1n, wm.toString()]],
        })),
        ...fake.points
          .filter((p) => p.measurement === "watermarks")
          .map((p) => ({ tags: p.tags, columns: ["time", "wm"], values: [[p.ts, p.fields.wm]] })),
      ],
    );
  };
  return { marks, lanes, others, setInflight: (ts: bigint | null) => (inflight = ts) };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe("lane watermarks", () => {
  it("publishes a stamp of its own lane clock, later than anything it stamped before", async () => {
    const { marks, lanes } = setUp(10_000);
    const before = lanes.clock!.next();
    marks.publish();
    const deadline = Date.now() + 5000;
    while (!fake.points.some((x) => x.measurement === "watermarks") && Date.now() < deadline) await settle();
    const [p] = fake.points.filter((x) => x.measurement === "watermarks");
    assert.equal(p?.tags.holder, "me");
    const wm = BigInt(String(p!.fields.wm));
    assert.ok(wm > before, "after every earlier stamp");
    assert.ok(lanes.clock!.next() > wm, "before every later one");
  });

  it("while a batch of its own is being written, publishes below that batch's lowest stamp", async () => {
    const { marks, lanes, setInflight } = setUp(10_000, 5);
    const earlier = lanes.clock!.next();
    const batchMin = lanes.clock!.next();
    lanes.clock!.next();
    setInflight(batchMin);
    marks.start();
    try {
      const deadline = Date.now() + 5000;
      while (!fake.points.some((x) => x.measurement === "watermarks") && Date.now() < deadline)
        await settle();
    } finally {
      marks.stop();
    }
    const marksSeen = fake.points.filter((x) => x.measurement === "watermarks");
    assert.ok(marksSeen.length > 0, "a busy process still publishes");
    for (const p of marksSeen) {
      const wm = BigInt(String(p.fields.wm));
      assert.equal(wm, batchMin - 1n, "below the batch in flight, at or above every acknowledged point");
      assert.ok(wm >= earlier);
    }
  });

  it("the floor is the lowest watermark of the other live holders; a missing one holds it back", async () => {
    const { marks, others, lanes } = setUp(10_000);
    const t = lanes.clock!.next();
    assert.equal(await marks.floor(), -1n, "other has published nothing: nothing can be told");
    others.set("other", t - 1000n);
    assert.equal(await marks.floor(), t - 1000n, "released holders and this process do not count");
    let woke = false;
    const waiting = marks.waitVisible(t).then(() => {
      woke = true;
    });
    await settle();
    assert.equal(woke, false, "not before the other's watermark passes");
    others.set("other", t);
    await waiting;
  });

  it("says nothing after a failed write of its own, and publishes nothing then", async () => {
    const { marks, others } = setUp(10_000);
    others.set("other", 9000n);
    marks.failed();
    assert.equal(await marks.floor(), -1n);
    marks.publish();
    await settle();
    assert.equal(fake.points.filter((x) => x.measurement === "watermarks").length, 0);
  });

  it("the window settles a waiter when the watermarks do not", async () => {
    const { marks, lanes } = setUp(30);
    await marks.waitVisible(lanes.clock!.next());
  });
});
