import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deliveriesInFrame } from "../../core/protocol/delivery-check.js";
import { MAX_DELIVERIES_PER_FRAME, MAX_FRAME_BYTES, MAX_REPLY_BYTES } from "../../core/protocol/limits.js";
import { deliveryBatchFrameSchema } from "../../core/protocol/schema.js";
import { batchFrames, DeliveryPublisher } from "../../server/delivery-publisher.js";

const delivery = (owner: string, n: number, pad = 0) =>
  `{"v":1,"type":"deliver","owner":"${owner}","item":{"cursor":"${n}","pad":"${"x".repeat(pad)}"},"prev":"${n - 1}"}`;

/** The deliveries a published frame carries, in order (a batch unwrapped, a single as it is). */
function unwrap(frame: string): string[] {
  const f = JSON.parse(frame);
  if (f.type === "deliver") return [f.item.cursor];
  assert.equal(f.type, "deliver.many");
  return (f.frames as Array<{ item: { cursor: string } }>).map((d) => d.item.cursor);
}

describe("delivery publisher (server/delivery-publisher.ts)", () => {
  it("batchFrames: in order, at most MAX_DELIVERIES_PER_FRAME a frame, a run of one as it is", () => {
    const frames = Array.from({ length: MAX_DELIVERIES_PER_FRAME * 2 + 1 }, (_, i) => delivery("bob", i + 1));
    const out = batchFrames("bob", frames);
    assert.equal(out.length, 3);
    assert.deepEqual(
      out.flatMap(unwrap),
      frames.map((_, i) => String(i + 1)),
    );
    assert.equal(JSON.parse(out[0]!).frames.length, MAX_DELIVERIES_PER_FRAME);
    assert.equal(out[2], frames.at(-1), "the last one alone goes as a plain delivery frame");
    for (const f of out.slice(0, 2)) {
      const parsed = JSON.parse(f);
      assert.ok(deliveryBatchFrameSchema.safeParse(parsed).success, "the schema takes it");
      assert.equal(
        deliveriesInFrame(parsed)?.length,
        MAX_DELIVERIES_PER_FRAME,
        "the client's check takes it",
      );
    }
  });

  it("batchFrames: a frame stays within the reply budget (and so every socket's frame limit), counted in UTF-8 bytes", () => {
    // Non-ASCII padding: three bytes a character, so counting characters would overrun.
    const big = (n: number) => delivery("bob", n).replace('"pad":""', `"pad":"${"€".repeat(40_000)}"`);
    const frames = Array.from({ length: 20 }, (_, i) => big(i + 1));
    const out = batchFrames("bob", frames);
    assert.ok(out.length > 1, "split");
    for (const f of out) assert.ok(Buffer.byteLength(f) <= MAX_REPLY_BYTES, `${Buffer.byteLength(f)} bytes`);
    assert.deepEqual(
      out.flatMap(unwrap),
      frames.map((_, i) => String(i + 1)),
    );
    // A delivery over the budget by itself goes alone, as it did before batches.
    const huge = delivery("bob", 99, MAX_REPLY_BYTES);
    assert.ok(Buffer.byteLength(huge) < MAX_FRAME_BYTES);
    assert.deepEqual(batchFrames("bob", [delivery("bob", 98), huge, delivery("bob", 100)]).length, 3);
  });

  it("batchFrames: ASCII runs are packed to the byte budget, not to the three-bytes-a-character bound", () => {
    // 100,000 ASCII characters each: by the bound (3 bytes a character) one a frame, by the bytes five.
    const frames = Array.from({ length: 12 }, (_, i) => delivery("bob", i + 1, 100_000));
    const per = Math.floor(MAX_REPLY_BYTES / (Buffer.byteLength(frames[0]!) + 1));
    assert.equal(per, 5);
    const out = batchFrames("bob", frames);
    assert.deepEqual(
      out.map((f) => unwrap(f).length),
      [5, 5, 2],
    );
    for (const f of out) assert.ok(Buffer.byteLength(f) <= MAX_REPLY_BYTES, `${Buffer.byteLength(f)} bytes`);
    assert.deepEqual(
      out.flatMap(unwrap),
      frames.map((_, i) => String(i + 1)),
    );
    // Mixed: ASCII frames, then ones of three-byte characters, in one run counted exactly.
    const wide = (n: number) => delivery("bob", n).replace('"pad":""', `"pad":"${"€".repeat(60_000)}"`);
    const mixed = [...frames.slice(0, 3), wide(4), wide(5), wide(6)];
    const split = batchFrames("bob", mixed);
    for (const f of split)
      assert.ok(Buffer.byteLength(f) <= MAX_REPLY_BYTES, `${Buffer.byteLength(f)} bytes`);
    assert.deepEqual(split.flatMap(unwrap), ["1", "2", "3", "4", "5", "6"]);
    assert.deepEqual(
      split.map((f) => unwrap(f).length),
      [4, 2],
    );
  });

  it("deliveriesInFrame refuses what the schema refuses", () => {
    const ok = { v: 1, type: "deliver.many", owner: "bob", frames: [{}, {}] };
    const cases: unknown[] = [
      ok,
      { ...ok, v: 2 },
      { ...ok, owner: "Bob" },
      { ...ok, owner: 7 },
      { ...ok, frames: {} },
      { ...ok, frames: Array(MAX_DELIVERIES_PER_FRAME + 1).fill({}) },
      { ...ok, frames: Array(MAX_DELIVERIES_PER_FRAME).fill({}) },
      { ...ok, type: "deliver" },
      null,
      [ok],
    ];
    for (const c of cases)
      assert.equal(
        deliveriesInFrame(c) !== null,
        deliveryBatchFrameSchema.safeParse(c).success,
        JSON.stringify(c)?.slice(0, 80),
      );
  });

  it("publishes one turn's deliveries one a frame on plain topics and together on batched topics; turns stay in order even when a topic lookup is slow", async () => {
    const published: Array<[string, string]> = [];
    let slow = true;
    const p = new DeliveryPublisher({
      topics: async (owner) => {
        // The first lookup of bob's topics is slow (a store read): a later turn must not overtake it.
        if (owner === "bob" && slow) {
          slow = false;
          await new Promise((r) => setTimeout(r, 30));
        }
        return [
          {
            device: "-",
            plain: [`${owner}-plain`],
            batched: [`${owner}-batched`],
            legacyPlain: [],
            legacyBatched: [],
          },
        ];
      },
      publish: (topic, frame) => published.push([topic, frame]),
      failed: (err) => {
        throw err;
      },
    });
    for (let n = 1; n <= 5; n++) p.deliver("bob", delivery("bob", n));
    p.deliver("alice", delivery("alice", 1));
    await new Promise((r) => setImmediate(r));
    // The next turn.
    for (let n = 6; n <= 7; n++) p.deliver("bob", delivery("bob", n));
    await p.flushed();
    const on = (topic: string) => published.filter(([t]) => t === topic).map(([, f]) => f);
    assert.deepEqual(on("bob-plain").flatMap(unwrap), ["1", "2", "3", "4", "5", "6", "7"]);
    assert.equal(on("bob-plain").length, 7, "one a frame on the plain topic");
    assert.deepEqual(
      on("bob-batched").map(unwrap),
      [
        ["1", "2", "3", "4", "5"],
        ["6", "7"],
      ],
      "one frame a turn",
    );
    assert.deepEqual(on("alice-batched").map(unwrap), [["1"]]);
    assert.equal(JSON.parse(on("alice-batched")[0]!).type, "deliver", "one alone is not wrapped");
  });

  it("skips a plain topic the link knows nobody subscribed to; publishes one it cannot tell about; batched topics always; a legacy topic only when the link knows it is held", async () => {
    const published: string[] = [];
    // bob-plain: known unsubscribed; carol-plain: known subscribed; dave-plain: the link cannot tell.
    // Legacy topics (from before tagged topics): carol's both held, bob's known not, dave's unknown.
    const known: Record<string, boolean | undefined> = {
      "bob-plain": false,
      "carol-plain": true,
      "carol-legacy-plain": true,
      "carol-legacy-batched": true,
      "bob-legacy-plain": false,
      "bob-legacy-batched": false,
    };
    const p = new DeliveryPublisher({
      topics: async (owner) => [
        {
          device: "-",
          plain: [`${owner}-plain`],
          batched: [`${owner}-batched`],
          legacyPlain: [`${owner}-legacy-plain`],
          legacyBatched: [`${owner}-legacy-batched`],
        },
      ],
      publish: (topic) => published.push(topic),
      subscribed: (topic) => known[topic],
      failed: (err) => {
        throw err;
      },
    });
    for (const owner of ["bob", "carol", "dave"]) p.deliver(owner, delivery(owner, 1));
    await p.flushed();
    assert.deepEqual(published.sort(), [
      "bob-batched",
      "carol-batched",
      "carol-legacy-batched",
      "carol-legacy-plain",
      "carol-plain",
      "dave-batched",
      "dave-plain",
    ]);
  });

  it("a publish that throws is reported, and later turns are still published", async () => {
    const published: string[] = [];
    const failed: string[] = [];
    let broken = true;
    const p = new DeliveryPublisher({
      topics: async (owner) => [
        { device: "-", plain: [`${owner}-plain`], batched: [], legacyPlain: [], legacyBatched: [] },
      ],
      publish: (topic) => {
        if (broken) throw new Error("socket closed");
        published.push(topic);
      },
      failed: (_err, owner) => failed.push(owner),
    });
    p.deliver("bob", delivery("bob", 1));
    await p.flushed();
    broken = false;
    p.deliver("bob", delivery("bob", 2));
    await p.flushed();
    assert.deepEqual(failed, ["bob"]);
    assert.deepEqual(published, ["bob-plain"]);
  });

  it("an owner whose topics cannot be read is reported; the others are published", async () => {
    const published: string[] = [];
    const failed: string[] = [];
    const p = new DeliveryPublisher({
      topics: async (owner) => {
        if (owner === "carol") throw new Error("store down");
        return [{ device: "-", plain: [`${owner}-plain`], batched: [], legacyPlain: [], legacyBatched: [] }];
      },
      publish: (topic) => published.push(topic),
      failed: (_err, owner) => failed.push(owner),
    });
    p.deliver("carol", delivery("carol", 1));
    p.deliver("bob", delivery("bob", 1));
    await p.flushed();
    assert.deepEqual(failed, ["carol"]);
    assert.deepEqual(published, ["bob-plain"]);
  });

  it("leaves a copy off the device it is not for (the sender's own), batching the rest for it; other devices get everything", async () => {
    const published: Array<[string, string]> = [];
    const p = new DeliveryPublisher({
      topics: async (owner) => [
        {
          device: "d1",
          plain: [`${owner}-d1-plain`],
          batched: [`${owner}-d1-batched`],
          legacyPlain: [],
          legacyBatched: [],
        },
        {
          device: "d2",
          plain: [`${owner}-d2-plain`],
          batched: [`${owner}-d2-batched`],
          legacyPlain: [],
          legacyBatched: [],
        },
      ],
      publish: (topic, frame) => published.push([topic, frame]),
      failed: (err) => {
        throw err;
      },
    });
    // alice's own copies from device d1 (not for d1), and a message to her from bob (for all).
    p.deliver("alice", delivery("alice", 1), "d1");
    p.deliver("alice", delivery("alice", 2));
    p.deliver("alice", delivery("alice", 3), "d1");
    await p.flushed();
    const on = (topic: string) => published.filter(([t]) => t === topic).flatMap(([, f]) => unwrap(f));
    assert.deepEqual(on("alice-d1-plain"), ["2"]);
    assert.deepEqual(on("alice-d1-batched"), ["2"]);
    assert.deepEqual(on("alice-d2-plain"), ["1", "2", "3"]);
    assert.deepEqual(on("alice-d2-batched"), ["1", "2", "3"]);
    // Only own copies for d1 in a turn: nothing at all goes to d1.
    published.length = 0;
    p.deliver("alice", delivery("alice", 4), "d1");
    await p.flushed();
    assert.deepEqual(published.map(([t]) => t).sort(), ["alice-d2-batched", "alice-d2-plain"]);
  });
});
