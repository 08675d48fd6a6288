/**
 * Live deliveries over the client's request connection (core/protocol/broker.ts,
 * LINK_DELIVERIES): the client subscribes with a request on its DEALER, the balancer holds the
 * topic for that connection (at most LINK_TOPICS_PER_PEER), passes it on to the servers, and
 * sends each publication on it to the connection; it drops a connection's topics when the
 * connection goes (ZMQ_ROUTER_NOTIFY). Real balancer and server sockets over loopback, the
 * balancer bound without its XPUB (`--no-legacy-subscribers`).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Balancer } from "../../balancer/balancer.js";
import { type Logger, silentLogger } from "../../core/logger.js";
import { LINK_TOPICS_PER_PEER } from "../../core/protocol/broker.js";
import { taggedTopic, topicTagKey } from "../../core/protocol/topics.js";
import type { WorkerLink } from "../../core/transport.js";
import { ZeromqWorkerTransport } from "../../transports/zeromq/index.js";
import { type LinkWatch, watchOverLink } from "../helpers/link-watch.js";
import { freeBasePort, waitFor } from "../helpers/stack.js";

const key = topicTagKey(randomBytes(32));
/** A topic the keyed balancer admits, as a server issues it. */
const issued = (): string => taggedTopic(key, randomBytes(16));
const madeUp = (): string => randomBytes(32).toString("hex");

async function balancer(
  options: {
    keyed?: boolean;
    port?: number;
    heartbeat?: { intervalMs: number; timeoutMs: number };
    log?: Logger;
  } = {},
): Promise<Balancer> {
  const at = (n: number) => (options.port ? `tcp://127.0.0.1:${options.port + n}` : "tcp://127.0.0.1:0");
  return Balancer.start({
    endpoints: { frontend: at(0), backend: at(1), pubIn: at(2), pubOut: "" },
    publicHost: null,
    version: "link",
    log: options.log ?? silentLogger,
    topicKey: options.keyed === false ? null : key,
    clientHeartbeat: options.heartbeat,
  });
}

/** A client process subscribed to `topic` on `b` over its connection; `lines` is what it printed. */
function subscriberProcess(b: Balancer, topic: string): { child: ChildProcess; lines: string[] } {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      fileURLToPath(new URL("../fixtures/link-subscriber.ts", import.meta.url)),
      b.bound.frontend,
      topic,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (l) => lines.push(l));
  return { child, lines };
}

/** Publishes on `topic` until `w` has `body` (subscriptions reach the server asynchronously). */
async function reaches(server: WorkerLink, w: LinkWatch, topic: string, body: string): Promise<void> {
  await waitFor(`"${body}" to reach the subscriber`, async () => {
    server.publish(topic, body);
    await new Promise((r) => setTimeout(r, 20));
    return w.got.includes(body);
  });
}

/** A hello round trip on `w`'s link: everything it sent before has been handled by the balancer. */
async function roundTrip(w: LinkWatch): Promise<void> {
  const id = `rt-${randomBytes(4).toString("hex")}`;
  await new Promise<void>((resolve) => {
    w.link.onReply((f) => {
      if ((JSON.parse(f.toString()) as { id?: string }).id === id) resolve();
    });
    w.link.send(Buffer.from(JSON.stringify({ v: 1, id, type: "hello", body: {} })), "broker");
  });
}

