import { setTimeout as delay } from "node:timers/promises";
import { Point } from "@influxdata/influxdb-client";
import { nowNs } from "./clock.js";
import { type InfluxContext, M } from "./context.js";
import { rows, type Series } from "./http.js";
import { nanos } from "./influxql.js";
import type { LaneLease } from "./lane-lease.js";

const HOUR_NS = 3600n * 1_000_000_000n;

/** How often waiters ask for the other processes' watermarks. */
const POLL_MS = 20;

/**
 * Lane watermarks: a faster way than waiting out the safety window to know that every mailbox
 * point stamped up to some time is visible. Each process publishes, after each group commit and
 * `everyMs` after its latest one, a stamp below which every point it stamped is acknowledged (so visible), and
 * above which every point it stamps later lies: while no write of its own is in flight, a stamp
 * of its own lane clock; while a batch is being written, one below that batch's lowest stamp
 * (batches are written one at a time, so every point stamped before it is acknowledged). So a
 * busy process, too, lets the others settle copies they stamped before its batch. Once every other live lane holder's watermark has
 * passed a time, nothing stamped before it can land any more, and predecessors can be told.
 *
 * A watermark is one point per holder and hour (field `wm`, overwritten in place), so the
 * measurement stays small. Assumes an acknowledged write is visible to every later query: true
 * of a single InfluxDB node and of Enterprise with `consistency=all`; with any other write
 * consistency the store does not use watermarks and waits out the window.
 */
export class Watermarks {
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private waiting: Waiter[] = [];
  private polling = false;
  /** The latest watermark sent (see line). */
  private lastWm = -1n;
  /** Publishing pauses after a failed write, whose points may still land (until then + timeout + W). */
  private quietUntil = 0;

  constructor(
    private readonly ctx: InfluxContext,
    private readonly lanes: LaneLease,
    /** `aheadMs`: how far ahead of its clock an idle process's watermark lies (see publishIdle). */
    private readonly opts: { everyMs: number; quietMs: number; aheadMs?: number },
    /** The lowest stamp of this process's mailbox points being written, or null when none is in flight. */
    private readonly inflightMin: () => bigint | null,
  ) {}

  /**
   * Publishes every `everyMs` after the latest watermark, whatever published it: a busy process
   * publishes after each group commit anyway, and a timer of its own on top doubled its
   * watermark writes without making any watermark fresher than `everyMs` at worst.
   */
  start(): void {
    this.stop();
    this.started = true;
    this.arm();
  }

