import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { zeromqClient } from "../helpers/clients.js";
import { type Influxd, startInfluxd } from "../helpers/influxd.js";
import { CLUSTER_SECRET, waitFor } from "../helpers/stack.js";

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

interface Proc {
  child: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function launch(args: string[]): Proc {
  const child = spawn(process.execPath, [ZMQCHAT_BIN, ...args], {
    env: { ...process.env, ZMQCHAT_CLUSTER_SECRET: CLUSTER_SECRET },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (l) => lines.push(l));
  createInterface({ input: child.stderr! }).on("line", (l) => lines.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, exited };
}

/** The first JSON line of a process's output that `match` accepts. */
async function jsonLine<T>(
  p: Proc,
  what: string,
  match: (o: Record<string, unknown>) => boolean,
): Promise<T> {
  return waitFor(
    what,
    () => {
      for (const l of p.lines) {
        if (!l.startsWith("{")) continue;
        const o = JSON.parse(l) as Record<string, unknown>;
        if (match(o)) return o as T;
      }
      return null;
    },
    20_000,
  );
}

async function startBalancer(): Promise<{ proc: Proc; backend: string; frontend: string; http: string }> {
  const proc = launch(["balancer", "--port", "0", "--http-port", "0", "--log-level", "warn", "--insecure"]);
  const ready = await jsonLine<{ endpoints: { frontend: string; backend: string }; httpPort: number }>(
    proc,
    "the balancer to be ready",
    (o) => o.event === "balancer_ready",
  );
  return {
    proc,
    frontend: ready.endpoints.frontend,
    backend: ready.endpoints.backend,
    http: `http://127.0.0.1:${ready.httpPort}`,
  };
}

async function startServer(
  backend: string,
  store: string,
  id: string,
): Promise<{ proc: Proc; http: string }> {
  const proc = launch([
    "server",
    "--balancer",
    backend,
    "--store",
    store,
    "--id",
    id,
    "--http-port",
    "0",
    "--log-level",
    "info",
    "--insecure",
  ]);
  const ready = await jsonLine<{ httpPort: number }>(
    proc,
    `server ${id} to be ready`,
    (o) => o.msg === "server ready",
  );
  return { proc, http: `http://127.0.0.1:${ready.httpPort}` };
}

async function health(base: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the sample lines; comments skipped). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(base: string): Promise<Sample[]> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  return parseMetrics(await res.text());
}

/** Sum of a metric over every scrape given, over the samples whose labels include `labels`. */
function sum(scrapes: Sample[][], name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const samples of scrapes) {
    for (const s of samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
  }
  return total;
}

async function stopProc(
  p: Proc,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; signal: string | null }> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  return p.exited;
}

