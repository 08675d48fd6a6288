import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { isSubscribedFrame } from "../../core/protocol/broker.js";
import { errorFrame, okFrame, requestIdOf } from "../../core/protocol/frames.js";
import type { ClientLink, ClientTransport, WorkerLink, WorkerTransport } from "../../core/transport.js";
import { waitFor } from "../helpers/stack.js";

/** One broker and its two sides, as a transport offers them; `stop` ends the broker. */
export interface TransportNet {
  client: ClientTransport;
  worker: WorkerTransport;
  /** What clients connect to. */
  endpoint: string;
  /** What servers attach to. */
  workerEndpoints: string[];
  stop(): Promise<void>;
}

interface Reply {
  v: number;
  id: string | null;
  ok: boolean;
  body?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/** A client link that keeps every reply and delivery it receives. */
function watch(link: ClientLink) {
  const replies: Reply[] = [];
  const deliveries: Array<{ topic: string; frame: string }> = [];
  /** Topics the broker said it took a subscription to (SUBSCRIBED_FRAME), kept apart from deliveries. */
  const subscribed: string[] = [];
  link.onReply((f) => replies.push(JSON.parse(f.toString()) as Reply));
  link.onDelivery((topic, f) => {
    if (isSubscribedFrame(f)) subscribed.push(topic);
    else deliveries.push({ topic, frame: f.toString() });
  });
  return {
    link,
    replies,
    deliveries,
    subscribed,
    /** Sends a request and waits for the reply with its id. */
    async ask(id: string, type: string, route: "broker" | "service", timeoutMs = 5000): Promise<Reply> {
      link.send(Buffer.from(JSON.stringify({ v: 1, id, type, body: {} })), route);
      let reply: Reply | undefined;
      await waitFor(
        `the reply to ${id}`,
        async () => {
          reply = replies.find((r) => r.id === id);
          return reply !== undefined;
        },
        timeoutMs,
      );
      return reply!;
    },
  };
}

/** A server that answers each request with `{server, type}`. */
async function echoServer(net: TransportNet, name: string): Promise<WorkerLink> {
  const link = await net.worker.attach(net.workerEndpoints, name);
  link.onRequest((peer, frame) => {
    const id = requestIdOf(frame);
    let type: unknown;
    try {
      type = (JSON.parse(frame.toString()) as { type?: unknown }).type;
    } catch {
      link.reply(peer, errorFrame(id, { code: "bad_request", message: "not JSON" }));
      return;
    }
    link.reply(peer, okFrame(id, { server: name, type }));
  });
  return link;
}

/** Asks until a server (not the broker's `unavailable`) answers: a server takes a moment to attach. */
async function askServed(c: ReturnType<typeof watch>, prefix: string): Promise<Reply> {
  let n = 0;
  let reply: Reply | undefined;
  await waitFor(
    "a server to take requests",
    async () => {
      reply = await c.ask(`${prefix}-${n++}`, "echo", "service");
      return reply.ok;
    },
    10_000,
  );
  return reply!;
}

const topic = (): string => randomBytes(32).toString("hex");

/**
 * The contract every transport passes, over the broker it runs with: what a client and a
 * server may rely on whichever transport carries them.
 */
export function transportContract(name: string, open: () => Promise<TransportNet>): void {
  describe(`Transport contract: ${name}`, () => {
    async function withNet(fn: (net: TransportNet, links: ClientLink[]) => Promise<void>): Promise<void> {
      const net = await open();
      const links: ClientLink[] = [];
      try {
        await fn(net, links);
      } finally {
        await Promise.all(links.map((l) => l.close()));
        await net.stop();
      }
    }

    it("the broker answers hello and ping itself, and refuses what it does not know", async () => {
      await withNet(async (net, links) => {
        const c = watch(net.client.connect(net.endpoint));
        links.push(c.link);
        const hello = await c.ask("h1", "hello", "broker");
        assert.equal(hello.ok, true, JSON.stringify(hello));
        assert.equal(typeof hello.body?.pubPort, "number");
        assert.equal(typeof hello.body?.version, "string");
        const ping = await c.ask("p1", "ping", "broker");
        assert.equal(ping.ok, true);
        assert.ok(!Number.isNaN(Date.parse(String(ping.body?.time))), "ping tells the time");
        const other = await c.ask("x1", "drop_tables", "broker");
        assert.equal(other.error?.code, "bad_request");
      });
    });

    it("with no server attached, a request is refused as unavailable, naming the request", async () => {
      await withNet(async (net, links) => {
        const c = watch(net.client.connect(net.endpoint));
        links.push(c.link);
        const reply = await c.ask("u1", "echo", "service");
        assert.deepEqual([reply.ok, reply.id, reply.error?.code], [false, "u1", "unavailable"]);
      });
    });

    it("a request reaches a server and its reply goes back to the client that asked, only", async () => {
      await withNet(async (net, links) => {
        const server = await echoServer(net, "s1");
        try {
          const a = watch(net.client.connect(net.endpoint));
          const b = watch(net.client.connect(net.endpoint));
          links.push(a.link, b.link);
          const first = await askServed(a, "a");
          assert.deepEqual(first.body, { server: "s1", type: "echo" });
          const answers = await Promise.all(
            Array.from({ length: 20 }, (_, i) => a.ask(`a-many-${i}`, "echo", "service")),
          );
          assert.ok(answers.every((r) => r.ok));
          const own = await b.ask("b1", "echo", "service");
          assert.equal(own.ok, true);
          assert.ok(
            b.replies.every((r) => r.id?.startsWith("b")),
            `b received another client's replies: ${b.replies.map((r) => r.id).join(",")}`,
          );
        } finally {
          await server.close();
        }
      });
    });

    it("a request goes to the server with the fewest in flight", async () => {
      await withNet(async (net, links) => {
        // `slow` keeps every request it gets; `fast` answers at once.
        const held: string[] = [];
        const slow = await net.worker.attach(net.workerEndpoints, "slow");
        slow.onRequest((_peer, frame) => held.push(requestIdOf(frame) ?? "?"));
        const fast = await echoServer(net, "fast");
        try {
          // Each request from a client of its own: one client's requests stay with the server of
          // its last one (balancer/dispatch.ts, unit-tested there), a new client's go by load.
          const replies: Reply[] = [];
          let n = 0;
          const send = async (): Promise<void> => {
            const id = `r${n++}`;
            const c = watch(net.client.connect(net.endpoint));
            links.push(c.link);
            c.link.send(Buffer.from(JSON.stringify({ v: 1, id, type: "echo", body: {} })), "service");
            await waitFor(
              `${id} answered or held`,
              () => c.replies.some((r) => r.id === id) || held.includes(id),
              5000,
            );
            replies.push(...c.replies);
          };
          const c = { replies };
          await waitFor(
            "both servers to take requests",
            async () => {
              await send();
              return held.length > 0 && c.replies.some((r) => r.ok);
            },
            10_000,
          );
          const before = held.length;
          // `slow` has requests in flight, `fast` none: everything now goes to `fast`
          // (round-robin would give `slow` every other one).
          for (let i = 0; i < 10; i++) await send();
          assert.equal(held.length, before, `slow was given ${held.join(",")}`);
          const last = c.replies.slice(-10);
          assert.ok(last.every((r) => r.ok && r.body?.server === "fast"));
        } finally {
          await fast.close();
          await slow.close();
        }
      });
    });

    it("a live delivery reaches subscribers of its full topic, and nobody else; each is told its subscription was taken", async () => {
      await withNet(async (net, links) => {
        const server = await echoServer(net, "s1");
        try {
          const mine = topic();
          const other = topic();
          const a = watch(net.client.connect(net.endpoint));
          const b = watch(net.client.connect(net.endpoint));
          const prefix = watch(net.client.connect(net.endpoint));
          links.push(a.link, b.link, prefix.link);
          for (const [c, t] of [
            [a, mine],
            [b, other],
            [prefix, mine.slice(0, 8)],
          ] as const) {
            const hello = await c.ask(`hello-${t.slice(0, 8)}-${t.length}`, "hello", "broker");
            c.link.subscribe(t);
            c.link.openDeliveries(
              hello.body?.pubPort as number,
              (hello.body?.pubHost as string | null) ?? null,
            );
          }
          await askServed(a, "warm");
          // Pub/sub joins late (as in ZeroMQ): publish until the subscriber hears, within a deadline.
          let n = 0;
          await waitFor(
            "a delivery on the subscribed topic",
            async () => {
              server.publish(mine, Buffer.from(`m${n++}`));
              return a.deliveries.length > 0;
            },
            10_000,
          );
          // A frame handed over as a string (the send path's deliveries) arrives as its UTF-8 bytes.
          server.publish(mine, `{"text":"grüße ✓"}`);
          await waitFor(
            "the string frame",
            async () => a.deliveries.some((d) => d.frame.startsWith("{")),
            10_000,
          );
          assert.deepEqual(
            a.deliveries.filter((d) => d.frame.startsWith("{")).map((d) => d.frame),
            [`{"text":"grüße ✓"}`],
          );
          // What reached `a` had time to reach the others: a second round trip through the broker.
          await a.ask("after", "ping", "broker");
          assert.ok(a.deliveries.every((d) => d.topic === mine));
          assert.deepEqual(b.deliveries, [], "another topic's subscriber heard it");
          assert.deepEqual(prefix.deliveries, [], "a prefix subscription heard it");
          // Each admitted subscription was acknowledged on its own topic, to its subscriber only;
          // the refused prefix was not.
          assert.deepEqual(a.subscribed, [mine]);
          assert.deepEqual(b.subscribed, [other]);
          assert.deepEqual(prefix.subscribed, []);
        } finally {
          await server.close();
        }
      });
    });
  });
}
