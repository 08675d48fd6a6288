import assert from "node:assert/strict";
import { test } from "node:test";
import { Subscriber, XPublisher } from "zeromq";
import { bindBrokerSockets } from "../helpers/broker-sockets.js";
import { waitFor } from "../helpers/stack.js";

const ONE = "a".repeat(64);
const TWO = "b".repeat(64);

/**
 * A server's side of the publication link, as an XPUB (a server uses a PUB, which filters on the
 * same subscriptions without showing them): every subscription message the balancer sends it.
 */
function upstream(endpoint: string) {
  const x = new XPublisher({ linger: 0, verbosity: "allSubsUnsubs" });
  x.connect(endpoint);
  const seen: string[] = [];
  void (async () => {
    try {
      for await (const [m] of x) seen.push(`${m![0] === 1 ? "+" : "-"}${m!.subarray(1).toString()}`);
    } catch {
      // closed by the test
    }
  })();
  return { x, seen };
}

const settle = () => new Promise((r) => setTimeout(r, 300));

test("broker: servers get exactly the subscriptions clients hold (counted, dropped when the last subscriber leaves, replayed to a server that joins later); never a subscribe-all, never a refused topic", async () => {
  const { sockets, bound } = await bindBrokerSockets();
  const server = upstream(bound.pubIn);
  const subs: Subscriber[] = [];
  const client = (topic: string) => {
    const s = new Subscriber({ linger: 0 });
    s.subscribe(topic);
    s.connect(bound.pubOut);
    subs.push(s);
    return s;
  };
  let late: ReturnType<typeof upstream> | null = null;
  try {
    await settle();
    assert.deepEqual(server.seen, [], "nothing subscribed before any client: no subscribe-all");

    const a = client(ONE);
    await waitFor("a's subscription upstream", () => server.seen.length >= 1 || null, 10_000);
    assert.deepEqual(server.seen, [`+${ONE}`]);

    const b = client(ONE);
    client("short-topic");
    await waitFor("b's subscription upstream", () => server.seen.length >= 2 || null, 10_000);
    await settle();
    assert.deepEqual(server.seen, [`+${ONE}`, `+${ONE}`], "each admitted subscription, never a refused one");

    // One of two subscribers leaves: the topic stays subscribed upstream.
    a.close();
    await settle();
    assert.deepEqual(server.seen, [`+${ONE}`, `+${ONE}`]);

    // A server that connects now gets what is subscribed.
    late = upstream(bound.pubIn);
    await waitFor("the replay to a late server", () => late!.seen.length >= 1 || null, 10_000);
    assert.deepEqual(late.seen, [`+${ONE}`]);

    // The last subscriber leaves: the topic is unsubscribed upstream (positive control: the
    // server does see unsubscriptions, so the quiet step above was not blindness).
    b.close();
    await waitFor("the unsubscription upstream", () => server.seen.length >= 3 || null, 10_000);
    assert.deepEqual(server.seen, [`+${ONE}`, `+${ONE}`, `-${ONE}`]);
    await waitFor("the unsubscription at the late server", () => late!.seen.length >= 2 || null, 10_000);
    assert.deepEqual(late.seen, [`+${ONE}`, `-${ONE}`]);

    // An explicit unsubscribe from a live client goes up too.
    const c = client(TWO);
    await waitFor("c's subscription", () => server.seen.length >= 4 || null, 10_000);
    c.unsubscribe(TWO);
    await waitFor("c's unsubscription", () => server.seen.length >= 5 || null, 10_000);
    assert.deepEqual(server.seen.slice(3), [`+${TWO}`, `-${TWO}`]);
  } finally {
    for (const s of subs) if (!s.closed) s.close();
    server.x.close();
    late?.x.close();
    sockets.close();
  }
});
