/**
 * Nanosecond timestamps that are unique per mailbox across every server process.
 *
 * InfluxDB keeps one point per series and timestamp: a second point with the same time silently
 * replaces the first. A timestamp here is
 *
 *     wall-clock milliseconds × 1e6  +  sequence (0..999) × 1000  +  lane (0..999)
 *
 * The sequence makes the clock strictly increasing within a process (up to 1,000 stamps per
 * millisecond; beyond that, and when the wall clock steps back, the clock runs ahead on its own
 * milliseconds); the lane, which each process leases from the database at start-up (see
 * lane-lease.ts), keeps two processes from ever producing the same number.
 */
export const LANES = 1000;
const SEQ_PER_MS = 1000;

export class LaneClock {
  private lastMs = 0;
  private seq = 0;

  constructor(
    public lane: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(lane) || lane < 0 || lane >= LANES)
      throw new RangeError(`lane ${lane} out of range`);
  }

  next(): bigint {
    const ms = this.now();
    if (ms > this.lastMs) {
      this.lastMs = ms;
      this.seq = 0;
    } else if (++this.seq >= SEQ_PER_MS) {
      this.lastMs += 1;
      this.seq = 0;
    }
    return BigInt(this.lastMs) * 1_000_000n + BigInt(this.seq * LANES + this.lane);
  }

  /**
   * Makes every later stamp lie above `ts`, a stamp this process read (another server's, maybe
   * taken ahead of its clock: watermarks.ts). A record that "the latest wins" is then stamped
   * above the version its writer read, as in a Lamport clock, so a change made after another one
   * (a client's next request, on another server) never sorts below it. Never further than
   * `maxAheadMs` past this process's wall clock: a stamp from a server whose clock is far off
   * must not carry this one's mailbox stamps along (they may lie only that far ahead).
   */
  observe(ts: bigint, maxAheadMs: number): void {
    if (ts < 0n) return;
    let ms = Number(ts / 1_000_000n);
    let seq = Number((ts % 1_000_000n) / 1000n);
    const capMs = this.now() + Math.max(0, maxAheadMs);
    if (ms > capMs) {
      ms = capMs;
      seq = 0;
    }
    if (ms > this.lastMs || (ms === this.lastMs && seq > this.seq)) {
      this.lastMs = ms;
      this.seq = seq;
    }
  }

  /**
   * A stamp `ms` ahead of the wall clock (or the next one, when the clock already runs further
   * ahead), which every later stamp lies above: the clock runs on from it. For a watermark that
   * promises now what this process will not stamp below (watermarks.ts).
   */
  ahead(ms: number): bigint {
    const target = this.now() + ms;
    if (target <= this.lastMs) return this.next();
    this.lastMs = target;
    this.seq = 0;
    return BigInt(this.lastMs) * 1_000_000n + BigInt(this.lane);
  }
}

/** The wall clock in nanoseconds (millisecond resolution is all the safety window needs). */
export function nowNs(now: number = Date.now()): bigint {
  return BigInt(now) * 1_000_000n;
}

/** ISO time of a nanosecond timestamp, for StoredItem.serverTime. */
export function isoOf(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}
