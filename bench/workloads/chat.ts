import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { Target as ChatTarget } from "../../core/client/client.js";
import type { BenchContext } from "../lib/context.js";
import { delta, histogramQuantile, largest, type Samples, scrapeAll } from "../lib/metrics.js";
import type { Helper } from "../lib/rpc.js";
import type { Stack } from "../lib/stack.js";
import { distribution, extent } from "../lib/stats.js";
import { CpuMeter } from "../lib/sysinfo.js";

/** The helper processes that host ChatClients: p1 sends, p2 and p3 receive. */
export interface Peers {
  p1: Helper;
  p2: Helper;
  p3: Helper;
}

interface SendResult {
  sent: Float64Array;
  acked: Float64Array;
  failures: string[];
  behindMs?: number;
  /** The sending process's event-loop delay during the run, ms (bench/procs/peer.ts). */
  loop?: { p99: number; max: number };
}

interface Collected {
  times: Float64Array[];
  duplicates: number;
  problems: string[];
  /** The receiving process's event-loop delay during the run, ms. */
  loop?: { p99: number; max: number };
}

export type StoreKind = "sqlite" | "influx";

/** What arrived, checked: lost, duplicated or unverifiable messages fail the bench. */
function check(ctx: BenchContext, what: string, c: Collected, send: SendResult): void {
  let lost = 0;
  for (const t of c.times) for (let i = 0; i < t.length; i++) if (Number.isNaN(t[i]!)) lost++;
  const expected = c.times.reduce((s, t) => s + t.length, 0);
  if (lost > 0) {
    const why = send.failures.length ? ` (send failures: ${send.failures.slice(0, 3).join("; ")})` : "";
    ctx.results.fail(`${what}: ${lost} of ${expected} deliveries lost${why}`);
  }
  if (c.duplicates > 0) ctx.results.fail(`${what}: ${c.duplicates} deliveries duplicated`);
  if (c.problems.length > 0)
    ctx.results.fail(
      `${what}: ${c.problems.length} messages did not verify: ${c.problems.slice(0, 3).join("; ")}`,
    );
}

/** Send → display-ready latency of every delivery, over all receivers. */
function latencies(send: SendResult, c: Collected): Float64Array {
  const n = send.sent.length;
  const out = new Float64Array(n * c.times.length);
  c.times.forEach((t, r) => {
    for (let i = 0; i < n; i++) out[r * n + i] = t[i]! - send.sent[i]!;
  });
  return out;
}

function ackLatencies(send: SendResult): Float64Array {
  return send.sent.map((s, i) => send.acked[i]! - s);
}

/** Acknowledgements per second over the first and the last tenth of a run: does the store slow down as mailboxes grow? */
function ackRates(send: SendResult): { first: number; last: number } {
  const t = Array.from(send.acked)
    .filter((v) => !Number.isNaN(v))
    .sort((a, b) => a - b);
  const k = Math.max(2, Math.floor(t.length / 10));
  if (t.length < 2 * k) return { first: Number.NaN, last: Number.NaN };
  const start = extent(send.sent).min;
  return { first: (k * 1000) / (t[k - 1]! - start), last: (k * 1000) / (t.at(-1)! - t[t.length - k - 1]!) };
}

/** The chat workloads over one real stack (balancer + 2 servers on one store). */
export class ChatBench {
  private readonly k: string;

  constructor(
    private readonly ctx: BenchContext,
    private readonly stack: Stack,
    private readonly store: StoreKind,
    private readonly peers: Peers,
    private readonly home: string,
    /** The database server's process (influxd), when the store is one; its CPU is shown apart. */
    private readonly storePid: number | null = null,
    /** influxd's HTTP API, whose /debug/vars counts requests and points (influx stacks only). */
    private readonly storeUrl: string | null = null,
  ) {
    this.k = store === "sqlite" ? "s" : "i";
  }

  private open(helper: Helper, name: string): Promise<void> {
    return helper.call("open", { name, home: this.home, endpoint: this.stack.endpoint, live: true });
  }

