import type { BenchContext } from "../lib/context.js";
import type { Stack } from "../lib/stack.js";
import type { Peers, StoreKind } from "./chat.js";

interface SendResult {
  failures: string[];
  sent: Float64Array;
}

/**
 * Recovery: bob is offline while 1:1 messages (from alice) and group messages (from carol, in
 * a group with bob) pile up in his mailbox; then bob, on a new machine (a fresh cache, same
 * identity), runs one `sync`. Seeded once per store; each run recovers into a new cache.
 */
export class RecoveryBench {
  private total = 0;
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
      const started = Date.now();
      const [direct, grouped] = await Promise.all([
        peers.p1.call<SendResult>("sendBurst", {
          name: alice,
          target: { user: this.bob },
          tag: "rd",
          count: s.recoveryDirect,
          size: s.textBytes,
          concurrency: s.maxUnacked,
        }),
        peers.p3.call<SendResult>("sendBurst", {
          name: carol,
          target: { group },
          tag: "rg",
          count: s.recoveryGroup,
          size: s.textBytes,
          concurrency: s.maxUnacked,
        }),
      ]);
      for (const r of [direct, grouped]) {
        if (r.failures.length > 0)
          ctx.results.fail(
            `recovery seeding (${this.store}): ${r.failures.length} sends failed: ${r.failures.slice(0, 3).join("; ")}`,
          );
      }
      this.total = s.recoveryDirect + s.recoveryGroup;
      const secs = (Date.now() - started) / 1000;
      ctx.log(
        `  seeded ${this.total} messages for ${this.bob} (${this.store}) in ${secs.toFixed(1)} s (${Math.round(this.total / secs)} acked msg/s, 2 senders)`,
      );
    } finally {
      await peers.p1.call("close", { names: [alice] });
      await peers.p3.call("close", { names: [carol] });
    }
  }

  async recover(): Promise<void> {
    const { ctx, peers, stack } = this;
    const r = await peers.p2.call<{
      ms: number;
      messages: number;
      verified: number;
      problems: number;
      duplicates: number;
    }>("recover", { name: this.bob, home: this.home, endpoint: stack.endpoint, cacheDir: ctx.tmp });
    const what = `recovery (${this.store})`;
    if (r.messages < this.total)
      ctx.results.fail(`${what}: ${this.total - r.messages} of ${this.total} messages lost`);
    if (r.duplicates > 0) ctx.results.fail(`${what}: ${r.duplicates} messages duplicated`);
    if (r.problems > 0) ctx.results.fail(`${what}: ${r.problems} messages did not verify`);
    const w = `recovery, ${this.store}`;
    const id = `recovery.${this.store}`;
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
  }
}
