import { setTimeout as delay } from "node:timers/promises";
import { nowNs } from "./clock.js";

/**
 * The safety window W: how long after its timestamp a point is assumed visible to every reader
 * (write latency plus clock skew between servers). Claims are decided, and mailbox positions
 * handed out, only once W has passed them (docs/influx-schema.md).
 */
export class SafetyWindow {
  readonly ns: bigint;

  constructor(readonly ms: number) {
    this.ns = BigInt(Math.ceil(ms)) * 1_000_000n;
  }

  /** W has passed `ts`: every point stamped at or before it is visible. */
  settled(ts: bigint): boolean {
    return ts + this.ns <= nowNs();
  }

  /** More than half of W passed since `ts`: a claim written this late may lose (see claims.ts). */
  late(ts: bigint): boolean {
    return nowNs() > ts + this.ns / 2n;
  }

  /** Resolves once W has passed `ts`. */
  async waitPast(ts: bigint): Promise<void> {
    for (;;) {
      const left = ts + this.ns - nowNs();
      if (left < 0n) return;
      await delay(Number(left / 1_000_000n) + 1);
    }
  }
}
