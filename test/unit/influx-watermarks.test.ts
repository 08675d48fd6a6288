import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { LaneClock } from "../../server/store/influx/clock.js";
import { InfluxContext } from "../../server/store/influx/context.js";
import { GroupCommit } from "../../server/store/influx/group-commit.js";
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

function setUp(windowMs: number, everyMs = 10_000, aheadMs = 0) {
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
  const marks = new Watermarks(ctx, lanes, { everyMs, quietMs: 60_000, aheadMs }, () => inflight);
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
  return { ctx, marks, lanes, others, setInflight: (ts: bigint | null) => (inflight = ts) };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

/**
 * Waits until no point has arrived for 100 ms, then forgets what came: a timer of an earlier
 * test may have sent a watermark just before that test stopped it, which lands here later (seen
 * once under load: a second watermark in the test after the idle one).
 */
async function drained(): Promise<void> {
  const deadline = Date.now() + 5000;
  for (let n = -1; n !== fake.points.length && Date.now() < deadline; ) {
    n = fake.points.length;
    await new Promise((r) => setTimeout(r, 100));
  }
  fake.points.length = 0;
}

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

  it("idle, promises ahead of its clock on the timer, and stamps nothing below that afterwards", async () => {
    const { marks, lanes } = setUp(10_000, 5, 400);
    const before = lanes.clock!.next();
    const startedNs = BigInt(Date.now()) * 1_000_000n;
    marks.start();
    try {
      const deadline = Date.now() + 5000;
      while (!fake.points.some((x) => x.measurement === "watermarks") && Date.now() < deadline)
        await settle();
    } finally {
      marks.stop();
    }
    const [p] = fake.points.filter((x) => x.measurement === "watermarks");
    const wm = BigInt(String(p!.fields.wm));
    assert.ok(wm > before);
    // Another process waiting on copies it stamped up to now finds them passed at once.
    assert.ok(wm >= startedNs + 400n * 1_000_000n, "400 ms ahead of the clock when published");
    const later = lanes.clock!.next();
    assert.ok(later > wm, "every later stamp lies above the promise");
    assert.ok(lanes.clock!.next() > later);
  });

  it("while a batch of its own is being written, publishes below that batch's lowest stamp", async () => {
    const { marks, lanes, setInflight } = setUp(10_000, 5);
    await drained();
    const earlier = lanes.clock!.next();
    const batchMin = lanes.clock!.next();
    lanes.clock!.next();
    setInflight(batchMin);
    marks.start();
    try {
      const deadline = Date.now() + 5000;
      while (!fake.points.some((x) => x.measurement === "watermarks") && Date.now() < deadline)
        await settle();
      // Many more periods of the timer (5 ms) with the same batch in flight.
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      marks.stop();
    }
    const marksSeen = fake.points.filter((x) => x.measurement === "watermarks");
    assert.equal(marksSeen.length, 1, "a busy process still publishes, once while the batch is in flight");
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

  describe("carried on a batch's first write", () => {
    const wmOf = (line: string) => BigInt(/wm="(\d+)"/.exec(line)![1]!);
    const stampsOf = (body: string) =>
      body
        .split("\n")
        .filter((l) => l.startsWith("mailbox"))
        .map((l) => BigInt(l.slice(l.lastIndexOf(" ") + 1)));
    const commitWith = (window: number) => {
      const { ctx, marks, lanes, others } = setUp(window);
      // Every other holder is far ahead: batches settle at once (their predecessors read empty).
      others.set("other", 9n * 10n ** 18n);
      const floorAnswer = fake.onQuery;
      fake.onQuery = (q) => (q.includes('FROM "lanes"') ? floorAnswer(q) : { results: [] });
      const opts = {
        maxBatchPoints: 2000,
        maxBatchBytes: 4 << 20,
        dedupeWindowMs: 3600_000,
        safetyWindowMs: 500,
      };
      const gc = new GroupCommit(ctx, opts, () => lanes.clock!.next(), marks, 0n, null);
      return { gc, marks };
    };
    const input = (n: number) => ({
      id: `0190f000-0000-7000-8000-${String(n).padStart(12, "0")}`,
      owners: ["bob", "alice"],
      envelope: "{}",
    });

    it("a batch queued behind another carries a watermark between the two; no write of its own", async () => {
      const { gc, marks } = commitWith(10_000);
      marks.start();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let first = true;
      fake.writes.length = 0;
      fake.onWrite = async () => {
        if (first) {
          first = false;
          await gate;
        }
        return undefined;
      };
      try {
        const a = gc.appendMany([input(1), input(2)]);
        while (fake.writes.length === 0) await settle();
        const b = gc.appendMany([input(3), input(4)]);
        release();
        await Promise.all([a, b]);
        await gc.idle();
        const deadline = Date.now() + 5000;
        while (fake.writes.length < 3 && Date.now() < deadline) await settle();
      } finally {
        marks.stop();
        fake.onWrite = () => undefined;
      }
      const [wa, wb, last] = fake.writes;
      assert.equal(fake.writes.length, 3, "two batches and one watermark after the last");
      const stampsA = stampsOf(wa!);
      const stampsB = stampsOf(wb!);
      assert.equal(stampsA.length, 4);
      assert.equal(stampsB.length, 4);
      const carriedB = wb!.split("\n").find((l) => l.startsWith("watermarks"));
      assert.ok(carriedB, "the second batch's write carries the watermark");
      const wm = wmOf(carriedB);
      for (const t of stampsA) assert.ok(wm >= t, "at or above every point of the batch before");
      for (const t of stampsB) assert.ok(wm < t, "below every point of its own batch");
      assert.ok(
        last!.startsWith("watermarks") && !last!.includes("\nmailbox"),
        "idle again: published alone",
      );
      for (const t of stampsB) assert.ok(wmOf(last!) >= t);
    });

    it("a retried write carries no watermark, and none is published after it", async () => {
      const { gc, marks } = commitWith(300);
      marks.start();
      let failures = 1;
      fake.writes.length = 0;
      fake.onWrite = () => (failures-- > 0 ? { status: 503, body: '{"error":"busy"}' } : undefined);
      try {
        await gc.appendMany([input(5)]);
        await gc.idle();
        await settle();
      } finally {
        marks.stop();
        fake.onWrite = () => undefined;
      }
      assert.equal(fake.writes.length, 2);
      assert.ok(fake.writes[0]!.includes("\nwatermarks"), "the first attempt carried one");
      assert.ok(!fake.writes[1]!.includes("watermarks"), "the retry carries none");
    });
  });
});
