/**
 * A server's link tells which topics its balancers subscribed to (transports/zeromq/worker.ts,
 * SubscribedTopics): the delivery publisher skips a plain topic nobody holds (server/
 * delivery-publisher.ts), so the answer must be exact — true while any client on any balancer
 * holds the topic, false once none does — or an old client would miss its live deliveries.
 * Real ZeroMQ sockets over loopback, real balancers.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { Balancer } from "../../balancer/balancer.js";
import { silentLogger } from "../../core/logger.js";
import { isSubscribedFrame } from "../../core/protocol/broker.js";
import type { ClientLink, WorkerLink } from "../../core/transport.js";
import { ZeromqClientTransport, ZeromqWorkerTransport } from "../../transports/zeromq/index.js";
import { SubscribedTopics } from "../../transports/zeromq/worker.js";
import { waitFor } from "../helpers/stack.js";

const any = "tcp://127.0.0.1:0";
const topic = (): string => randomBytes(32).toString("hex");

async function balancer(): Promise<Balancer> {
  return Balancer.start({
    endpoints: { frontend: any, backend: any, pubIn: any, pubOut: any },
    publicHost: null,
    version: "subscribed",
    log: silentLogger,
  });
}

/** A client link on `b` subscribed to `t` (hello for the publishing port, as the client does). */
async function subscriber(b: Balancer, t: string): Promise<ClientLink> {
  const link = new ZeromqClientTransport().connect(b.bound.frontend);
  const hello = new Promise<{ pubPort: number; pubHost: string | null }>((resolve) =>
    link.onReply((f) => resolve(JSON.parse(f.toString()).body)),
  );
  link.send(Buffer.from(JSON.stringify({ v: 1, id: "h", type: "hello", body: {} })), "broker");
  const { pubPort, pubHost } = await hello;
  link.subscribe(t);
  link.openDeliveries(pubPort, pubHost ?? null);
  return link;
}

/** Waits until a publication on `t` reaches `b`'s XPUB side: then the balancer is the server's publisher peer. */
async function attached(b: Balancer, server: WorkerLink): Promise<void> {
  const probe = topic();
  const link = await subscriber(b, probe);
  // The balancer's own notice that it took the subscription says nothing about the server.
  const heard = new Promise<void>((resolve) =>
    link.onDelivery((_t, frame) => {
      if (!isSubscribedFrame(frame)) resolve();
    }),
  );
  let done = false;
  void heard.then(() => {
    done = true;
  });
  await waitFor("the server's publications reach the balancer", async () => {
    server.publish(probe, "x");
    return done;
  });
  await link.close();
  await waitFor("the probe's subscription is gone", async () => server.subscribed?.(probe) === false);
}

describe("which topics a server's balancers subscribed to (ZeroMQ XPUB)", () => {
  it("SubscribedTopics: a whole topic by its own; a prefix subscription makes every topic count", () => {
    const s = new SubscribedTopics();
    const t = topic();
    const msg = (kind: number, text: string) =>
      Buffer.concat([Buffer.from([kind]), Buffer.from(text, "latin1")]);
    assert.equal(s.has(t), false);
    s.note(msg(1, t));
    assert.equal(s.has(t), true);
    assert.equal(s.has(topic()), false);
    s.note(msg(1, t.slice(0, 8)));
    assert.equal(s.has(topic()), true, "a prefix subscription covers topics not seen");
    s.note(msg(0, t.slice(0, 8)));
    s.note(msg(0, t));
    assert.equal(s.has(t), false);
    s.note(Buffer.from([2, 65]));
    s.note(Buffer.alloc(0));
    assert.equal(s.has(t), false, "other messages change nothing");
  });

  it("true while a client on one balancer holds the topic, through a second client leaving, false once none does", async () => {
    const b = await balancer();
    const server = await new ZeromqWorkerTransport({ version: "subscribed" }).attach([b.bound.backend], "s1");
    try {
      await attached(b, server);
      const t = topic();
      assert.equal(server.subscribed?.(t), false, "nobody subscribed yet");
      const one = await subscriber(b, t);
      await waitFor("the subscription reaches the server", async () => server.subscribed?.(t) === true);
      const two = await subscriber(b, t);
      await one.close();
      // `two` still holds it: a third client's subscription round trip shows the server had time to hear otherwise.
      const marker = topic();
      const three = await subscriber(b, marker);
      await waitFor(
        "a later subscription reaches the server",
        async () => server.subscribed?.(marker) === true,
      );
      assert.equal(server.subscribed?.(t), true, "one client left, the other still holds it");
      await two.close();
      await waitFor(
        "the last holder leaving reaches the server",
        async () => server.subscribed?.(t) === false,
      );
      await three.close();
    } finally {
      await server.close();
      await b.stop();
    }
  });

  it("with two balancers: true while a client on either holds the topic; a stopped balancer's topics stay counted, as libzmq keeps them", async () => {
    const b1 = await balancer();
    const b2 = await balancer();
    const server = await new ZeromqWorkerTransport({ version: "subscribed" }).attach(
      [b1.bound.backend, b2.bound.backend],
      "s1",
    );
    let b1Stopped = false;
    try {
      await attached(b1, server);
      await attached(b2, server);
      const t = topic();
      const on1 = await subscriber(b1, t);
      const on2 = await subscriber(b2, t);
      await waitFor("subscribed", async () => server.subscribed?.(t) === true);
      await on1.close();
      const marker = topic();
      const later = await subscriber(b2, marker);
      await waitFor(
        "a later subscription on the other balancer",
        async () => server.subscribed?.(marker) === true,
      );
      assert.equal(server.subscribed?.(t), true, "the other balancer's client still holds it");
      await on2.close();
      await waitFor("none holds it", async () => server.subscribed?.(t) === false);
      // A balancer that goes away: the server's XPUB keeps its connection (and its subscriptions)
      // while it reconnects, so libzmq still sends on them; the link says so too (never "no" while
      // libzmq would send).
      const held = topic();
      const on1Again = await subscriber(b1, held);
      await waitFor("subscribed through b1", async () => server.subscribed?.(held) === true);
      await b1.stop();
      b1Stopped = true;
      await on1Again.close();
      const marker2 = topic();
      const later2 = await subscriber(b2, marker2);
      await waitFor("a later subscription on b2", async () => server.subscribed?.(marker2) === true);
      assert.equal(server.subscribed?.(held), true, "a stopped balancer's topics stay counted");
      await later.close();
      await later2.close();
    } finally {
      await server.close();
      if (!b1Stopped) await b1.stop();
      await b2.stop();
    }
  });
});