  /** A short exchange that is not measured: JIT, connections, key look-ups. */
  private async warm(
    from: Helper,
    sender: string,
    target: ChatTarget,
    to: Array<[Helper, string[]]>,
    tag: string,
  ) {
    const count = 100;
    for (const [h, names] of to) await h.call("listen", { names, tag, count });
    const [send, ...got] = await Promise.all([
      from.call<SendResult>("sendBurst", { name: sender, target, tag, count, size: 200, concurrency: 20 }),
      ...to.map(([h, names]) =>
        h.call<Collected>("collect", { names, tag, stallMs: this.ctx.sizes.stallMs }),
      ),
    ]);
    for (const c of got) check(this.ctx, `${this.store} warm-up`, c, send);
  }

  /** influxd's own request and point counters (its /debug/vars `httpd` section), or null without influxd. */
  private async influxdCounters(): Promise<Record<string, number> | null> {
    if (!this.storeUrl) return null;
    try {
      const vars = (await (await fetch(`${this.storeUrl}/debug/vars`)).json()) as Record<
        string,
        { values?: Record<string, number> }
      >;
      const httpd = Object.entries(vars).find(([k]) => k.startsWith("httpd"))?.[1]?.values;
      return httpd ?? null;
    } catch {
      return null;
    }
  }

  /** CPU meters, started now: the stack, its balancer and servers, alice's and bob's helpers, influxd. */
  private cpuParts(): {
    stack: CpuMeter;
    balancer: CpuMeter;
    servers: CpuMeter;
    alice: CpuMeter;
    bob: CpuMeter;
    influxd?: CpuMeter;
  } {
    const { stack, peers } = this;
    return {
      stack: new CpuMeter(stack.pids),
      balancer: new CpuMeter([stack.balancerPid]),
      servers: new CpuMeter(stack.serverPids),
      alice: new CpuMeter([peers.p1.pid]),
      bob: new CpuMeter([peers.p2.pid]),
      ...(this.storePid ? { influxd: new CpuMeter([this.storePid]) } : {}),
    };
  }

