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

  /**
   * How far apart two copies of one id can lie when two servers stored a resend racing its first
   * copy: a batch is stamped within W/2 after a lookup that saw every copy stamped more than W
   * before the lookup began (group-commit.ts), so 1.5 W, and W/5 more when the server's clock
   * runs ahead after an idle watermark (watermarks.ts); 2 W and 100 ms leave a margin for the
   * time between lookup and stamping. Readers drop a copy of an id seen that close before it.
   */
  get racingNs(): bigint {
    return 2n * this.ns + 100_000_000n;
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
