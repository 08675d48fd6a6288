import assert from "node:assert/strict";
import { test } from "node:test";
import { Publisher, Subscriber } from "zeromq";
import { SUBSCRIBED_FRAME } from "../../core/protocol/broker.js";
import { bindBrokerSockets } from "../helpers/broker-sockets.js";
import { waitFor } from "../helpers/stack.js";

const TOPIC = "a".repeat(64);

test("broker: publications are forwarded all and in order, in bursts, after pauses and one by one; close while waiting is quiet", async () => {
  const { sockets, bound } = await bindBrokerSockets();
  const pub = new Publisher({ linger: 0, sendHighWaterMark: 0 });
  pub.connect(bound.pubIn);
  const sub = new Subscriber({ linger: 0, receiveHighWaterMark: 0 });
  sub.connect(bound.pubOut);
  sub.subscribe(TOPIC);
  const got: string[] = [];
  const reading = (async () => {
    try {
      for await (const [, body] of sub) got.push(body!.toString());
    } catch {
      // closed by the test
    }
  })();
  try {
    await waitFor(
      "the subscription to reach the publisher",
      async () => {
        await pub.send([TOPIC, "probe"]);
        return got.includes("probe") || null;
      },
      10_000,
    );
    // The broker said it took the subscription, once, before anything published on the topic.
    assert.equal(got[0], SUBSCRIBED_FRAME);
    assert.equal(got.filter((f) => f === SUBSCRIBED_FRAME).length, 1);
    // Probes sent while joining may still trail in: count from the first frame after them.
    const frames = () => got.filter((f) => f !== "probe" && f !== SUBSCRIBED_FRAME);
    // A burst larger than the loop's run between yields (64), sent in one go.
    const expected: string[] = [];
    for (let i = 0; i < 5_000; i++) {
      expected.push(`burst ${i}`);
      await pub.send([TOPIC, `burst ${i}`]);
    }
    await waitFor("the burst", () => frames().length >= expected.length || null, 20_000);
    // After a pause the reader waits in a receive: single frames must still get through at once.
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 20));
      expected.push(`single ${i}`);
      await pub.send([TOPIC, `single ${i}`]);
      await waitFor(`single ${i}`, () => frames().length >= expected.length || null, 10_000);
    }
    assert.deepEqual(frames(), expected);
    // A malformed publication (three frames) is dropped; the ones after it still pass.
    await pub.send([TOPIC, "x", "y"]);
    expected.push("after");
    await pub.send([TOPIC, "after"]);
    await waitFor("after", () => frames().length >= expected.length || null, 10_000);
    assert.deepEqual(frames(), expected);
  } finally {
    // Closed while the publication reader waits in a receive: no unhandled rejection.
    sockets.close();
    pub.close();
    sub.close();
    await reading;
  }
});