  /** 1:1: alice sends N messages to bob with ≤100 unacknowledged; bob is live. */
  async oneToOne(run: number): Promise<void> {
    const { ctx, peers, stack } = this;
    const s = ctx.sizes;
    const alice = `alice-${this.k}${run}`;
    const bob = `bob-${this.k}${run}`;
    await this.open(peers.p2, bob);
    await this.open(peers.p1, alice);
    try {
      await this.warm(peers.p1, alice, { user: bob }, [[peers.p2, [bob]]], `w${run}`);
      const tag = `c${run}`;
      await peers.p2.call("listen", { names: [bob], tag, count: s.chatCount });
      const before = await scrapeAll(stack.metricsUrls);
      const influxBefore = await this.influxdCounters();
      const { stack: cpu, ...parts } = this.cpuParts();
      const [send, got] = await Promise.all([
        peers.p1.call<SendResult>("sendBurst", {
          name: alice,
          target: { user: bob },
          tag,
          count: s.chatCount,
          size: s.textBytes,
          concurrency: s.maxUnacked,
        }),
        peers.p2.call<Collected>("collect", { names: [bob], tag, stallMs: s.stallMs }),
      ]);
      const used = cpu.used();
      const after = await scrapeAll(stack.metricsUrls);
      const influxAfter = await this.influxdCounters();
      check(ctx, `1:1 chat (${this.store})`, got, send);
      writeTrace(`chat-${this.store}-${run}`, send, got);
      const stored = await peers.p2.call<{ items: number; unique: number }>("audit", { name: bob });
      if (stored.items > stored.unique)
        ctx.results.fail(
          `1:1 chat (${this.store}): ${stored.items - stored.unique} extra copies of messages in bob's mailbox (resends stored again; bob's cache hides them)`,
        );
      const d = distribution(latencies(send, got));
      const span = extent(got.times[0]!).max - extent(send.sent).min;
      const ack = distribution(ackLatencies(send));
      const w = `1:1 chat, ${this.store}`;
      const id = `chat.${this.store}`;
      ctx.results.add(`${id}.msgs`, (d.count * 1000) / span, {
        workload: w,
        label: `${s.chatCount} × ${s.textBytes} B delivered+opened at bob, ≤${s.maxUnacked} unacked`,
        unit: "msg/s",
        better: "higher",
        baseline: "raw.msgs",
      });
      ctx.results.add(`${id}.p50`, d.p50, {
        workload: w,
        label: "send → display-ready p50",
        unit: "ms",
        better: "lower",
        baseline: "raw.p50",
      });
      ctx.results.add(`${id}.p99`, d.p99, {
        workload: w,
        label: "send → display-ready p99",
        unit: "ms",
        better: "lower",
        baseline: "raw.p99",
      });
      ctx.results.add(`${id}.ackP99`, ack.p99, {
        workload: w,
        label: "send → durable ack p99",
        unit: "ms",
        better: "lower",
      });
      const rates = ackRates(send);
      ctx.results.add(`${id}.ackRate.first`, rates.first, {
        workload: w,
        label: "acks per second, first tenth of the run",
        unit: "msg/s",
        better: "higher",
      });
      ctx.results.add(`${id}.ackRate.last`, rates.last, {
        workload: w,
        label: "acks per second, last tenth of the run",
        unit: "msg/s",
        better: "higher",
      });
      ctx.results.add(`${id}.cpu`, used / d.count, {
        workload: w,
        label: "balancer + 2 servers CPU per message",
        unit: "µs/msg",
        better: "lower",
        baseline: "raw.cpu",
      });
      // Where the work comes from: requests and store commits per message, from the stack's own metrics.
      const perMessage = (prefix: string, ...having: string[]) =>
        delta(before, after, prefix, ...having) / d.count;
      const explain = [
        [
          "forwarded",
          "  requests through the balancer per message",
          perMessage("zmqchat_balancer_requests_forwarded_total"),
          "req/msg",
        ],
        [
          "syncs",
          "    of which sync requests",
          perMessage("zmqchat_server_requests_total", 'type="sync"'),
          "req/msg",
        ],
        [
          "batch",
          "  messages per store commit (mean)",
          delta(before, after, "zmqchat_server_store_batch_size_sum") /
            delta(before, after, "zmqchat_server_store_batch_size_count"),
          "msg",
        ],
        [
          "commitMs",
          "  store commit time (mean)",
          (1000 * delta(before, after, "zmqchat_server_store_batch_seconds_sum")) /
            delta(before, after, "zmqchat_server_store_batch_seconds_count"),
          "ms",
        ],
        ...lockFigures(this.store, before, after),
      ] as const;
      for (const [key, label, value, unit] of explain) {
        ctx.results.add(`${id}.${key}`, value, { workload: w, label, unit, better: "lower" });
      }
      if (influxBefore && influxAfter) {
        const per = (k: string) => ((influxAfter[k] ?? 0) - (influxBefore[k] ?? 0)) / d.count;
        for (const [key, label, value, unit] of [
          ["influx.writes", "  influxd write requests per message", per("writeReq"), "req/msg"],
          ["influx.queries", "  influxd query requests per message", per("queryReq"), "req/msg"],
          ["influx.points", "  points written per message", per("pointsWrittenOK"), "points/msg"],
          ["influx.readBytes", "  query answer bytes per message", per("queryRespBytes"), "B/msg"],
        ] as const)
          ctx.results.add(`${id}.${key}`, value, { workload: w, label, unit, better: "lower" });
      }
      for (const [who, meter] of Object.entries(parts)) {
        ctx.results.add(`${id}.cpu.${who}`, meter.used() / d.count, {
          workload: w,
          label: {
            balancer: "  of which the balancer",
            servers: "  of which the 2 servers",
            alice: "  alice's process (client), for comparison",
            bob: "  bob's process (client), for comparison",
            influxd: "  influxd (the database), for comparison",
          }[who]!,
          unit: "µs/msg",
          better: "lower",
        });
      }
    } finally {
      await peers.p1.call("close", { names: [alice] });
      await peers.p2.call("close", { names: [bob] });
    }
  }

