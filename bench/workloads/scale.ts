import { sleep } from "../lib/clock.js";
import type { BenchContext } from "../lib/context.js";
import { scrapeAll, total } from "../lib/metrics.js";
import { procScript } from "../lib/paths.js";
import { Helper } from "../lib/rpc.js";
import { startStack } from "../lib/stack.js";
import { rssBytes } from "../lib/sysinfo.js";
import { RAW } from "./raw.js";

const MiB = 1024 * 1024;
/** Time for the processes to finish the log-in burst before memory is read. */
const settleMs = (ctx: BenchContext) => (ctx.quick ? 500 : 2000);

/**
 * Scale: a fresh stack (balancer + 2 servers, SQLite), then idle, logged-in clients added in
 * steps (1,000, then 5,000 in all); RSS of the balancer and the servers after each step.
 * Memory per client is the growth between the steps, so start-up and warm-up do not count.
 */
export async function scaleRun(ctx: BenchContext, run: number): Promise<void> {
  await rawScaleRun(ctx, null, true);
  if (!ctx.quick) {
    // What ZeroMQ settings and socket shapes would cost, for the proposals.
    await rawScaleRun(ctx, 1024, true);
    await rawScaleRun(ctx, 1024, false);
  }
  await stackScaleRun(ctx, run);
}

/**
 * The raw baseline: one process holding a ROUTER and an XPUB, with each client's DEALER
 * (one echoed request) and SUB (one full-length topic) connected: ZeroMQ's own memory per
 * client with the balancer's socket shape.
 */
async function rawScaleRun(ctx: BenchContext, batchBytes: number | null, withSub: boolean): Promise<void> {
  const s = ctx.sizes;
  const hub = Helper.start("raw-hub", procScript("raw-hub"));
  const helpers = Array.from({ length: s.scaleProcesses }, (_, i) =>
    Helper.start(`raw-idle-${i}`, procScript("idle-clients")),
  );
  try {
    const ends = await hub.call<{ router: string; xpub: string }>("start", { batchBytes });
    let connected = 0;
    const at: Array<{ clients: number; rss: number }> = [];
    for (const step of s.scaleSteps) {
      const more = step - connected;
      const each = Math.ceil(more / helpers.length);
      await Promise.all(
        helpers.map((h, i) =>
          h.call("connectRaw", {
            router: ends.router,
            xpub: withSub ? ends.xpub : null,
            count: Math.max(0, Math.min(each, more - i * each)),
            concurrency: 50,
          }),
        ),
      );
      connected = step;
      await sleep(settleMs(ctx));
      at.push({ clients: step, rss: rssBytes(hub.pid) });
      ctx.log(
        `  raw${batchBytes ? `, batches of ${batchBytes} B` : ""}${withSub ? "" : ", no SUB"}: ${step} idle clients, ${(at.at(-1)!.rss / MiB).toFixed(1)} MiB`,
      );
    }
    const first = at[0]!;
    const last = at.at(-1)!;
    if (last.clients > first.clients) {
      const id = `scale.raw.perClient${batchBytes ? ".smallBatch" : ""}${withSub ? "" : ".noSub"}`;
      const how = batchBytes ? `, I/O batches of ${batchBytes} B (ZMQ_IN/OUT_BATCH_SIZE)` : "";
      const shape = withSub
        ? "ROUTER + XPUB memory per client (DEALER + SUB)"
        : "ROUTER memory per client (DEALER only)";
      ctx.results.add(id, (last.rss - first.rss) / (last.clients - first.clients) / 1024, {
        workload: `${RAW}, idle clients`,
        label: `${shape}${how}, ${first.clients} → ${last.clients}`,
        unit: "KiB",
        better: "lower",
      });
    }
  } finally {
    await Promise.all(helpers.map((h) => h.stop()));
    await hub.stop();
  }
}

