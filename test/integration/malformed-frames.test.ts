import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Dealer, Publisher, Subscriber } from "zeromq";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

/** Sends frames straight at the balancer's sockets, as an attacker or a broken client would. */
describe("malformed frames at every listening socket", () => {
  let stack: RealStack;
  before(async () => {
    stack = await startStack({ servers: 1, legacySubscribers: true });
    assert.equal((await stack.cli("alice", ["register"])).code, 0);
    assert.equal((await stack.cli("bob", ["register"])).code, 0);
  });
  after(async () => {
    await stack?.stop();
  });

  async function exchange(
    parts: Array<Buffer | string>,
  ): Promise<{ ok: boolean; error?: { code: string; message: string } } | null> {
    const d = new Dealer({ linger: 0, receiveTimeout: 3000, ...stack.socketSecurity("client") });
    d.connect(stack.endpoint);
    try {
      await d.send(parts);
      const [reply] = await d.receive();
      return JSON.parse(reply!.toString());
    } catch {
      return null;
    } finally {
      d.close();
    }
  }

  async function stillServing(): Promise<void> {
    const r = await stack.cli("alice", ["send", "bob", "still there?"]);
    assert.equal(r.code, 0, `the stack stopped serving: ${r.stderr}`);
  }

  it("the client socket answers garbage with bad_request and keeps serving", async () => {
    const cases: Array<[string, Array<Buffer | string>]> = [
      ["garbage bytes to a server", ["S", Buffer.from([0xff, 0xfe, 0x00, 0x13])]],
      ["wrong JSON to a server", ["S", '{"v":1,"id":"x","type":']],
      [
        "JSON of the wrong shape",
        ["S", JSON.stringify({ v: 1, id: "x", type: "send", body: { envelope: 42 } })],
      ],
      ["an unknown type", ["S", JSON.stringify({ v: 1, id: "x", type: "drop_tables", body: {} })]],
      ["a wrong version", ["S", JSON.stringify({ v: 2, id: "x", type: "users", body: {} })]],
      ["prototype pollution", ["S", '{"v":1,"id":"x","type":"users","body":{},"__proto__":{"admin":true}}']],
      ["garbage to the balancer", ["B", "not json"]],
      ["an unknown route", ["Q", "{}"]],
      ["one frame only", ['{"v":1}']],
      ["three frames", ["S", "{}", "{}"]],
    ];
    for (const [what, parts] of cases) {
      const reply = await exchange(parts);
      assert.ok(reply, `${what}: no reply`);
      assert.equal(reply.ok, false, what);
      assert.equal(reply.error?.code, "bad_request", `${what}: ${JSON.stringify(reply)}`);
      assert.ok((reply.error?.message.length ?? 0) > 5, `${what}: the error says what is wrong`);
    }
    // A request without a session is refused, not served.
    const anon = await exchange([
      "S",
      JSON.stringify({ v: 1, id: "y", type: "sync", body: { after: null, limit: 10 } }),
    ]);
    assert.equal(anon?.error?.code, "unauthorized");
    const forged = await exchange([
      "S",
      JSON.stringify({
        v: 1,
        id: "z",
        type: "sync",
        session: "alice.99999999999999.forged",
        body: { after: null, limit: 10 },
      }),
    ]);
    assert.equal(forged?.error?.code, "unauthorized");
    await stillServing();
  });

  it("a frame over the size limit is refused by the socket and the balancer lives on", async () => {
    const reply = await exchange(["S", Buffer.alloc(2 * 1024 * 1024, 0x41)]);
    assert.equal(reply, null, "an oversized frame gets no reply: libzmq drops the connection");
    await stillServing();
  });

  it("garbage at the server-facing and pub/sub sockets is ignored", async () => {
    // A listed server's key: garbage from inside the allow-list must be survived too.
    const backend = new Dealer({ linger: 0, routingId: "intruder", ...stack.socketSecurity("server") });
    backend.connect(stack.backends[0]!);
    await backend.send(["REP", "00", "{}"]);
    await backend.send([Buffer.from([0, 1, 2])]);
    await backend.send(["READY", "not json"]);
    await backend.send(["BYE"]);
    backend.close();
    const pub = new Publisher({ linger: 0, ...stack.socketSecurity("server") });
    // Ports were picked by the OS: the ready line says which.
    const ready = JSON.parse(stack.balancers[0]!.output.find((l) => l.includes("balancer_ready"))!) as {
      endpoints: { pubIn: string; pubOut: string };
    };
    pub.connect(ready.endpoints.pubIn);
    const sub = new Subscriber({ linger: 0, receiveTimeout: 1500, ...stack.socketSecurity("client") });
    sub.subscribe();
    sub.connect(ready.endpoints.pubOut);
    await new Promise((r) => setTimeout(r, 200));
    await pub.send(["x".repeat(64), "garbage"]);
    await pub.send(["lonely frame"]);
    await assert.rejects(sub.receive(), "the empty subscription receives nothing");
    pub.close();
    sub.close();
    await stillServing();
    // Exactly one: the stack's one server. The intruder (a listed key) said READY and then BYE,
    // so it must not be counted; `>= 1` would pass with it still live beside the real one.
    await waitFor(
      "the real server to be the only live one",
      async () => (await stack.balancerHealth()).liveServers === 1,
    );
  });
});