  /** Light load: a fixed rate offered (open loop) for a while; latency send → display-ready at bob. */
  async lightLoad(run: number): Promise<void> {
    const { ctx, peers } = this;
    const s = ctx.sizes;
    const alice = `lalice-${this.k}${run}`;
    const bob = `lbob-${this.k}${run}`;
    await this.open(peers.p2, bob);
    await this.open(peers.p1, alice);
    try {
      await this.warm(peers.p1, alice, { user: bob }, [[peers.p2, [bob]]], `lw${run}`);
      const tag = `l${run}`;
      const count = Math.round((s.lightRate * s.lightMs) / 1000);
      await peers.p2.call("listen", { names: [bob], tag, count });
      const before = await scrapeAll(this.stack.metricsUrls);
      const influxBefore = await this.influxdCounters();
      const parts = this.cpuParts();
      const started = performance.now();
      const [send, got] = await Promise.all([
        peers.p1.call<SendResult>("sendRate", {
          name: alice,
          target: { user: bob },
          tag,
          rate: s.lightRate,
          durationMs: s.lightMs,
          size: s.textBytes,
          maxInFlight: s.maxUnacked,
        }),
        peers.p2.call<Collected>("collect", { names: [bob], tag, stallMs: s.stallMs }),
      ]);
      const cpu = Object.fromEntries(Object.entries(parts).map(([who, meter]) => [who, meter.used()]));
      const wallMicros = (performance.now() - started) * 1000;
      const after = await scrapeAll(this.stack.metricsUrls);
      const influxAfter = await this.influxdCounters();
      check(ctx, `light load (${this.store})`, got, send);
      writeTrace(`light-${this.store}-${run}`, send, got);
      const d = distribution(latencies(send, got));
      const w = `1:1 chat, ${this.store}, ${s.lightRate}/s offered for ${s.lightMs / 1000} s`;
      const note =
        (send.behindMs ?? 0) > 50
          ? `the sender fell up to ${Math.round(send.behindMs!)} ms behind its schedule`
          : undefined;
      const meta = { workload: w, unit: "ms", better: "lower" as const, note };
      ctx.results.add(`light.${this.store}.p50`, d.p50, {
        ...meta,
        label: "send → display-ready p50",
        baseline: "light.raw.p50",
      });
      ctx.results.add(`light.${this.store}.p99`, d.p99, {
        ...meta,
        label: "send → display-ready p99",
        baseline: "light.raw.p99",
      });
      ctx.results.add(`light.${this.store}.max`, d.max, {
        ...meta,
        label: "send → display-ready max",
        baseline: "light.raw.max",
      });
      const ack = distribution(ackLatencies(send));
      ctx.results.add(`light.${this.store}.ackP50`, ack.p50, { ...meta, label: "send → durable ack p50" });
      ctx.results.add(`light.${this.store}.ackP99`, ack.p99, { ...meta, label: "send → durable ack p99" });
      const commits = delta(before, after, "zmqchat_server_store_batch_seconds_count");
      ctx.results.add(
        `light.${this.store}.commitMs`,
        (1000 * delta(before, after, "zmqchat_server_store_batch_seconds_sum")) / commits,
        { ...meta, label: "store commit time (mean)" },
      );
      ctx.results.add(
        `light.${this.store}.commitP99`,
        1000 * histogramQuantile(before, after, "zmqchat_server_store_batch_seconds", 0.99),
        {
          ...meta,
          label: "store commit time p99 (upper bound of its histogram bucket)",
          baseline: "light.disk.p99",
        },
      );
      // The ack's time split: what the server spent on each send.many (checks, queue, lock, commit), the rest is the way there and back.
      const sendMany = 'type="send.many"';
      const requests = delta(before, after, "zmqchat_server_request_seconds_count", sendMany);
      ctx.results.add(
        `light.${this.store}.serverMs`,
        (1000 * delta(before, after, "zmqchat_server_request_seconds_sum", sendMany)) / requests,
        { ...meta, label: "server time per send.many request (mean; bob's receipts included)" },
      );
      ctx.results.add(
        `light.${this.store}.serverP99`,
        1000 * histogramQuantile(before, after, "zmqchat_server_request_seconds", 0.99, sendMany),
        { ...meta, label: "server time per send.many request p99 (upper bound of its histogram bucket)" },
      );
      // Who stalled: each process's longest event-loop delay during the run. A delivery waits out
      // every stall on its way (sender, balancer, server, receiver); the servers' and the
      // balancer's come from prom-client's monitor (10 ms resolution, reset at each scrape).
      const stalls: Array<[string, string, number]> = [
        ["alice", "the sender's process (client)", send.loop?.max ?? Number.NaN],
        ["bob", "the receiver's process (client)", got.loop?.max ?? Number.NaN],
        [
          "balancer",
          "the balancer",
          1000 * largest(after, "zmqchat_balancer_nodejs_eventloop_lag_max_seconds"),
        ],
        [
          "servers",
          "the servers (the larger)",
          1000 * largest(after, "zmqchat_server_nodejs_eventloop_lag_max_seconds"),
        ],
      ];
      for (const [who, label, ms] of stalls)
        ctx.results.add(`light.${this.store}.stall.${who}`, ms, {
          ...meta,
          label: `longest event-loop delay of ${label} during the run`,
        });
      // What the tail is made of at this rate: every process's CPU per message (at light load each
      // request and commit carries a message or two, where a flood amortises it over dozens), and
      // the share of the machine's cores they keep busy together, which a delivery queues behind.
      const messages = (s.lightRate * s.lightMs) / 1000;
      for (const [who, label] of [
        ["stack", "balancer + 2 servers CPU per message"],
        ["balancer", "  of which the balancer"],
        ["servers", "  of which the 2 servers"],
        ["alice", "the sender's process (client) CPU per message"],
        ["bob", "the receiver's process (client) CPU per message"],
        ["influxd", "influxd (the database) CPU per message"],
      ] as const) {
        if (cpu[who] === undefined) continue;
        ctx.results.add(`light.${this.store}.cpu.${who}`, cpu[who] / messages, {
          workload: w,
          label,
          unit: "µs/msg",
          better: "lower",
        });
      }
      const busy = Object.entries(cpu)
        .filter(([who]) => who !== "stack")
        .reduce((sum, [, us]) => sum + us, 0);
      ctx.results.add(
        `light.${this.store}.cpu.machine`,
        (100 * busy) / (wallMicros * availableParallelism()),
        {
          workload: w,
          label: `all of these together, share of the machine's ${availableParallelism()} cores during the run`,
          unit: "%",
          better: "lower",
        },
      );
      if (influxBefore && influxAfter) {
        const per = (k: string) => ((influxAfter[k] ?? 0) - (influxBefore[k] ?? 0)) / messages;
        ctx.results.add(`light.${this.store}.influx.writes`, per("writeReq"), {
          workload: w,
          label: "influxd write requests per message",
          unit: "req/msg",
          better: "lower",
        });
        ctx.results.add(`light.${this.store}.influx.points`, per("pointsWrittenOK"), {
          workload: w,
          label: "  points written per message",
          unit: "points/msg",
          better: "lower",
        });
        ctx.results.add(`light.${this.store}.influx.queries`, per("queryReq"), {
          workload: w,
          label: "influxd query requests per message",
          unit: "req/msg",
          better: "lower",
        });
      }
      ctx.results.add(`light.${this.store}.perRequest`, (s.lightRate * s.lightMs) / 1000 / requests, {
        workload: w,
        label: "messages per send.many request (mean; bob's receipts included)",
        unit: "msg",
        better: "higher",
      });
      ctx.results.add(
        `light.${this.store}.syncs`,
        delta(before, after, "zmqchat_server_request_seconds_count", 'type="sync"'),
        {
          workload: w,
          label:
            "sync requests (live deliveries that missed their predecessor: gap reads and syncs; both clients)",
          unit: "req",
          better: "lower",
        },
      );
      for (const [key, label, value, unit] of lockFigures(this.store, before, after))
        ctx.results.add(`light.${this.store}.${key}`, value, { workload: w, label, unit, better: "lower" });
    } finally {
      await peers.p1.call("close", { names: [alice] });
      await peers.p2.call("close", { names: [bob] });
    }
  }

