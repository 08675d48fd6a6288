import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { z } from "zod";
import { type ConnectionLimits, RpcConnection } from "../../core/daemon/connection.js";
import { CacheFeed } from "../../core/daemon/feed.js";
import { APPLICATION_ERROR, method, rpcServer } from "../../core/daemon/rpc.js";
import { ZmqchatError } from "../../core/errors.js";
import { waitFor } from "../helpers/stack.js";

/** A cache stand-in: messages with rising cursors and a state table, as the client cache has them. */
class FakeCache {
  readonly rows: Array<{ cursor: string; id: string; from: string }> = [];
  readonly state = new Map<string, string>();
  add(n: number, from = "bob"): void {
    for (let i = 0; i < n; i++) {
      const c = this.rows.length + 1;
      this.rows.push({ cursor: String(c), id: `m${c}`, from });
    }
  }
  after(cursor: string | null, limit: number) {
    const from = cursor === null ? -1 : Number(cursor);
    return this.rows.filter((r) => Number(r.cursor) > from).slice(0, limit);
  }
  getState(key: string) {
    return this.state.get(key) ?? null;
  }
  setState(key: string, value: string) {
    this.state.set(key, value);
  }
}

const LIMITS: ConnectionLimits = { maxLineBytes: 1024, maxInFlight: 4, maxBatch: 3, highWaterBytes: 4096 };

function harness(opts: { cache?: FakeCache; token?: string } = {}) {
  const cache = opts.cache ?? new FakeCache();
  const feed = new CacheFeed(cache, (m) => (m.from === "me" ? null : { id: m.id }));
  let running = 0;
  let most = 0;
  const gates: Array<() => void> = [];
  const server = rpcServer(
    {
      echo: method(z.object({ x: z.number() }).strict(), (p) => p),
      /** Waits until the test releases it: shows how many requests run at once. */
      hold: method(z.object({}).strict(), async () => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((r) => gates.push(r));
        running--;
        return "done";
      }),
      fail: method(z.object({}).strict(), () => {
        throw new ZmqchatError("not_found", "no such thing", { hint: "look elsewhere" });
      }),
      subscribe: method(z.object({}).strict(), (_p, c) => {
        c.subscribe();
        return { subscribed: true };
      }),
    },
    (code) => ({ exit: code === "not_found" ? 5 : 1 }),
  );
  const input = new PassThrough();
  // Below the connection's high-water mark, as a socket's (16 KiB) is below the daemon's.
  const output = new PassThrough({ highWaterMark: 1024 });
  const conn = new RpcConnection(server, input, output, {
    feed,
    limits: LIMITS,
    token: opts.token === undefined ? undefined : (t) => t === opts.token,
  });
  const received: Array<Record<string, unknown>> = [];
  let buffered = "";
  const read = () => {
    for (let chunk = output.read(); chunk !== null; chunk = output.read()) {
      buffered += chunk.toString();
      let nl = buffered.indexOf("\n");
      while (nl !== -1) {
        received.push(JSON.parse(buffered.slice(0, nl)));
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
      }
    }
  };
  return {
    cache,
    conn,
    input,
    output,
    received,
    read,
    send: (obj: unknown) => input.write(`${typeof obj === "string" ? obj : JSON.stringify(obj)}\n`),
    running: () => running,
    most: () => most,
    release: () => {
      for (const g of gates.splice(0)) g();
    },
  };
}

const req = (id: number, m: string, params: unknown = {}) => ({ jsonrpc: "2.0", id, method: m, params });

