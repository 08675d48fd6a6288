import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import fc from "fast-check";
import { Dealer, Publisher, Subscriber } from "zeromq";
import type { ChatClient } from "../../core/client/client.js";
import { ZmqchatError } from "../../core/errors.js";
import { zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

type Client = Awaited<ReturnType<typeof zeromqClient>>;

/** Figures each test prints, so a reviewer sees what was measured and not only that it passed. */
function figure(t: { diagnostic(s: string): void }, text: string): void {
  t.diagnostic(text);
  process.stdout.write(`# figure: ${text}\n`);
}

/** Runs `count` sends with at most `inFlight` awaiting their acknowledgement; returns acked ids and the longest wait. */
async function burst(client: ChatClient, to: string, count: number, inFlight: number, label: string) {
  const acked: string[] = [];
  let longest = 0;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const started = Date.now();
      const m = await client.send({ user: to }, `${label} ${i}`, { timeoutMs: 30_000 });
      longest = Math.max(longest, Date.now() - started);
      acked.push(m.id);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { acked, longest };
}

function mailboxDuplicates(stack: RealStack, owner: string): number {
  const db = new Database(stack.store.replace(/^sqlite:/, ""), { readonly: true });
  try {
    const r = db
      .prepare("SELECT count(*) - count(DISTINCT msg_id) AS d FROM mailbox WHERE owner = ?")
      .get(owner) as { d: number };
    return r.d;
  } finally {
    db.close();
  }
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0);
}