  /**
   * Group fan-out: one member sends to a group whose other members listen in two processes.
   * `paced`: the sender offers GROUP_PACED_DELIVERIES a second (messages × listening members) on
   * a schedule instead of as fast as its ≤100 unacknowledged allow, so the latency is that of a
   * load the members can keep up with, not the length of the backlog a flood builds.
   */
  async group(run: number, paced = false): Promise<void> {
    const { ctx, peers, stack } = this;
    const s = ctx.sizes;
    const owner = `gown-${this.k}${run}`;
    const members = Array.from({ length: s.groupMembers - 1 }, (_, i) => `gm-${this.k}${run}-${i}`);
    const inP2 = members.filter((_, i) => i % 2 === 0);
    const inP3 = members.filter((_, i) => i % 2 === 1);
    const group = `grp-${this.k}${run}`;
    const target = { group };
    const listeners: Array<[Helper, string[]]> = [
      [peers.p2, inP2],
      [peers.p3, inP3],
    ];
    try {
      await Promise.all(
        listeners.map(([h, names]) =>
          h.call("openMany", { names, home: this.home, endpoint: stack.endpoint, live: true }),
        ),
      );
      await this.open(peers.p1, owner);
      await peers.p1.call("groupCreate", { name: owner, group, members });
      for (const [h, names] of listeners)
        await h.call("groupAccept", { names, group, home: this.home, endpoint: stack.endpoint });
      await this.warm(peers.p1, owner, target, listeners, `gw${run}`);
      const tag = `g${run}`;
      for (const [h, names] of listeners) await h.call("listen", { names, tag, count: s.groupMessages });
      const before = await scrapeAll(stack.metricsUrls);
      const cpu = new CpuMeter(stack.pids);
      const parts = {
        balancer: new CpuMeter([stack.balancerPid]),
        servers: new CpuMeter(stack.serverPids),
        sender: new CpuMeter([peers.p1.pid]),
        members: new CpuMeter([peers.p2.pid, peers.p3.pid]),
      };
      const memberCpu = () =>
        Promise.all(listeners.map(([h]) => h.call<{ mainMs: number | null; allMs: number }>("cpu")));
      const cpu0 = await memberCpu();
      const rate = GROUP_PACED_DELIVERIES / members.length;
      const [send, ...got] = await Promise.all([
        paced
          ? peers.p1.call<SendResult>("sendRate", {
              name: owner,
              target,
              tag,
              rate,
              durationMs: (s.groupMessages * 1000) / rate,
              size: s.textBytes,
              maxInFlight: s.maxUnacked,
            })
          : peers.p1.call<SendResult>("sendBurst", {
              name: owner,
              target,
              tag,
              count: s.groupMessages,
              size: s.textBytes,
              concurrency: s.maxUnacked,
            }),
        ...listeners.map(([h, names]) => h.call<Collected>("collect", { names, tag, stallMs: s.stallMs })),
      ]);
      const used = cpu.used();
      const cpu1 = await memberCpu();
      const after = await scrapeAll(stack.metricsUrls);
      const all: Collected = {
        times: got.flatMap((c) => c.times),
        duplicates: got.reduce((n, c) => n + c.duplicates, 0),
        problems: got.flatMap((c) => c.problems),
      };
      check(ctx, `group fan-out (${this.store})`, all, send);
      const d = distribution(latencies(send, all));
      const last = Math.max(...all.times.map((t) => extent(t).max));
      const span = last - extent(send.sent).min;
      if (paced) {
        this.pacedGroupFigures(d, span, send, members.length, rate);
        return;
      }
      const w = `group of ${s.groupMembers}, ${this.store}`;
      const id = `group.${this.store}`;
      ctx.results.add(`${id}.deliveries`, (d.count * 1000) / span, {
        workload: w,
        label: `${s.groupMessages} messages to ${members.length} listening members`,
        unit: "deliveries/s",
        better: "higher",
      });
      ctx.results.add(`${id}.p50`, d.p50, {
        workload: w,
        label: "send → display-ready p50",
        unit: "ms",
        better: "lower",
      });
      ctx.results.add(`${id}.p99`, d.p99, {
        workload: w,
        label: "send → display-ready p99",
        unit: "ms",
        better: "lower",
      });
      // Where the latency comes from: the service acknowledges the sender's messages (each a
      // delivery for every member) faster than the members open them, or not. The members'
      // backlog when the last acknowledgement came, and how long they took to work it off.
      const flow = backlog(send, all);
      const flowFigures = [
        [
          "offered",
          "  deliveries acknowledged per second (sender's acks × members)",
          flow.ackRate * members.length,
          "deliveries/s",
          "higher",
        ],
        [
          "backlog",
          "  deliveries not yet display-ready at the last ack",
          flow.backlog,
          "deliveries",
          "lower",
        ],
        ["drainMs", "  last ack → last delivery display-ready", flow.drainMs, "ms", "lower"],
      ] as const;
      for (const [key, label, value, unit, better] of flowFigures)
        ctx.results.add(`${id}.${key}`, value, { workload: w, label, unit, better });
      ctx.results.add(`${id}.cpu`, used / d.count, {
        workload: w,
        label: "balancer + 2 servers CPU per delivery",
        unit: "µs/delivery",
        better: "lower",
      });
      for (const [who, meter] of Object.entries(parts)) {
        ctx.results.add(`${id}.cpu.${who}`, meter.used() / d.count, {
          workload: w,
          label: {
            balancer: "  of which the balancer",
            servers: "  of which the 2 servers",
            sender: "  the sender's process (client), for comparison",
            members: `  the ${members.length} members' 2 processes (clients), for comparison`,
          }[who]!,
          unit: "µs/delivery",
          better: "lower",
        });
      }
      // A member process opens on one thread: its main thread bounds what it takes per second.
      const mainMs = cpu1.reduce(
        (sum, c, i) => sum + (c.mainMs ?? Number.NaN) - (cpu0[i]!.mainMs ?? Number.NaN),
        0,
      );
      const allMs = cpu1.reduce((sum, c, i) => sum + c.allMs - cpu0[i]!.allMs, 0);
      ctx.results.add(`${id}.cpu.membersMain`, (mainMs * 1000) / d.count, {
        workload: w,
        label: "    of which their main threads (the rest: GC helpers, ZeroMQ, checkpoints)",
        unit: "µs/delivery",
        better: "lower",
        note: `all threads by the process's own count: ${Math.round((allMs * 1000) / d.count)} µs/delivery`,
      });
      // Where the work comes from: requests per group message sent, from the stack's own metrics.
      const perMessage = (...having: string[]) =>
        delta(before, after, "zmqchat_server_requests_total", ...having) / s.groupMessages;
      const explain = [
        ["requests", "  requests to the servers per group message", perMessage()],
        ["syncs", "    of which sync requests", perMessage('type="sync"')],
        ["sends", "    of which send and send.many (receipts too)", perMessage('type="send')],
      ] as const;
      for (const [key, label, value] of explain)
        ctx.results.add(`${id}.${key}`, value, { workload: w, label, unit: "req/msg", better: "lower" });
    } finally {
      await peers.p1.call("close", { names: [owner] });
      await Promise.all(listeners.map(([h, names]) => h.call("close", { names })));
    }
  }