  stop(): void {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (!this.started) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.publishIdle(), this.opts.everyMs);
    this.timer.unref();
  }

  /** A write of this process failed: its points may land late, so say nothing for a while. */
  failed(): void {
    this.quietUntil = Date.now() + this.opts.quietMs;
  }

  /**
   * Publishes a watermark now: a fresh stamp when no write of this process is in flight, else
   * one below `inflightMin`, the lowest stamp of the batch being written.
   */
  publish(inflightMin: bigint | null = null): void {
    const line = this.line(inflightMin);
    // Best effort: a watermark that is lost or lands late only makes others wait the window.
    if (line !== null) this.ctx.http.write(line).catch(() => {});
  }

  /**
   * The timer's watermark, `everyMs` after the latest one. With no write of its own in flight, a
   * process promises `aheadMs` ahead of its clock: its lane clock runs on from there, so nothing
   * it stamps later lies below (its next copies are stamped up to `aheadMs` late). Another
   * process waiting for its copies to settle then finds them passed at its first look, instead
   * of waiting for the idle one's next watermark: in the 1:1 benchmark, where one server takes
   * every append and the other is idle, the acknowledgement waited up to `everyMs` plus a poll
   * on that. Kept below W/5 (options): a later copy of a racing resend then still lies less than
   * 1.5 W + W/5 after its first (mailbox-read.ts drops it within 2 W + 100 ms), and a lane that
   * is released and leased again is stamped only 2 W after the new mark (lane-lease.ts).
   */
  private publishIdle(): void {
    const inflightMin = this.inflightMin();
    const line = this.line(inflightMin, inflightMin === null ? (this.opts.aheadMs ?? 0) : 0);
    if (line !== null) this.ctx.http.write(line).catch(() => {});
  }

  /**
   * The watermark of a batch about to be written, as a line for that batch's first write to
   * carry (it counts as a publish): one below `inflightMin`, the batch's lowest stamp. Saves the
   * write of its own that a busy process made after each group commit. Null when quiet (after a
   * failed write) or not started.
   */
  carried(inflightMin: bigint): string | null {
    if (!this.started) return null;
    return this.line(inflightMin);
  }

  private line(inflightMin: bigint | null, aheadMs = 0): string | null {
    this.arm();
    const clock = this.lanes.clock;
    if (!clock || Date.now() < this.quietUntil) return null;
    const wm = inflightMin !== null ? inflightMin - 1n : aheadMs > 0 ? clock.ahead(aheadMs) : clock.next();
    // The same watermark again (the timer, while one batch's writes take longer than everyMs)
    // tells nobody anything new: not written again.
    if (wm < 0n || wm === this.lastWm) return null;
    this.lastWm = wm;
    const hour = (wm / HOUR_NS) * HOUR_NS;
    return new Point(M.watermarks)
      .tag("holder", this.lanes.holder)
      .stringField("wm", wm.toString())
      .timestamp(hour.toString())
      .toLineProtocol()!;
  }

  /**
   * Resolves once every mailbox point stamped up to `ts` is visible: by the watermarks, or the
   * window. `then` (InfluxQL statements, reads that need those points visible) rides along in
   * each floor request, after the floor's own statements (InfluxDB 1.x runs a request's
   * statements in order): their answers come back when the request that ran them showed `ts`
   * visible, which saves the caller a round trip; null when the caller must run them itself.
   */
  waitVisible(ts: bigint, then: string[] = []): Promise<Series[][] | null> {
    if (this.ctx.window.settled(ts)) return Promise.resolve(null);
    return new Promise((done) => {
      this.waiting.push({ ts, then, done });
      this.poll();
    });
  }

  /** One poller for every waiter: reads the floor, wakes those it (or the window) passed. */
  private poll(): void {
    if (this.polling) return;
    this.polling = true;
    void (async () => {
      try {
        while (this.waiting.length > 0) {
          const asked = this.waiting;
          this.waiting = [];
          // Waiters the window settled before the request went out can use what it read too.
          const settledBefore = asked.map((w) => this.ctx.window.settled(w.ts));
          let floor: bigint | null = -1n;
          let answers: Series[][] | null = null;
          try {
            ({ floor, answers } = await this.floorWith(asked.flatMap((w) => w.then)));
          } catch {
            // InfluxDB did not answer: the window still settles them.
          }
          const still: Waiter[] = [];
          let at = 0;
          asked.forEach((w, i) => {
            const own =
              answers && answers.length >= at + w.then.length ? answers.slice(at, at + w.then.length) : null;
            at += w.then.length;
            if (floor === null || w.ts <= floor || settledBefore[i]) w.done(own);
            else if (this.ctx.window.settled(w.ts)) w.done(null);
            else still.push(w);
          });
          // Waiters that came while the request was out wait for the next one.
          this.waiting = [...still, ...this.waiting];
          if (still.length > 0) await delay(POLL_MS);
        }
      } finally {
        this.polling = false;
      }
    })();
  }

  /**
   * The lowest watermark among the other live lane holders: every mailbox point stamped at or
   * before it is visible. Null when no other process holds a lane; -1n while this process is
   * quiet after a failed write (nothing can be said then).
   */
  async floor(): Promise<bigint | null> {
    return (await this.floorWith([])).floor;
  }

  /** {@link floor}, with `then` run in the same request after it; their answers (null when quiet). */
  private async floorWith(then: string[]): Promise<{ floor: bigint | null; answers: Series[][] | null }> {
    if (Date.now() < this.quietUntil) return { floor: -1n, answers: null };
    const hour = (nowNs() / HOUR_NS) * HOUR_NS;
    // One attempt, not retried: the window settles the waiters anyway.
    const res = await this.ctx.http.query(
      [
        this.lanes.holdersStatement(),
        `SELECT "wm" FROM ${this.ctx.m(M.watermarks)} WHERE time >= ${nanos(hour - HOUR_NS)} GROUP BY "holder"`,
        ...then,
      ].join("; "),
    );
    const marks = new Map<string, bigint>();
    for (const s of res[1] ?? []) {
      const holder = s.tags.holder;
      if (holder === undefined) continue;
      for (const r of rows(s)) {
        if (typeof r.wm !== "string" || !/^[0-9]{1,19}$/.test(r.wm)) continue;
        const wm = BigInt(r.wm);
        if (wm > (marks.get(holder) ?? -1n)) marks.set(holder, wm);
      }
    }
    let floor: bigint | null = null;
    for (const holders of this.lanes.parseHolders(res[0] ?? []).values()) {
      for (const { holder } of holders) {
        if (holder === this.lanes.holder) continue;
        const wm = marks.get(holder) ?? -1n;
        if (floor === null || wm < floor) floor = wm;
      }
    }
    if (Date.now() < this.quietUntil) return { floor: -1n, answers: null };
    return { floor, answers: res.slice(2) };
  }
}

interface Waiter {
  ts: bigint;
  /** Statements to run after the floor (see waitVisible). */
  then: string[];
  done: (answers: Series[][] | null) => void;
}