describe("fault injection (real processes on loopback)", () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  async function setUp(options: Parameters<typeof startStack>[0], names: string[]) {
    const stack = await startStack(options);
    cleanups.push(() => stack.stop());
    const clients: Record<string, Client> = {};
    for (const n of names) {
      clients[n] = await zeromqClient(stack.dir, n, stack.endpoints);
      cleanups.push(() => clients[n]!.dispose());
    }
    return { stack, clients };
  }

  it("kill -9 a server during a burst of 5,000 sends from 5 clients: none lost, none doubled", async (t) => {
    const senders = ["s1", "s2", "s3", "s4", "s5"];
    const { stack, clients } = await setUp({ servers: 2 }, ["bob", ...senders]);
    let killed = false;
    const results = await Promise.all(
      senders
        .map((s) => burst(clients[s]!, "bob", 1000, 20, s))
        .concat([
          (async () => {
            await waitFor(
              "1,500 messages stored",
              async () => {
                const db = new Database(stack.store.slice("sqlite:".length), { readonly: true });
                try {
                  return (
                    (db.prepare("SELECT count(*) AS n FROM mailbox WHERE owner='bob'").get() as { n: number })
                      .n >= 1500
                  );
                } finally {
                  db.close();
                }
              },
              60_000,
            );
            (await stack.leadServer()).child.kill("SIGKILL");
            killed = true;
            return { acked: [], longest: 0 };
          })(),
        ]),
    );
    assert.ok(killed);
    const acked = results.flatMap((r) => r.acked);
    assert.equal(acked.length, 5000, "every send was acknowledged (by the surviving server)");
    await clients.bob!.sync();
    for (const s of senders) {
      const h = clients.bob!.cache.history(`u:${s}`, 10_000);
      assert.equal(h.length, 1000, `all of ${s}'s messages`);
      assert.deepEqual(
        h.map((m) => m.seq).sort((a, b) => a - b),
        Array.from({ length: 1000 }, (_, i) => i + 1),
        "by the sender's sequence numbers: none missing, none twice",
      );
    }
    const shown = new Set(
      senders.flatMap((s) => clients.bob!.cache.history(`u:${s}`, 10_000).map((m) => m.id)),
    );
    for (const id of acked) assert.ok(shown.has(id), `acknowledged ${id} is shown`);
    assert.equal(mailboxDuplicates(stack, "bob"), 0, "no message stored twice");
    figure(t, `longest sender stall with a server killed: ${Math.max(...results.map((r) => r.longest))} ms`);
  });

  it("kill -9 the only balancer and start it again: clients come back, live deliveries lost in between are recovered", async (t) => {
    const { stack, clients } = await setUp({ servers: 2, fixedPorts: true }, ["alice", "bob"]);
    const bob = clients.bob!;
    const seen: string[] = [];
    bob.on((e) => {
      if (e.type === "message" && e.message.from === "alice") seen.push(e.message.text);
    });
    await bob.goLive();
    bob.keepAlive(500);
    const acked: string[] = [];
    let stop = false;
    let restartedAt = 0;
    let firstAfter = 0;
    const sender = (async () => {
      for (let i = 0; !stop; i++) {
        await clients.alice!.send({ user: "bob" }, `m${i}`, { timeoutMs: 60_000 });
        acked.push(`m${i}`);
        if (restartedAt && !firstAfter) firstAfter = Date.now();
      }
    })();
    await waitFor("some messages", () => acked.length >= 20);
    stack.balancers[0]!.child.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 1000));
    await stack.restartBalancer(0);
    restartedAt = Date.now();
    await waitFor("messages after the restart", () => firstAfter > 0 && acked.length >= 60, 30_000);
    stop = true;
    await sender;
    await waitFor("bob to show every acknowledged message", () => seen.length >= acked.length, 30_000);
    assert.deepEqual(seen, acked, "bob saw every message once, in order");
    figure(
      t,
      `seconds from balancer restart to the first acknowledged message: ${((firstAfter - restartedAt) / 1000).toFixed(2)}`,
    );
  });

  it("two balancers, kill one: clients fail over and nothing is lost", async (t) => {
    const { stack, clients } = await setUp({ servers: 2, balancers: 2 }, ["alice", "bob"]);
    const bob = clients.bob!;
    await bob.goLive();
    bob.keepAlive(500);
    const acked: string[] = [];
    let stop = false;
    let killedAt = 0;
    let firstAfter = 0;
    const sender = (async () => {
      for (let i = 0; !stop; i++) {
        await clients.alice!.send({ user: "bob" }, `f${i}`, { timeoutMs: 60_000 });
        acked.push(`f${i}`);
        if (killedAt && !firstAfter) firstAfter = Date.now();
      }
    })();
    await waitFor("some messages", () => acked.length >= 20);
    assert.equal(clients.alice!.endpoint, stack.endpoints[0]);
    stack.balancers[0]!.child.kill("SIGKILL");
    killedAt = Date.now();
    await waitFor("messages through the other balancer", () => firstAfter > 0 && acked.length >= 50, 30_000);
    stop = true;
    await sender;
    assert.equal(clients.alice!.endpoint, stack.endpoints[1], "alice moved to the second balancer");
    await bob.sync();
    assert.deepEqual(
      bob.cache.history("u:alice", 10_000).map((m) => m.text),
      acked,
    );
    figure(
      t,
      `failover seconds (kill to next acknowledged message): ${((firstAfter - killedAt) / 1000).toFixed(2)}`,
    );
  });

  it("SIGSTOP a server for 10 s, then SIGCONT: its requests are served elsewhere, no duplicates", async (t) => {
    const { stack, clients } = await setUp({ servers: 2 }, ["alice", "bob"]);
    let stopped = false;
    const acked: string[] = [];
    const sending = (async () => {
      const r = await burst(clients.alice!, "bob", 400, 10, "stop");
      acked.push(...r.acked);
      return r.longest;
    })();
    await waitFor("traffic", () => clients.alice!.cache.messageCount() > 50);
    // The server taking the requests (all of one client's go to the balancer's lead).
    const victim = (await stack.leadServer()).child;
    victim.kill("SIGSTOP");
    stopped = true;
    await new Promise((r) => setTimeout(r, 10_000));
    victim.kill("SIGCONT");
    const longest = await sending;
    assert.ok(stopped);
    assert.equal(acked.length, 400);
    // Give the resumed server time to answer the requests it held; they must not be stored twice.
    await waitFor(
      "the resumed server back in the pool",
      async () => (await stack.balancerHealth()).liveServers === 2,
      20_000,
    );
    await clients.bob!.sync();
    assert.equal(clients.bob!.cache.history("u:alice", 10_000).length, 400);
    assert.equal(mailboxDuplicates(stack, "bob"), 0);
    figure(t, `longest sender stall while a server was stopped: ${longest} ms`);
  });

  it("a store outage (SQLite locked) gives errors, not false acknowledgements", async (t) => {
    const { stack, clients } = await setUp({ servers: 2 }, ["alice", "bob"]);
    const before = await clients.alice!.send({ user: "bob" }, "before the outage");
    const db = new Database(stack.store.slice("sqlite:".length));
    db.pragma("busy_timeout = 5000");
    db.exec("BEGIN EXCLUSIVE");
    let failure: unknown = null;
    const started = Date.now();
    try {
      await clients.alice!.send({ user: "bob" }, "during the outage", { timeoutMs: 3000 });
    } catch (err) {
      failure = err;
    } finally {
      db.exec("ROLLBACK");
      db.close();
    }
    assert.ok(failure instanceof ZmqchatError, "the send failed");
    assert.ok(
      ["timeout", "unavailable"].includes(failure.code),
      `failed as unreachable/unavailable: ${failure.code}`,
    );
    const afterward = await clients.alice!.send({ user: "bob" }, "after the outage", { timeoutMs: 30_000 });
    await clients.bob!.sync();
    const ids = clients.bob!.cache.history("u:alice", 100).map((m) => m.id);
    assert.ok(ids.includes(before.id) && ids.includes(afterward.id), "acknowledged messages are there");
    figure(t, `send during a store outage failed after ${Date.now() - started} ms with ${failure.code}`);
  });

  it("send while the service is down: exit 3 and nothing half-sent, or --queue into the outbox, sent on return", async (t) => {
    const stack = await startStack({ servers: 1, fixedPorts: true });
    cleanups.push(() => stack.stop());
    for (const u of ["alice", "bob"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
    assert.equal((await stack.cli("alice", ["send", "bob", "first"])).code, 0);
    stack.balancers[0]!.child.kill("SIGKILL");
    const started = Date.now();
    const down = await stack.cli("alice", ["send", "bob", "never sent", "--timeout", "1500ms"]);
    const waited = Date.now() - started;
    assert.equal(down.code, 3, down.stderr);
    assert.match(down.stderr, /did not answer/);
    const queued = await stack.cli("alice", [
      "send",
      "bob",
      "queued while down",
      "--queue",
      "--timeout",
      "1s",
    ]);
    assert.equal(queued.code, 0, queued.stderr);
    assert.match(queued.stderr, /outbox/);
    const queuedId = queued.stdout.trim();
    await stack.restartBalancer(0);
    await waitFor(
      "the server back at the balancer",
      async () => (await stack.balancerHealth()).liveServers === 1,
      20_000,
    );
    assert.equal(
      (await stack.cli("alice", ["send", "bob", "after return"])).code,
      0,
      "the outbox goes first, then this",
    );
    const history = (await stack.cli("bob", ["history", "alice", "--json"])).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; text: string });
    assert.deepEqual(
      history.map((m) => m.text),
      ["first", "queued while down", "after return"],
      "the queued message arrived once and in order; the failed one never",
    );
    assert.equal(history[1]!.id, queuedId, "with the id that send printed");
    const verify = await stack.cli("bob", ["verify-history", "alice"]);
    assert.equal(verify.code, 0, `no false gap from the failed send: ${verify.stdout}`);
    figure(t, `send with the service down gave up after ${waited} ms (--timeout 1500ms)`);
  });

  it("a client offline for the whole conversation gets the full history in order", async (t) => {
    const { stack, clients } = await setUp({ servers: 2 }, ["alice", "carol"]);
    const dave = await zeromqClient(stack.dir, "dave", stack.endpoints);
    await dave.dispose();
    const texts: string[] = [];
    for (let i = 0; i < 150; i++) {
      const from = i % 3 === 0 ? clients.carol! : clients.alice!;
      await from.send({ user: "dave" }, `offline ${i}`);
      texts.push(`${from.name}:offline ${i}`);
    }
    const back = await zeromqClient(stack.dir, "dave", stack.endpoints, { register: false });
    cleanups.push(() => back.dispose());
    const started = Date.now();
    const n = await back.sync();
    assert.equal(n, 150);
    const all = [...back.cache.history("u:alice", 1000), ...back.cache.history("u:carol", 1000)].sort(
      (a, b) => Number(BigInt(a.cursor) - BigInt(b.cursor)),
    );
    assert.deepEqual(
      all.map((m) => `${m.from}:${m.text}`),
      texts,
    );
    figure(t, `recovered 150 messages in ${Date.now() - started} ms`);
  });

  it("fuzzed frames at every listening socket: no crash, bounded memory, others keep chatting", async (t) => {
    // PORT+3 bound too (for clients of older releases), so that it is fuzzed as well.
    const { stack, clients } = await setUp({ servers: 1, legacySubscribers: true }, ["alice", "bob"]);
    const ready = JSON.parse(stack.balancers[0]!.output.find((l) => l.includes("balancer_ready"))!) as {
      endpoints: { frontend: string; backend: string; pubIn: string; pubOut: string };
    };
    const balancerPid = stack.balancers[0]!.child.pid!;
    const rssBefore = rssKiB(balancerPid);
    // Fuzzed from inside: a client's CURVE key at the front, a listed server's at the back.
    const front = new Dealer({ linger: 0, sendHighWaterMark: 10_000, ...stack.socketSecurity("client") });
    front.connect(ready.endpoints.frontend);
    const back = new Dealer({ linger: 0, routingId: "fuzzer", ...stack.socketSecurity("server") });
    back.connect(ready.endpoints.backend);
    const pub = new Publisher({ linger: 0, ...stack.socketSecurity("server") });
    pub.connect(ready.endpoints.pubIn);
    const sub = new Subscriber({ linger: 0, ...stack.socketSecurity("client") });
    sub.connect(ready.endpoints.pubOut);
    const frame = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      fc.constantFrom("S", "B", "REQ", "REP", "READY", "HB", "BYE", "WELCOME", "").map((s) => Buffer.from(s)),
      fc.json().map((s) => Buffer.from(s)),
      fc
        .record({ v: fc.constantFrom(1, 2, "1"), id: fc.string(), type: fc.string(), body: fc.anything() })
        .map((o) => Buffer.from(JSON.stringify(o))),
    );
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 4 }), fc.nat(3), async (parts, where) => {
        sent++;
        if (where === 0) await front.send(parts);
        else if (where === 1) await back.send(parts);
        else if (where === 2) await pub.send(parts);
        else sub.subscribe(parts[0]!.toString("latin1"));
      }),
      { numRuns: 3000 },
    );
    await front.send(["S", Buffer.alloc(3 * 1024 * 1024)]);
    front.close();
    back.close();
    pub.close();
    sub.close();
    assert.equal(stack.balancers[0]!.child.exitCode, null, "the balancer is alive");
    assert.equal(stack.servers[0]!.child.exitCode, null, "the server is alive");
    const m = await clients.alice!.send({ user: "bob" }, "after the fuzz");
    await clients.bob!.sync();
    assert.ok(clients.bob!.cache.history("u:alice", 10).some((x) => x.id === m.id));
    const growth = rssKiB(balancerPid) - rssBefore;
    assert.ok(growth < 64 * 1024, `balancer memory grew by ${growth} KiB`);
    figure(t, `fuzzed ${sent} frame sets; balancer RSS growth ${growth} KiB`);
  });
});