  private pacedGroupFigures(
    d: ReturnType<typeof distribution>,
    spanMs: number,
    send: SendResult,
    listening: number,
    rate: number,
  ): void {
    const s = this.ctx.sizes;
    const w = `group of ${s.groupMembers}, ${this.store}, paced`;
    const id = `group.${this.store}.paced`;
    const offered = `${GROUP_PACED_DELIVERIES.toLocaleString("en")} deliveries/s offered (${Math.round(rate)} msg/s × ${listening})`;
    const figures = [
      [
        "deliveries",
        `${s.groupMessages} messages at ${offered}: delivered`,
        (d.count * 1000) / spanMs,
        "deliveries/s",
        "higher",
      ],
      ["p50", "send → display-ready p50", d.p50, "ms", "lower"],
      ["p99", "send → display-ready p99", d.p99, "ms", "lower"],
      ["behind", "  the sender's lag behind its schedule (max)", send.behindMs ?? Number.NaN, "ms", "lower"],
    ] as const;
    for (const [key, label, value, unit, better] of figures)
      this.ctx.results.add(`${id}.${key}`, value, { workload: w, label, unit, better });
  }
}

/**
 * ZMQCHAT_BENCH_TRACE=PREFIX: each message's send, ack and arrival times of a 1:1 run (ms, the
 * peers' shared clock) into PREFIX-NAME.json, to see when the tail happens and what else happened then.
 */
