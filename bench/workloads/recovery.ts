import type { BenchContext } from "../lib/context.js";
import type { Stack } from "../lib/stack.js";
import type { Peers, StoreKind } from "./chat.js";

interface SendResult {
  failures: string[];
  sent: Float64Array;
  issued: number;
}

/** Seeding stops starting new sends after this long, so a slow store cannot hold the bench for hours. */
const SEED_BUDGET_MS = { full: 6 * 60_000, quick: 60_000 };

/**
 * Recovery: bob is offline while 1:1 messages (from alice) and group messages (from carol, in
 * a group with bob) pile up in his mailbox; then bob, on a new machine (a fresh cache, same
 * identity), runs one `sync`. Seeded once per store; each run recovers into a new cache.
 */
export class RecoveryBench {
  private total = 0;
  /** Whether seeding stored every message asked for (else the figures are for fewer). */
  seededAll = false;
  private readonly bob: string;

  constructor(
    private readonly ctx: BenchContext,
    private readonly stack: Stack,
    private readonly store: StoreKind,
    private readonly peers: Peers,
    private readonly home: string,
  ) {
    this.bob = `rbob-${store[0]}`;
  }

  async seed(): Promise<void> {
    const { ctx, peers, stack } = this;
    const s = ctx.sizes;
    const k = this.store[0];
    const alice = `ralice-${k}`;
    const carol = `rcarol-${k}`;
    const others = Array.from({ length: Math.max(0, s.recoveryGroupMembers - 2) }, (_, i) => `rm-${k}-${i}`);
    const group = `rgrp-${k}`;
    const open = (h: typeof peers.p1, name: string, live: boolean) =>
      h.call("open", { name, home: this.home, endpoint: stack.endpoint, live });
    // Registered once, then offline for the whole seeding.
    for (const n of [this.bob, ...others]) {
      await open(peers.p2, n, false);
      await peers.p2.call("close", { names: [n] });
    }
    await open(peers.p1, alice, false);
    await open(peers.p3, carol, false);
    try {
      await peers.p3.call("groupCreate", { name: carol, group, members: [this.bob, ...others] });
      await peers.p2.call("groupAccept", {
        names: [this.bob, ...others],
        group,
        home: this.home,
        endpoint: stack.endpoint,
      });
      const started = Date.now();
      const untilMs = started + (ctx.quick ? SEED_BUDGET_MS.quick : SEED_BUDGET_MS.full);
      const [direct, grouped] = await Promise.all([
        peers.p1.call<SendResult>("sendBurst", {
          name: alice,
          target: { user: this.bob },
          tag: "rd",
          count: s.recoveryDirect,
          size: s.textBytes,
          concurrency: s.maxUnacked,
          untilMs,
        }),
        peers.p3.call<SendResult>("sendBurst", {
          name: carol,
          target: { group },
          tag: "rg",
          count: s.recoveryGroup,
          size: s.textBytes,
          concurrency: s.maxUnacked,
          untilMs,
        }),
      ]);
      for (const r of [direct, grouped]) {
        if (r.failures.length > 0)
          ctx.results.fail(
            `recovery seeding (${this.store}): ${r.failures.length} sends failed: ${r.failures.slice(0, 3).join("; ")}`,
          );
      }
      // Failed sends were reported above; every acknowledged one must come back.
      this.total = direct.issued - direct.failures.length + grouped.issued - grouped.failures.length;
      const wanted = s.recoveryDirect + s.recoveryGroup;
      this.seededAll = this.total >= wanted;
      if (this.total < wanted) {
        const budget = (ctx.quick ? SEED_BUDGET_MS.quick : SEED_BUDGET_MS.full) / 1000;
        ctx.results.notes.push(
          `recovery (${this.store}): only ${this.total} of ${wanted} messages could be stored within the ${budget} s seeding budget (the store is too slow); its recovery figures are for ${this.total} messages`,
        );
      }
      const secs = (Date.now() - started) / 1000;
      ctx.log(
        `  seeded ${this.total} messages for ${this.bob} (${this.store}) in ${secs.toFixed(1)} s (${Math.round(this.total / secs)} acked msg/s, 2 senders)`,
      );
    } finally {
      await peers.p1.call("close", { names: [alice] });
      await peers.p3.call("close", { names: [carol] });
    }
  }