describe("operators: /healthz, /metrics and SIGTERM of real server and balancer processes", () => {
  let dir: string;
  let balancer: Awaited<ReturnType<typeof startBalancer>>;
  const servers: Array<Awaited<ReturnType<typeof startServer>>> = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "zmqchat-ops-"));
    balancer = await startBalancer();
    const store = `sqlite:${join(dir, "store.db")}`;
    servers.push(await startServer(balancer.backend, store, "ops-1"));
    servers.push(await startServer(balancer.backend, store, "ops-2"));
  });
  after(async () => {
    for (const p of [...servers.map((s) => s.proc), balancer?.proc]) if (p) await stopProc(p, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("a ready server's /healthz is 200 with its version and id", async () => {
    for (const [i, s] of servers.entries()) {
      const h = await health(s.http);
      assert.equal(h.status, 200);
      assert.equal(h.body.status, "ready");
      assert.equal(h.body.ready, true);
      assert.equal(h.body.version, VERSION);
      assert.equal(h.body.id, `ops-${i + 1}`);
      assert.equal(h.body.inFlight, 0);
      assert.equal(h.body.insecure, true, "a server started with --insecure says so");
    }
    const missing = await fetch(`${servers[0]!.http}/nothing-here`);
    assert.equal(missing.status, 404);
  });

  it("the balancer's /healthz is 200 with its version and the live servers", async () => {
    const h = await waitFor("two live servers", async () => {
      const r = await health(balancer.http);
      return r.body.liveServers === 2 ? r : null;
    });
    assert.equal(h.status, 200);
    assert.equal(h.body.version, VERSION);
    assert.equal(h.body.insecure, true, "a balancer started with --insecure says so");
    // The gauge follows at the next heartbeat tick.
    await waitFor(
      "the live-servers gauge to say 2",
      async () => sum([await scrape(balancer.http)], "zmqchat_balancer_live_servers") === 2,
    );
  });

  it("/metrics count what the test did: 3 sends, 6 mailbox copies, every request forwarded and handled", async () => {
    const alice = await zeromqClient(dir, "alice", [balancer.frontend]);
    const bob = await zeromqClient(dir, "bob", [balancer.frontend]);
    try {
      await alice.login();
      await alice.users(["bob"]);
      const before = await Promise.all(servers.map((s) => scrape(s.http)));
      const balancerBefore = await scrape(balancer.http);
      for (const text of ["one", "two", "three"]) await alice.send({ user: "bob" }, text);
      assert.equal(await bob.sync(), 3);
      const after = await Promise.all(servers.map((s) => scrape(s.http)));
      const balancerAfter = await scrape(balancer.http);
      const delta = (name: string, labels: Record<string, string> = {}) =>
        sum(after, name, labels) - sum(before, name, labels);

      // One request a message: `send`, or (a client alone on its profile, asking `quiet`) a
      // `send.many` of one.
      const sends = (name: string, labels: Record<string, string> = {}) =>
        delta(name, { ...labels, type: "send" }) + delta(name, { ...labels, type: "send.many" });
      assert.equal(sends("zmqchat_server_requests_total", { outcome: "ok" }), 3);
      assert.equal(sends("zmqchat_server_request_seconds_count"), 3);
      assert.ok(sends("zmqchat_server_request_seconds_sum") > 0);
      assert.equal(
        delta("zmqchat_server_messages_stored_total"),
        6,
        "bob's copy and alice's own, per message",
      );
      assert.equal(delta("zmqchat_server_deliveries_published_total"), 6);
      assert.ok(delta("zmqchat_server_requests_total", { type: "sync", outcome: "ok" }) >= 1);
      // Each send is one append; group commits carry them (several per commit when they coincide).
      assert.equal(delta("zmqchat_server_store_batch_size_sum"), 3);
      const commits = delta("zmqchat_server_store_batch_size_count");
      assert.ok(commits >= 1 && commits <= 3, `${commits} commits`);
      assert.equal(delta("zmqchat_server_store_batch_seconds_count"), commits);
      assert.ok(after.every((m) => m.some((x) => x.name === "zmqchat_server_store_errors_total")));
      assert.equal(sum(after, "zmqchat_server_store_errors_total"), 0);
      assert.equal(
        delta("zmqchat_server_requests_total", { outcome: "internal" }) +
          delta("zmqchat_server_requests_total", { outcome: "unavailable" }),
        0,
      );
      // Every request the balancer forwarded was handled and counted by exactly one server. The
      // clients' own background requests (bob's delivered receipt 250 ms after his sync) may be
      // in flight between two scrapes, so both are read again until they agree; a request
      // counted twice, or never, keeps them apart.
      const FORWARDED = "zmqchat_balancer_requests_forwarded_total";
      let forwarded = 0;
      let handled = 0;
      await waitFor(
        "every forwarded request counted by one server",
        async () => {
          const b = await scrape(balancer.http);
          const s = await Promise.all(servers.map((x) => scrape(x.http)));
          forwarded = sum([b], FORWARDED) - sum([balancerBefore], FORWARDED);
          handled = sum(s, "zmqchat_server_requests_total") - sum(before, "zmqchat_server_requests_total");
          return forwarded === handled;
        },
        10_000,
      ).catch(() => assert.equal(forwarded, handled, "forwarded by the balancer vs handled by the servers"));
      assert.ok(forwarded >= 4);
      // Each server's process metrics carry its prefix.
      for (const m of after) assert.ok(m.some((s) => s.name === "zmqchat_server_process_cpu_seconds_total"));
      assert.ok(balancerAfter.some((s) => s.name === "zmqchat_balancer_process_cpu_seconds_total"));
      // alice and bob have been heard from: the gauge says so at the next heartbeat tick.
      await waitFor(
        "the balancer to count the connected clients",
        async () => sum([await scrape(balancer.http)], "zmqchat_balancer_clients") >= 2,
      );
    } finally {
      await alice.dispose();
      await bob.dispose();
    }
  });

  it("SIGTERM: a server leaves the balancer and exits 0; then the balancer exits 0", async () => {
    const [first, second] = servers;
    const exit1 = await stopProc(first!.proc, "SIGTERM");
    assert.deepEqual(exit1, { code: 0, signal: null }, first!.proc.lines.join("\n"));
    assert.ok(first!.proc.lines.some((l) => l.includes('"server stopped"')));
    await waitFor(
      "the balancer to count one live server",
      async () => (await health(balancer.http)).body.liveServers === 1,
    );
    const exit2 = await stopProc(second!.proc, "SIGTERM");
    assert.deepEqual(exit2, { code: 0, signal: null }, second!.proc.lines.join("\n"));
    const exitB = await stopProc(balancer.proc, "SIGTERM");
    assert.deepEqual(exitB, { code: 0, signal: null }, balancer.proc.lines.join("\n"));
  });
});

/**
 * A TCP relay to influxd that can hold what clients send: with it held, a store write stays
 * in flight for as long as the test wants, without signals or sleeps.
 */
async function startRelay(
  port: number,
): Promise<{ port: number; hold(): void; release(): void; close(): Promise<void> }> {
  let held = false;
  const queues = new Map<Socket, Buffer[]>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port });
    sockets.add(client).add(upstream);
    const queue: Buffer[] = [];
    queues.set(upstream, queue);
    client.on("data", (d: Buffer) => {
      if (held) queue.push(d);
      else upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => client.write(d));
    const end = () => {
      client.destroy();
      upstream.destroy();
      queues.delete(upstream);
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as { port: number }).port,
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const [upstream, queue] of queues) for (const d of queue.splice(0)) upstream.write(d);
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe("operators: a server stopping with a store write in flight", () => {
  let influxd: Influxd;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let dir: string;
  let balancer: Awaited<ReturnType<typeof startBalancer>>;
  let server: Awaited<ReturnType<typeof startServer>>;
  // Long store timeouts: the held write must outlast the test's checks, not fail by itself.
  const storeUrl = () => `influx://127.0.0.1:${relay.port}/ops?timeout=60s&retry=60s`;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "zmqchat-ops-drain-"));
    influxd = await startInfluxd();
    relay = await startRelay(influxd.port);
    balancer = await startBalancer();
    server = await startServer(balancer.backend, storeUrl(), "drain-1");
  });
  after(async () => {
    for (const p of [server?.proc, balancer?.proc]) if (p) await stopProc(p, "SIGKILL");
    await relay?.close();
    await influxd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 503 on /healthz while it finishes the write, acknowledges the sender, then exits 0", async () => {
    const alice = await zeromqClient(dir, "alice", [balancer.frontend], { attemptTimeoutMs: 30_000 });
    const bob = await zeromqClient(dir, "bob", [balancer.frontend]);
    try {
      // A first message looks bob up, so the one in flight below is the send itself.
      await alice.send({ user: "bob" }, "before shutdown");
      await alice.sync(); // the sync its own delivery set off: done before the store is held
      assert.equal((await health(server.http)).status, 200);
      assert.equal((await health(server.http)).body.inFlight, 0);
      relay.hold();
      const sent = alice.send({ user: "bob" }, "in flight during shutdown", { timeoutMs: 30_000 });
      await waitFor("the send to be in flight", async () => (await health(server.http)).body.inFlight === 1);
      server.proc.child.kill("SIGTERM");
      const stopping = await waitFor("/healthz to say the server is stopping", async () => {
        const h = await health(server.http);
        return h.status === 503 ? h : null;
      });
      assert.equal(stopping.body.status, "unavailable");
      assert.equal(stopping.body.ready, false);
      assert.equal(stopping.body.version, VERSION);
      assert.equal(stopping.body.inFlight, 1);
      assert.equal(server.proc.child.exitCode, null, "still running while the write is in flight");
      relay.release();
      const message = await sent;
      assert.equal(message.text, "in flight during shutdown");
      assert.deepEqual(await server.proc.exited, { code: 0, signal: null }, server.proc.lines.join("\n"));
      // The acknowledged message is durable: a new server on the same database has it.
      server = await startServer(balancer.backend, storeUrl(), "drain-2");
      await bob.sync();
      assert.deepEqual(
        bob.cache.history("u:alice", 10).map((m) => m.text),
        ["before shutdown", "in flight during shutdown"],
      );
    } finally {
      relay.release();
      await alice.dispose();
      await bob.dispose();
    }
  });
});