function writeTrace(name: string, send: SendResult, got: Collected): void {
  const trace = process.env.ZMQCHAT_BENCH_TRACE;
  if (!trace) return;
  writeFileSync(
    `${trace}-${name}.json`,
    JSON.stringify({ sent: [...send.sent], acked: [...send.acked], got: [...got.times[0]!] }),
  );
}

/** The paced group run's offer: the deliveries a second #15 asks of the group of 50. */
const GROUP_PACED_DELIVERIES = 10_000;

/**
 * The sender's acknowledgements per second (first send → last ack), how many deliveries were
 * not yet display-ready at the last ack (acknowledged, so stored and published, but not opened
 * by their member yet), and how long after the last ack the last one was.
 */
function backlog(send: SendResult, c: Collected): { ackRate: number; backlog: number; drainMs: number } {
  const acked = extent(send.acked);
  const ackRate =
    (send.acked.filter((a) => !Number.isNaN(a)).length * 1000) / (acked.max - extent(send.sent).min);
  let waiting = 0;
  let last = Number.NEGATIVE_INFINITY;
  for (const t of c.times)
    for (let i = 0; i < t.length; i++) {
      if (!(t[i]! <= acked.max)) waiting++;
      if (t[i]! > last) last = t[i]!;
    }
  return { ackRate, backlog: waiting, drainMs: Math.max(0, last - acked.max) };
}

/** SQLite only: how often and how long a commit waited for the other server's write lock. */
function lockFigures(
  store: string,
  before: Samples[],
  after: Samples[],
): Array<readonly [string, string, number, string]> {
  const waited = delta(before, after, "zmqchat_server_store_lock_wait_seconds_count");
  const commits = delta(before, after, "zmqchat_server_store_batch_seconds_count");
  // With none waiting, the share is 0 and the means are omitted.
  if (store !== "sqlite" || commits === 0) return [];
  const share = [
    "lockShare",
    "  commits that waited for the other server's write lock",
    (100 * waited) / commits,
    "%",
  ] as const;
  if (waited === 0) return [share];
  return [
    share,
    [
      "lockMs",
      "  wait for the lock, mean of those that waited",
      (1000 * delta(before, after, "zmqchat_server_store_lock_wait_seconds_sum")) / waited,
      "ms",
    ],
    [
      "lockTries",
      "  refused tries per commit that waited (mean)",
      delta(before, after, "zmqchat_server_store_lock_tries_total") / waited,
      "tries",
    ],
  ];
}