  /**
   * One recovery into a fresh cache: ChatClient.sync as the product runs it (pages read ahead,
   * opened on worker threads, one transaction per page).
   */
  async recover(): Promise<void> {
    const { ctx, peers, stack } = this;
    const r = await peers.p2.call<{
      ms: number;
      cpuMs?: number;
      mainCpuMs?: number;
      startedCpuMs?: number;
      otherCpuMs?: number;
      serviceCpuMs?: number;
      messages: number;
      verified: number;
      problems: number;
      duplicates: number;
      storedTwice?: number;
      error?: string;
    }>("recover", {
      name: this.bob,
      home: this.home,
      endpoint: stack.endpoint,
      cacheDir: ctx.tmp,
      servicePids: stack.pids,
    });
    const what = `recovery (${this.store})`;
    const w = `recovery, ${this.store}`;
    const id = `recovery.${this.store}`;
    if (r.error) {
      ctx.results.fail(
        `${what}: bob got ${r.messages} of ${this.total} messages, then sync failed: ${r.error}`,
      );
      ctx.results.unavailable(
        `${id}.seconds`,
        { workload: w, label: `sync of ${this.total} into a fresh cache`, unit: "s", better: "lower" },
        `sync failed after ${r.messages} messages: ${r.error}`,
      );
      return;
    }
    if (r.messages < this.total)
      ctx.results.fail(`${what}: ${this.total - r.messages} of ${this.total} messages lost`);
    if (r.duplicates > 0) ctx.results.fail(`${what}: ${r.duplicates} messages duplicated`);
    if (r.storedTwice)
      ctx.results.fail(
        `${what}: ${r.storedTwice} extra copies of messages in bob's mailbox (resends stored again; bob's cache hides them)`,
      );
    if (r.problems > 0) ctx.results.fail(`${what}: ${r.problems} messages did not verify`);
    ctx.results.add(`${id}.seconds`, r.ms / 1000, {
      workload: w,
      label: `sync of ${this.total} (1:1 + group) into a fresh cache`,
      unit: "s",
      better: "lower",
    });
    ctx.results.add(`${id}.msgs`, (r.verified * 1000) / r.ms, {
      workload: w,
      label: "stored, verified and decrypted",
      unit: "msg/s",
      better: "higher",
    });
    // CPU per message, which the load of a shared machine changes less than the seconds do.
    if (r.cpuMs !== undefined && r.messages > 0)
      ctx.results.add(`${id}.clientCpu`, (r.cpuMs * 1000) / r.messages, {
        workload: w,
        label: "client CPU per message (all threads)",
        unit: "µs/msg",
        better: "lower",
      });
    // Of which on the main thread (parsing, checking, writing the cache); the rest is mostly the opener's threads.
    if (r.mainCpuMs !== undefined && r.messages > 0)
      ctx.results.add(`${id}.clientMainCpu`, (r.mainCpuMs * 1000) / r.messages, {
        workload: w,
        label: "of which the client's main thread",
        unit: "µs/msg",
        better: "lower",
      });
    if (r.startedCpuMs !== undefined && r.messages > 0)
      ctx.results.add(`${id}.clientStartedCpu`, (r.startedCpuMs * 1000) / r.messages, {
        workload: w,
        label: "of which threads the sync started (opener, cache checkpoint)",
        unit: "µs/msg",
        better: "lower",
      });
    // V8's garbage collection and compiler helpers above all: what allocation per message costs besides the threads' own pauses.
    if (r.otherCpuMs !== undefined && r.messages > 0)
      ctx.results.add(`${id}.clientOtherCpu`, (r.otherCpuMs * 1000) / r.messages, {
        workload: w,
        label: "of which the process's other threads (V8 GC and compiler helpers, ZeroMQ I/O)",
        unit: "µs/msg",
        better: "lower",
      });
    if (r.serviceCpuMs !== undefined && r.messages > 0)
      ctx.results.add(`${id}.serviceCpu`, (r.serviceCpuMs * 1000) / r.messages, {
        workload: w,
        label: "balancer + servers CPU per message",
        unit: "µs/msg",
        better: "lower",
      });
  }
}