describe("daemon connection: JSON-RPC lines within bounds", () => {
  it("answers malformed lines with standard errors and carries on", async () => {
    const h = harness();
    h.send("{not json");
    h.send("5");
    h.send('{"jsonrpc":"2.0"}');
    h.send(req(1, "nope"));
    h.send(req(2, "echo", { x: "a string" }));
    h.send(req(3, "echo", [1, 2]));
    h.send(Buffer.from([0xff, 0xfe, 0x00]).toString("latin1"));
    h.send(
      JSON.stringify([
        req(4, "echo", { x: 1 }),
        req(5, "echo", { x: 2 }),
        req(6, "echo", { x: 3 }),
        req(7, "echo", { x: 4 }),
      ]),
    );
    h.send(req(8, "fail"));
    h.send(req(9, "echo", { x: 42 }));
    await waitFor("ten answers", () => {
      h.read();
      return h.received.length >= 10;
    });
    const byId = (id: number) =>
      h.received.find((r) => r.id === id) as { error?: { code: number; data?: unknown } };
    const nulls = h.received.filter((r) => r.id === null).map((r) => (r.error as { code: number }).code);
    // Parse errors (bad JSON, the binary line), invalid requests (a number, no method, the batch over 3).
    assert.deepEqual(nulls.sort(), [-32700, -32700, -32600, -32600, -32600].sort());
    assert.equal(byId(1).error?.code, -32601);
    assert.equal(byId(2).error?.code, -32602);
    assert.equal(byId(3).error?.code, -32602);
    assert.deepEqual(byId(8).error, {
      code: APPLICATION_ERROR,
      message: "no such thing",
      data: { code: "not_found", hint: "look elsewhere", exit: 5 },
    });
    assert.deepEqual((byId(9) as { result?: unknown }).result, { x: 42 });
  });

  it("skips a line over the bound, answering it once, and reads the next line", async () => {
    const h = harness();
    // Longer than the bound, in several chunks, then a good request.
    for (let i = 0; i < 5; i++) h.input.write("x".repeat(700));
    h.send("");
    h.send(req(1, "echo", { x: 1 }));
    // And one over the bound in a single chunk.
    h.send(`"${"y".repeat(3000)}"`);
    h.send(req(2, "echo", { x: 2 }));
    await waitFor("the answers", () => {
      h.read();
      return h.received.length >= 4;
    });
    const errors = h.received.filter((r) => r.id === null);
    assert.equal(errors.length, 2);
    for (const e of errors) assert.match((e.error as { message: string }).message, /longer than 1024 bytes/);
    assert.deepEqual(
      h.received.filter((r) => r.id !== null).map((r) => r.result),
      [{ x: 1 }, { x: 2 }],
    );
  });

  it("works on at most maxInFlight requests at once and stops reading beyond them; nothing is lost", async () => {
    const h = harness();
    const n = 40;
    for (let i = 1; i <= n; i++) h.send(req(i, "hold"));
    await waitFor("the first requests to run", () => h.running() === LIMITS.maxInFlight);
    // The rest wait unread: in the input stream, not in the daemon's memory.
    assert.equal(h.input.isPaused(), true);
    assert.ok(h.input.readableLength > 0, "the unread requests stay in the stream");
    while (h.received.length < n) {
      h.release();
      await new Promise((r) => setImmediate(r));
      h.read();
    }
    assert.equal(h.most(), LIMITS.maxInFlight);
    assert.deepEqual(
      h.received.map((r) => r.id).sort((a, b) => Number(a) - Number(b)),
      Array.from({ length: n }, (_, i) => i + 1),
    );
  });

  it("a subscriber that does not read holds the daemon to its high-water mark; it then gets every message once, in order", async () => {
    const cache = new FakeCache();
    cache.add(500);
    cache.add(3, "me");
    cache.add(500);
    const h = harness({ cache });
    h.send(req(1, "subscribe"));
    await waitFor(
      "notifications to stop at the bound",
      () => h.output.writableLength > LIMITS.highWaterBytes,
    );
    // Let the feed try again: it must not pass the bound while nobody reads.
    for (let i = 0; i < 5; i++) {
      h.conn.wake();
      await new Promise((r) => setImmediate(r));
    }
    const oneBatch = 200 * 64;
    assert.ok(
      h.output.writableLength <= LIMITS.highWaterBytes + oneBatch,
      `${h.output.writableLength} bytes wait; the bound is ${LIMITS.highWaterBytes} plus one batch`,
    );
    // The mark moved only as far as what was written.
    await waitFor("every notification", () => {
      h.read();
      return h.received.filter((r) => r.method === "message").length >= 1000;
    });
    const ids = h.received.filter((r) => r.method === "message").map((r) => (r.params as { id: string }).id);
    const want = cache.rows.filter((r) => r.from !== "me").map((r) => r.id);
    assert.deepEqual(ids, want);
    assert.equal(h.received[0]!.id, 1, "the reply to subscribe comes first");
    await waitFor("the mark at the last message", () => cache.getState("daemon_mark") === "1003");
    // A new message is handed at the next wake, once.
    cache.add(1);
    h.conn.wake();
    await waitFor("the new one", () => {
      h.read();
      return h.received.filter((r) => r.method === "message").length === 1001;
    });
  });

  it("a new subscriber starts after the mark: what the last one was handed is not handed again", async () => {
    const cache = new FakeCache();
    cache.add(10);
    cache.setState("daemon_mark", "7");
    const h = harness({ cache });
    h.send(req(1, "subscribe"));
    await waitFor("three notifications", () => {
      h.read();
      return h.received.filter((r) => r.method === "message").length === 3;
    });
    assert.deepEqual(
      h.received.filter((r) => r.method === "message").map((r) => (r.params as { id: string }).id),
      ["m8", "m9", "m10"],
    );
  });

  it("with a token, every method but auth is refused until auth succeeds (wrong token: refused)", async () => {
    const h = harness({ token: "s3cret" });
    h.send(req(1, "echo", { x: 1 }));
    h.send(req(2, "auth", { token: "wrong" }));
    await waitFor("two answers", () => {
      h.read();
      return h.received.length === 2;
    });
    h.send(req(3, "echo", { x: 1 }));
    h.send(req(4, "auth", { token: "s3cret" }));
    await waitFor("four answers", () => {
      h.read();
      return h.received.length === 4;
    });
    h.send(req(5, "echo", { x: 5 }));
    await waitFor("five answers", () => {
      h.read();
      return h.received.length === 5;
    });
    const code = (id: number) =>
      ((h.received.find((r) => r.id === id)?.error as { data?: { code: string } })?.data?.code ??
        "ok") as string;
    assert.deepEqual([1, 2, 3, 4, 5].map(code), ["unauthorized", "unauthorized", "unauthorized", "ok", "ok"]);
    assert.deepEqual(h.received.find((r) => r.id === 5)?.result, { x: 5 });
  });

  it("the mark moves to the least place every subscriber was handed, never back", () => {
    const cache = new FakeCache();
    cache.add(10);
    const feed = new CacheFeed(cache, (m) => ({ id: m.id }));
    const a = {};
    const b = {};
    feed.handed(a, null);
    feed.handed(b, null);
    feed.handed(a, "8");
    assert.equal(cache.getState("daemon_mark"), null, "b has been handed nothing yet");
    feed.handed(b, "3");
    assert.equal(cache.getState("daemon_mark"), "3");
    feed.leave(b);
    feed.handed(a, "9");
    assert.equal(cache.getState("daemon_mark"), "9");
    // A subscriber that joins now starts at the mark, and its place does not move the mark back.
    const c = {};
    feed.handed(c, feed.start());
    feed.handed(a, "10");
    assert.equal(cache.getState("daemon_mark"), "9");
    assert.deepEqual(feed.after(feed.start(), 5).items, [{ id: "m10" }]);
  });
});
