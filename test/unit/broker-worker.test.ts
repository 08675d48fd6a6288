import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BrokerWorker,
  type PublishTarget,
  type WorkerSocketHandlers,
  type WorkerSockets,
} from "../../core/broker-worker.js";

/** Sockets that record what the protocol asks of them, and let the test speak for the balancers. */
function fakeSockets(brokers: number) {
  const sent: Array<{ broker: number; parts: string[] }> = [];
  const reconnects: number[] = [];
  const publishers: Array<{ broker: number; target: PublishTarget }> = [];
  let handlers: WorkerSocketHandlers | null = null;
  let closed = false;
  const make = (h: WorkerSocketHandlers): WorkerSockets => {
    handlers = h;
    return {
      brokers,
      sendBroker: (broker, parts) =>
        sent.push({ broker, parts: parts.map((p) => Buffer.from(p).toString()) }),
      reconnect: (broker) => reconnects.push(broker),
      connectPublisher: (broker, target) => publishers.push({ broker, target }),
      publish: () => {},
      close: async () => {
        closed = true;
      },
    };
  };
  return {
    make,
    sent,
    reconnects,
    publishers,
    /** A message from balancer `broker`. */
    from: (broker: number, ...parts: string[]) =>
      handlers?.onBroker(
        broker,
        parts.map((p) => Buffer.from(p)),
      ),
    commands: (broker: number) => sent.filter((s) => s.broker === broker).map((s) => s.parts[0]),
    get closed() {
      return closed;
    },
  };
}

describe("BrokerWorker: a server's side of the broker protocol, over any sockets", () => {
  it("announces READY with its version to every balancer, then heartbeats each", (t) => {
    t.mock.timers.enable({ apis: ["setInterval", "Date"] });
    const s = fakeSockets(2);
    const w = new BrokerWorker(s.make, { version: "9.9", heartbeatMs: 100, liveness: 3 });
    assert.deepEqual(s.sent.slice(0, 2), [
      { broker: 0, parts: ["READY", '{"version":"9.9"}'] },
      { broker: 1, parts: ["READY", '{"version":"9.9"}'] },
    ]);
    s.from(0, "HB");
    s.from(1, "HB");
    t.mock.timers.tick(100);
    assert.deepEqual(s.commands(0), ["READY", "HB"]);
    assert.deepEqual(s.commands(1), ["READY", "HB"]);
    void w.close();
  });

  it("reconnects to a balancer silent for `liveness` beats and announces READY again, leaving the others be", (t) => {
    t.mock.timers.enable({ apis: ["setInterval", "Date"] });
    const s = fakeSockets(2);
    const w = new BrokerWorker(s.make, { version: "1", heartbeatMs: 100, liveness: 3 });
    for (let beat = 1; beat <= 4; beat++) {
      s.from(1, "HB");
      t.mock.timers.tick(100);
    }
    assert.deepEqual(s.reconnects, [0]);
    assert.deepEqual(s.commands(0), ["READY", "HB", "HB", "HB", "READY"]);
    assert.deepEqual(s.commands(1), ["READY", "HB", "HB", "HB", "HB"]);
    void w.close();
  });

  it("hands requests on with a peer naming the balancer, and sends each reply back through that balancer", (t) => {
    t.mock.timers.enable({ apis: ["setInterval", "Date"] });
    const s = fakeSockets(2);
    const w = new BrokerWorker(s.make, { version: "1" });
    const got: Array<[string, string]> = [];
    w.onRequest((peer, frame) => got.push([peer, frame.toString()]));
    s.from(1, "REQ", "ticket-7", '{"id":"r1"}');
    s.from(0, "REQ", "ticket-8"); // two frames: not a request
    assert.deepEqual(got, [["1:ticket-7", '{"id":"r1"}']]);
    w.reply(got[0]![0], Buffer.from("answer"));
    assert.deepEqual(s.sent.at(-1), { broker: 1, parts: ["REP", "ticket-7", "answer"] });
    const before = s.sent.length;
    for (const peer of ["ticket-7", "5:ticket-7", "-1:x", "x:y"]) w.reply(peer, Buffer.from("lost"));
    assert.equal(s.sent.length, before, "a reply to a peer naming no balancer went somewhere");
    void w.close();
  });

  it("connects its publisher where a WELCOME says, and ignores a WELCOME that names no port", (t) => {
    t.mock.timers.enable({ apis: ["setInterval", "Date"] });
    const s = fakeSockets(2);
    const w = new BrokerWorker(s.make, { version: "1" });
    s.from(0, "WELCOME", '{"pubPort":5001,"pubHost":null}');
    s.from(1, "WELCOME", '{"pubPort":5002,"pubHost":"10.0.0.2"}');
    s.from(1, "WELCOME", "not json");
    s.from(1, "WELCOME", '{"pubHost":"10.0.0.2"}');
    assert.deepEqual(s.publishers, [
      { broker: 0, target: { port: 5001, host: null } },
      { broker: 1, target: { port: 5002, host: "10.0.0.2" } },
    ]);
    void w.close();
  });

  it("says BYE on every beat while draining, never reconnects then, and after close ignores everything", async (t) => {
    t.mock.timers.enable({ apis: ["setInterval", "Date"] });
    const s = fakeSockets(1);
    const w = new BrokerWorker(s.make, { version: "1", heartbeatMs: 100, liveness: 1 });
    const got: string[] = [];
    w.onRequest((peer) => got.push(peer));
    w.drain();
    t.mock.timers.tick(100);
    t.mock.timers.tick(100);
    t.mock.timers.tick(100);
    assert.deepEqual(s.commands(0), ["READY", "BYE", "BYE", "BYE", "BYE"]);
    assert.deepEqual(s.reconnects, []);
    await w.close();
    assert.equal(s.closed, true);
    const before = s.sent.length;
    s.from(0, "REQ", "t", "{}");
    w.reply("0:t", Buffer.from("late"));
    t.mock.timers.tick(1000);
    assert.deepEqual(got, []);
    assert.equal(s.sent.length, before);
  });
});