async function stackScaleRun(ctx: BenchContext, run: number): Promise<void> {
  const s = ctx.sizes;
  const stack = await startStack(`sqlite:${ctx.tmp}/scale-${run}.db`, 2, `scale${run}`);
  const helpers = Array.from({ length: s.scaleProcesses }, (_, i) =>
    Helper.start(`idle-${i}`, procScript("idle-clients")),
  );
  try {
    const rss = () => ({
      balancer: rssBytes(stack.balancerPid),
      servers: stack.serverPids.reduce((sum, pid) => sum + rssBytes(pid), 0),
    });
    // The V8 heap of each, from its own metrics (prom-client's defaults): what of the growth is
    // JavaScript, and what is native (ZeroMQ's connections, malloc).
    const [balancerUrl, ...serverUrls] = stack.metricsUrls;
    const heaps = async () => {
      const [b, s] = await Promise.all([scrapeAll([balancerUrl!]), scrapeAll(serverUrls)]);
      return {
        balancerHeap: total(b, "zmqchat_balancer_nodejs_heap_size_total_bytes"),
        balancerHeapUsed: total(b, "zmqchat_balancer_nodejs_heap_size_used_bytes"),
        serversHeap: total(s, "zmqchat_server_nodejs_heap_size_total_bytes"),
        serversHeapUsed: total(s, "zmqchat_server_nodejs_heap_size_used_bytes"),
      };
    };
    let connected = 0;
    const at: Array<
      { clients: number; balancer: number; servers: number } & Awaited<ReturnType<typeof heaps>>
    > = [];
    for (const step of s.scaleSteps) {
      const more = step - connected;
      const each = Math.ceil(more / helpers.length);
      await Promise.all(
        helpers.map((h, i) =>
          h.call("connect", {
            endpoint: stack.endpoint,
            prefix: `i${run}-${i}`,
            count: Math.max(0, Math.min(each, more - i * each)),
            concurrency: 50,
          }),
        ),
      );
      connected = step;
      await sleep(settleMs(ctx));
      at.push({ clients: step, ...rss(), ...(await heaps()) });
      ctx.log(
        `  ${step} idle clients: balancer ${(at.at(-1)!.balancer / MiB).toFixed(1)} MiB, servers ${(at.at(-1)!.servers / MiB).toFixed(1)} MiB`,
      );
    }
    const w = "scale, idle logged-in clients";
    for (const a of at) {
      ctx.results.add(`scale.balancer.${a.clients}`, a.balancer / MiB, {
        workload: w,
        label: `balancer RSS with ${a.clients} clients`,
        unit: "MiB",
        better: "lower",
      });
      ctx.results.add(`scale.servers.${a.clients}`, a.servers / MiB, {
        workload: w,
        label: `2 servers' RSS (sum) with ${a.clients} clients`,
        unit: "MiB",
        better: "lower",
      });
    }
    const first = at[0]!;
    const last = at.at(-1)!;
    const n = last.clients - first.clients;
    if (n > 0) {
      const label = `from ${first.clients} to ${last.clients} clients`;
      ctx.results.add("scale.perClient.balancer", (last.balancer - first.balancer) / n / 1024, {
        workload: w,
        label: `balancer memory per client, ${label}`,
        unit: "KiB",
        better: "lower",
        baseline: "scale.raw.perClient",
      });
      const perClient = (k: keyof (typeof at)[number]) => (last[k] - first[k]) / n / 1024;
      // The V8 heap grows in steps of whole pages and spaces (hundreds of KiB): over --quick's
      // 50 clients a split would say nothing, so only the full sizes report it.
      const split = (who: "balancer" | "servers") => {
        if (ctx.quick) return;
        const heap = perClient(`${who}Heap`);
        const used = perClient(`${who}HeapUsed`);
        ctx.results.add(`scale.perClient.${who}.jsHeap`, heap, {
          workload: w,
          label: "  of which the V8 heap (JavaScript; its size, as the OS holds it)",
          unit: "KiB",
          better: "lower",
          note: `in use (live objects and garbage not yet collected): ${used.toFixed(1)} KiB a client`,
        });
        ctx.results.add(`scale.perClient.${who}.native`, perClient(who) - heap, {
          workload: w,
          label:
            who === "balancer"
              ? "  of which native (ZeroMQ's connection of each client, malloc): RSS less the V8 heap"
              : "  of which native (ZeroMQ's subscription tries, SQLite, malloc): RSS less the V8 heap",
          unit: "KiB",
          better: "lower",
          // ZeroMQ alone with the balancer's sockets and batches (not measured by --quick).
          ...(who === "balancer" ? { baseline: "scale.raw.perClient.smallBatch" } : {}),
        });
      };
      split("balancer");
      ctx.results.add("scale.perClient.servers", (last.servers - first.servers) / n / 1024, {
        workload: w,
        label: `servers' memory per client, ${label}`,
        unit: "KiB",
        better: "lower",
      });
      split("servers");
      ctx.results.add(
        "scale.perClient.serverSide",
        (last.balancer + last.servers - first.balancer - first.servers) / n / 1024,
        {
          workload: w,
          label: `server side (balancer + servers) per client, ${label}`,
          unit: "KiB",
          better: "lower",
          baseline: "scale.raw.perClient",
        },
      );
    }
  } finally {
    await Promise.all(helpers.map((h) => h.stop()));
    await stack.stop();
  }
}
