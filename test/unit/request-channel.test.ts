import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ChannelHooks, RequestChannel } from "../../core/client/channel.js";
import { ZmqchatError } from "../../core/errors.js";
import { okFrame } from "../../core/protocol/frames.js";
import type { ClientLink } from "../../core/transport.js";

/** Links to fake balancers that answer `hello` and `ping` while `service.up`, and stay silent otherwise. */
function fakeService() {
  const service = { up: true, links: 0 };
  const connect = (endpoint: string): ClientLink => {
    service.links++;
    let onReply: (frame: Buffer) => void = () => {};
    let closed = false;
    return {
      endpoint,
      send(frame) {
        if (!service.up || closed) return;
        const req = JSON.parse(Buffer.from(frame).toString()) as { id: string; type: string };
        const body = req.type === "hello" ? { pubPort: 1, pubHost: null, version: "t" } : { time: "now" };
        setImmediate(() => {
          if (!closed) onReply(okFrame(req.id, body));
        });
      },
      onReply(h) {
        onReply = h;
      },
      onDelivery() {},
      onState() {},
      openDeliveries() {},
      subscribe() {},
      unsubscribe() {},
      async close() {
        closed = true;
      },
    };
  };
  return { service, connect };
}

const hooks: ChannelHooks = {
  session: () => null,
  relogin: async () => false,
  linkOpened() {},
  delivery() {},
  state() {},
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("request channel: concurrent requests and a shared link opening", () => {
  it("a request with a later deadline outlives a shorter one's failed reconnect (keep-alive ping vs sync)", async () => {
    const { service, connect } = fakeService();
    const ch = new RequestChannel(
      { connect, endpoints: ["tcp://a:1", "tcp://b:1"], attemptTimeoutMs: 200, requestTimeoutMs: 10_000 },
      hooks,
    );
    try {
      await ch.request("ping", {}, {}, "broker");
      const linksBefore = service.links;
      service.up = false;
      // The short request goes silent twice, fails over, and opens a link that gets no hello
      // before its own 1.5 s deadline.
      const short = ch.request("ping", {}, { timeoutMs: 1500 }, "broker").then(
        () => "answered",
        (err: unknown) => (err instanceof ZmqchatError ? err.code : String(err)),
      );
      await sleep(800);
      assert.ok(service.links > linksBefore, "positive control: the short request is reopening a link");
      // The long request joins that opening while it is in progress.
      const long = ch.request("ping", {}, { timeoutMs: 8000 }, "broker").then(
        () => "answered",
        (err: unknown) => (err instanceof ZmqchatError ? `${err.code}: ${err.message}` : String(err)),
      );
      assert.equal(await short, "timeout", "the short request gives up at its own deadline");
      await sleep(300);
      service.up = true;
      assert.equal(
        await long,
        "answered",
        "the long request waits for its own deadline, not the short one's",
      );
    } finally {
      await ch.close();
    }
  });
});