describe("deliveries over the request connection", () => {
  it("reach a client with no port for SUB sockets; the server holds the topic while a connection does, and drops it when the last one goes", async () => {
    const b = await balancer();
    const server = await new ZeromqWorkerTransport({ version: "link" }).attach([b.bound.backend], "s1");
    const open: LinkWatch[] = [];
    try {
      assert.equal(b.bound.pubOut, "", "no XPUB bound");
      const t = issued();
      const one = await watchOverLink(b.bound.frontend, [t]);
      open.push(one);
      assert.equal(one.hello.pubPort, 0, "the hello names no port for SUB sockets");
      await waitFor("the balancer confirms the subscription", () => one.confirmed.has(t));
      await reaches(server, one, t, "first");
      assert.deepEqual(b.linkSubscriptions(), { peers: 1, topics: 1 });
      assert.equal(server.subscribed?.(t), true);

      const two = await watchOverLink(b.bound.frontend, [t]);
      open.push(two);
      await waitFor("the second connection's confirmation", () => two.confirmed.has(t));
      assert.deepEqual(b.linkSubscriptions(), { peers: 2, topics: 1 });
      server.publish(t, "to both");
      await waitFor(
        "both connections get it",
        () => one.got.includes("to both") && two.got.includes("to both"),
      );

      await one.close();
      await waitFor("the balancer hears the first connection go", () => b.linkSubscriptions().peers === 1);
      // A later topic's round trip to the server: had the server been told to drop `t`, it would be by now.
      const marker = issued();
      const three = await watchOverLink(b.bound.frontend, [marker]);
      open.push(three);
      await waitFor("the marker reaches the server", () => server.subscribed?.(marker) === true);
      assert.equal(server.subscribed?.(t), true, "the other connection still holds it");
      await reaches(server, two, t, "still there");

      await two.close();
      await waitFor("the last holder leaving reaches the server", () => server.subscribed?.(t) === false);
      assert.deepEqual(
        b.linkSubscriptions(),
        { peers: 1, topics: 1 },
        "only the marker's connection is left",
      );
    } finally {
      for (const w of open) await w.close();
      await server.close();
      b.stop();
    }
  });

  it("an unsubscribe stops the deliveries and frees the topic at the server", async () => {
    const b = await balancer();
    const server = await new ZeromqWorkerTransport({ version: "link" }).attach([b.bound.backend], "s1");
    const t = issued();
    const w = await watchOverLink(b.bound.frontend, [t]);
    try {
      await reaches(server, w, t, "before");
      w.link.unsubscribe(t);
      await waitFor("the server hears the unsubscription", () => server.subscribed?.(t) === false);
      assert.deepEqual(b.linkSubscriptions(), { peers: 0, topics: 0 });
      server.publish(t, "after");
      await roundTrip(w);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(!w.got.includes("after"), "a delivery after the unsubscription");
    } finally {
      await w.close();
      await server.close();
      b.stop();
    }
  });

  it("made-up topics are refused by a keyed balancer and never reach the server; an issued one is taken (the control)", async () => {
    const warnings: Array<{ refused?: number }> = [];
    const b = await balancer({ log: { ...silentLogger, warn: (o) => warnings.push(o) } });
    const server = await new ZeromqWorkerTransport({ version: "link" }).attach([b.bound.backend], "s1");
    const fakes = Array.from({ length: 150 * LINK_TOPICS_PER_PEER }, madeUp);
    const w = await watchOverLink(b.bound.frontend, []);
    const started = Date.now();
    try {
      // LINK_TOPICS_PER_PEER to a request: within the balancer's burst of requests per connection.
      for (let i = 0; i < fakes.length; i += LINK_TOPICS_PER_PEER) {
        const topics = fakes.slice(i, i + LINK_TOPICS_PER_PEER);
        const frame = { v: 1, id: `fake-${i}`, type: "subscribe", body: { topics } };
        w.link.send(Buffer.from(JSON.stringify(frame)), "broker");
      }
      const real = issued();
      w.link.subscribe(real);
      await waitFor("the issued topic is confirmed", () => w.confirmed.has(real));
      assert.equal(w.confirmed.size, 1, "only the issued topic was confirmed");
      assert.deepEqual(b.linkSubscriptions(), { peers: 1, topics: 1 });
      await waitFor("the issued topic reaches the server", () => server.subscribed?.(real) === true);
      assert.equal(
        fakes.filter((f) => server.subscribed?.(f)).length,
        0,
        "a made-up topic reached the server",
      );
      // Warned about, but at most once a second: the flood does not flood the log.
      const seconds = (Date.now() - started) / 1000;
      assert.ok(warnings.length >= 1, "the refusals were logged");
      assert.ok(warnings.length <= Math.ceil(seconds) + 1, `${warnings.length} warnings in ${seconds} s`);
    } finally {
      await w.close();
      await server.close();
      b.stop();
    }
  });

  it(`a connection holds at most ${LINK_TOPICS_PER_PEER} topics, even on a balancer without the key; two connections hold twice as many (the control)`, async () => {
    const b = await balancer({ keyed: false });
    const flood = async () => {
      const w = await watchOverLink(b.bound.frontend, []);
      for (let i = 0; i < 150; i++) w.link.subscribe(madeUp());
      await roundTrip(w);
      return w;
    };
    const one = await flood();
    const two = await flood();
    try {
      assert.equal(one.confirmed.size, LINK_TOPICS_PER_PEER, "confirmed for one connection");
      assert.deepEqual(b.linkSubscriptions(), { peers: 2, topics: 2 * LINK_TOPICS_PER_PEER });
      // What it holds it may give up, and then take another.
      const first = [...one.confirmed][0]!;
      one.link.unsubscribe(first);
      const next = madeUp();
      one.link.subscribe(next);
      await waitFor("the new topic is taken in the freed place", () => one.confirmed.has(next));
      assert.deepEqual(b.linkSubscriptions(), { peers: 2, topics: 2 * LINK_TOPICS_PER_PEER });
    } finally {
      await one.close();
      await two.close();
      b.stop();
    }
  });

  it("a link subscribes again when its connection comes back (the balancer restarted on the same ports)", async () => {
    const port = await freeBasePort();
    let b = await balancer({ port });
    const server = await new ZeromqWorkerTransport({ version: "link" }).attach([b.bound.backend], "s1");
    const t = issued();
    const w = await watchOverLink(b.bound.frontend, [t]);
    try {
      await reaches(server, w, t, "before the restart");
      b.stop();
      await new Promise((r) => setTimeout(r, 300));
      b = await balancer({ port });
      // Only the link's own subscription on its new connection can make the new balancer hold it.
      await waitFor("the new balancer holds the link's topic", () => b.linkSubscriptions().topics === 1);
      await reaches(server, w, t, "after the restart");
    } finally {
      await w.close();
      await server.close();
      b.stop();
    }
  });

  it("a client that stops answering (SIGSTOP) loses its topics after the ZMTP heartbeat timeout, one that answers keeps them (the control), and the stopped one subscribes again when it resumes", async () => {
    const timeoutMs = 1000;
    const b = await balancer({ heartbeat: { intervalMs: 200, timeoutMs } });
    const stopped = subscriberProcess(b, issued());
    const alive = subscriberProcess(b, issued());
    try {
      await waitFor("both processes subscribed", () =>
        [stopped, alive].every((p) => p.lines.includes("subscribed 1")),
      );
      assert.deepEqual(b.linkSubscriptions(), { peers: 2, topics: 2 });
      stopped.child.kill("SIGSTOP");
      await waitFor(
        "the silent connection is closed and its topic dropped",
        () => b.linkSubscriptions().peers === 1,
      );
      // Several timeouts later the connection that answers the pings still holds its topic.
      await new Promise((r) => setTimeout(r, 3 * timeoutMs));
      assert.deepEqual(b.linkSubscriptions(), { peers: 1, topics: 1 });
      assert.ok(!alive.lines.includes("subscribed 2"), "the live connection was never dropped");
      stopped.child.kill("SIGCONT");
      await waitFor("the resumed process reconnects and subscribes again", () =>
        stopped.lines.includes("subscribed 2"),
      );
      assert.deepEqual(b.linkSubscriptions(), { peers: 2, topics: 2 });
    } finally {
      for (const p of [stopped, alive]) {
        p.child.kill("SIGCONT");
        p.child.kill("SIGKILL");
      }
      b.stop();
    }
  });

  it("a malformed subscribe is answered bad_request and changes nothing", async () => {
    const b = await balancer();
    const w = await watchOverLink(b.bound.frontend, []);
    try {
      const answers: Array<{ id?: string; ok?: boolean; error?: { code: string } }> = [];
      w.link.onReply((f) => answers.push(JSON.parse(f.toString())));
      const bodies = [
        {},
        { topics: "x" },
        { topics: [] },
        { topics: [1] },
        { topics: Array.from({ length: LINK_TOPICS_PER_PEER + 1 }, issued) },
      ];
      for (const [i, body] of bodies.entries())
        w.link.send(Buffer.from(JSON.stringify({ v: 1, id: `bad-${i}`, type: "subscribe", body })), "broker");
      await waitFor("every malformed subscribe is answered", () => answers.length === bodies.length);
      for (const a of answers) assert.equal(a.error?.code, "bad_request", JSON.stringify(a));
      assert.deepEqual(b.linkSubscriptions(), { peers: 0, topics: 0 });
    } finally {
      await w.close();
      b.stop();
    }
  });
});
