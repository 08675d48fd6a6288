import assert from "node:assert/strict";
import { test } from "node:test";
import { Publisher, Subscriber } from "zeromq";
import { ImmediateSender } from "../../transports/zeromq/immediate-sender.js";
import { waitFor } from "../helpers/stack.js";

const TOPIC = "t".repeat(64);

/** A PUB bound on a free loopback port and a SUB on its topic, joined (a probe got through). */
async function pair(): Promise<{ pub: Publisher; sub: Subscriber; sender: ImmediateSender; got: string[] }> {
  const pub = new Publisher({ linger: 0 });
  await pub.bind("tcp://127.0.0.1:0");
  const sub = new Subscriber({ linger: 0, receiveHighWaterMark: 100_000 });
  sub.connect(pub.lastEndpoint!);
  sub.subscribe(TOPIC);
  const got: string[] = [];
  void (async () => {
    try {
      for await (const [, body] of sub) got.push(body!.toString());
    } catch {
      // closed by the test
    }
  })();
  const sender = new ImmediateSender(pub);
  await waitFor(
    "the subscriber to join",
    () => {
      sender.push([TOPIC, "probe"]);
      return got.includes("probe") || null;
    },
    10_000,
  );
  got.length = 0;
  return { pub, sub, sender, got };
}

test("immediate sender: frames handed over synchronously arrive, all and in order", async () => {
  const { pub, sub, sender, got } = await pair();
  try {
    assert.equal(pub.sendTimeout, 0, "the socket is switched to sends that never wait");
    // Pushed in one synchronous run: nothing is awaited between them, nothing may be refused.
    for (let i = 0; i < 500; i++) assert.equal(sender.push([TOPIC, `m${i}`]), true);
    assert.equal(sender.pending, 0, "nothing waits in JavaScript");
    // Probes sent while the subscriber was joining may still trail in ahead of these.
    const frames = () => got.filter((f) => f !== "probe");
    await waitFor("500 frames", () => frames().length >= 500 || null, 10_000);
    assert.deepEqual(
      frames(),
      Array.from({ length: 500 }, (_, i) => `m${i}`),
    );
    assert.equal(sender.refused, 0);
  } finally {
    sender.close();
    sub.close();
    pub.close();
  }
});

test("immediate sender: a socket that refuses a send (closed under it) neither throws nor leaves a rejection unhandled", async () => {
  const { pub, sub, sender } = await pair();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  const errors: unknown[] = [];
  const watched = new ImmediateSender(pub, (err) => errors.push(err));
  try {
    pub.close();
    // Positive control: the socket itself does refuse now.
    assert.throws(() => pub.send([TOPIC, "x"]));
    assert.equal(watched.push([TOPIC, "after close"]), false);
    assert.equal(watched.refused, 1);
    assert.equal(errors.length, 1, "the refusal is reported to the owner");
    watched.close();
    assert.equal(
      watched.push([TOPIC, "after our close"]),
      false,
      "closed: refused without touching the socket",
    );
    assert.equal(watched.refused, 1);
    // Let any stray rejection surface before looking.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
    sender.close();
    sub.close();
  }
});
