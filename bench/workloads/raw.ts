import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { BenchContext } from "../lib/context.js";
import { procScript } from "../lib/paths.js";
import { Helper } from "../lib/rpc.js";
import { distribution, extent } from "../lib/stats.js";
import { CpuMeter } from "../lib/sysinfo.js";
import type { RawResult } from "../procs/raw-client.js";

export const RAW = "raw zeromq";

/** Counts what never came back or came back twice; both fail the bench. */
function checkRaw(ctx: BenchContext, what: string, r: RawResult): void {
  let lost = 0;
  for (let i = 0; i < r.echoed.length; i++) if (Number.isNaN(r.echoed[i]!)) lost++;
  if (lost > 0) ctx.results.fail(`${what}: ${lost} of ${r.echoed.length} messages lost`);
  if (r.duplicates > 0) ctx.results.fail(`${what}: ${r.duplicates} messages duplicated`);
}

function latencies(r: RawResult): Float64Array {
  const l = new Float64Array(r.sent.length);
  for (let i = 0; i < l.length; i++) l[i] = r.echoed[i]! - r.sent[i]!;
  return l;
}

/**
 * The raw ZeroMQ limit, measured in the same run as everything it is compared with: a
 * zeromq.js DEALER client, a ROUTER/ROUTER broker and an echoing DEALER worker, each in its
 * own process (as zmqchat's client, balancer and servers are).
 */
export class RawBaseline {
  private constructor(
    private readonly broker: Helper,
    private readonly worker: Helper,
    private readonly client: Helper,
    private readonly endpoint: string,
  ) {}

  static async start(): Promise<RawBaseline> {
    const broker = Helper.start("raw-broker", procScript("raw-broker"));
    const worker = Helper.start("raw-worker", procScript("raw-worker"));
    const client = Helper.start("raw-client", procScript("raw-client"));
    const ends = await broker.call<{ frontend: string; backend: string }>("start");
    await worker.call("start", { backend: ends.backend });
    const deadline = Date.now() + 10_000;
    while ((await broker.call<number>("workers")) < 1) {
      if (Date.now() > deadline) throw new Error("the raw echo worker did not reach the broker");
      await new Promise((r) => setTimeout(r, 10));
    }
    const raw = new RawBaseline(broker, worker, client, ends.frontend);
    // Warm-up (JIT, connections), not measured.
    await client.call("burst", {
      endpoint: ends.frontend,
      count: 2000,
      size: 200,
      maxInFlight: 100,
      stallMs: 10_000,
    });
    return raw;
  }

  /** 20,000 × 200 bytes with at most 100 in flight: messages/s, round-trip p50/p99, broker CPU per message. */
  async burst(ctx: BenchContext): Promise<void> {
    const s = ctx.sizes;
    const cpu = new CpuMeter([this.broker.pid]);
    const r = await this.client.call<RawResult>("burst", {
      endpoint: this.endpoint,
      count: s.rawCount,
      size: s.textBytes,
      maxInFlight: s.maxUnacked,
      stallMs: s.stallMs,
    });
    const used = cpu.used();
    checkRaw(ctx, "raw baseline", r);
    const first = extent(r.sent).min;
    const last = extent(r.echoed).max;
    const d = distribution(latencies(r));
    const meta = { workload: RAW, better: "higher" as const };
    ctx.results.add("raw.msgs", (d.count * 1000) / (last - first), {
      ...meta,
      label: `echo ${s.rawCount} × ${s.textBytes} B, ≤${s.maxUnacked} in flight`,
      unit: "msg/s",
    });
    ctx.results.add("raw.p50", d.p50, { ...meta, better: "lower", label: "round trip p50", unit: "ms" });
    ctx.results.add("raw.p99", d.p99, { ...meta, better: "lower", label: "round trip p99", unit: "ms" });
    ctx.results.add("raw.cpu", used / d.count, {
      ...meta,
      better: "lower",
      label: "broker CPU per message",
      unit: "µs/msg",
    });
  }

  /** The same path at the light-load rate, for the light-load latency ratios. */
  async rate(ctx: BenchContext): Promise<void> {
    const s = ctx.sizes;
    const r = await this.client.call<RawResult>("rate", {
      endpoint: this.endpoint,
      rate: s.lightRate,
      durationMs: s.lightMs,
      size: s.textBytes,
      maxInFlight: s.maxUnacked,
      stallMs: s.stallMs,
    });
    checkRaw(ctx, "raw light load", r);
    const d = distribution(latencies(r));
    const meta = { workload: `${RAW}, ${s.lightRate}/s offered`, better: "lower" as const, unit: "ms" };
    ctx.results.add("light.raw.p50", d.p50, { ...meta, label: "round trip p50" });
    ctx.results.add("light.raw.p99", d.p99, { ...meta, label: "round trip p99" });
    ctx.results.add("light.raw.max", d.max, { ...meta, label: "round trip max" });
    // The disk's own floor for anything durable before its ack: one small append made durable.
    const disk = distribution(fsyncLatencies(ctx.tmp, Math.min(500, s.lightRate)));
    const diskMeta = { workload: "disk (the stores' file system)", better: "lower" as const, unit: "ms" };
    ctx.results.add("light.disk.p50", disk.p50, { ...diskMeta, label: "4 KiB append + fdatasync p50" });
    ctx.results.add("light.disk.p99", disk.p99, { ...diskMeta, label: "4 KiB append + fdatasync p99" });
  }

  async stop(): Promise<void> {
    await Promise.all([this.client.stop(), this.worker.stop(), this.broker.stop()]);
  }
}

/** `count` appends of 4 KiB, each made durable with fdatasync (what a store's commit waits for at least), in ms. */
function fsyncLatencies(dir: string, count: number): number[] {
  const path = join(dir, "fsync-probe.bin");
  const fd = openSync(path, "w");
  const block = Buffer.alloc(4096, 1);
  const out: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      writeSync(fd, block);
      fdatasyncSync(fd);
      out.push(performance.now() - start);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return out;
}
