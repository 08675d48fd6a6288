import { randomBytes } from "node:crypto";
import { Point } from "@influxdata/influxdb-client";
import { ZmqchatError } from "../../../core/errors.js";
import { LANES, LaneClock, nowNs } from "./clock.js";
import { type InfluxContext, M } from "./context.js";
import { rows, type Series, timeOf } from "./http.js";
import { nanos, str } from "./influxql.js";

/**
 * A timestamp lane (clock.ts) leased from the database, first-claim-wins: write a mark for a
 * lane no live process holds, wait out the safety window, and keep the lane if this holder's
 * marks on it started earliest among the live ones. Renewed every lease/5 in the background;
 * released (an `alive=false` mark) on close.
 */
export class LaneLease {
  /** The clock stamping this process's points; null until the first lease. */
  clock: LaneClock | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly leaseNs: bigint;

  constructor(
    private readonly ctx: InfluxContext,
    private readonly leaseMs: number,
    readonly holder: string = randomBytes(8).toString("hex"),
  ) {
    this.leaseNs = BigInt(leaseMs) * 1_000_000n;
  }

  /** Leases a lane and starts renewing it; `stillWanted` says whether a lost lane must be replaced. */
  async lease(stillWanted: () => boolean = () => true): Promise<void> {
    const inUse = new Set((await this.holders(null)).keys());
    for (let attempt = 0; attempt < 20; attempt++) {
      const free = Array.from({ length: LANES }, (_, i) => i).filter((l) => !inUse.has(l));
      const lane =
        free.length > 0 ? free[Math.floor(Math.random() * free.length)]! : Math.floor(Math.random() * LANES);
      const ts = await this.mark(lane, true);
      await this.ctx.window.waitPast(ts);
      if ((await this.owner(lane)) === this.holder) {
        // One more window before the first stamp: a process that has not seen this lane's mark
        // yet (it was not visible for up to W) has stamped nothing it must wait for since
        // (watermarks.ts counts only the holders it sees).
        if (!this.clock) await this.ctx.window.waitPast(ts + this.ctx.window.ns);
        if (this.clock) this.clock.lane = lane;
        else this.clock = new LaneClock(lane);
        this.renewEvery(lane, stillWanted);
        return;
      }
      inUse.add(lane);
    }
    throw new ZmqchatError("unavailable", `${this.ctx.where}: could not lease a timestamp lane`);
  }

  /** Stops renewing and hands the lane back at once rather than at the end of the lease; best effort. */
  async release(): Promise<void> {
    this.stop();
    if (!this.clock) return;
    const line = this.line(this.clock.lane, false, nowNs());
    await this.ctx.http.write(line).catch(() => {});
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private renewEvery(lane: number, stillWanted: () => boolean): void {
    this.stop();
    this.timer = setInterval(
      () => {
        void (async () => {
          try {
            await this.mark(lane, true);
            if ((await this.owner(lane)) !== this.holder && stillWanted()) {
              // Out of touch for longer than the lease: someone may have taken the lane. Move.
              await this.lease(stillWanted);
            }
          } catch {
            // InfluxDB is away: the next renewal tries again; writes report their own errors.
          }
        })();
      },
      Math.max(1000, Math.floor(this.leaseMs / 5)),
    );
    this.timer.unref();
  }

  private line(lane: number, alive: boolean, ts: bigint): string {
    // A lane mark needs no lane: its series (lane, holder) is this process's own.
    return new Point(M.lanes)
      .tag("lane", String(lane))
      .tag("holder", this.holder)
      .booleanField("alive", alive)
      .timestamp(ts.toString())
      .toLineProtocol()!;
  }

  private async mark(lane: number, alive: boolean): Promise<bigint> {
    const ts = nowNs();
    await this.ctx.write([this.line(lane, alive, ts)], "lease a timestamp lane");
    return ts;
  }

  /** The holder whose live marks on `lane` started earliest within the lease. */
  private async owner(lane: number): Promise<string | null> {
    const holders = (await this.holders(lane)).get(lane) ?? [];
    let best: { holder: string; since: bigint } | null = null;
    for (const h of holders) {
      if (!best || h.since < best.since || (h.since === best.since && h.holder < best.holder)) best = h;
    }
    return best?.holder ?? null;
  }

  /** Holders per lane with a mark within the lease whose latest mark is not a release. */
  async holders(lane: number | null): Promise<Map<number, { holder: string; since: bigint }[]>> {
    const res = await this.ctx.query(this.holdersStatement(lane), "read timestamp lanes");
    return this.parseHolders(res[0] ?? []);
  }

  /** The InfluxQL that reads lane marks within the lease (of one lane, or of all). */
  holdersStatement(lane: number | null = null): string {
    const which = lane === null ? "" : `"lane" = ${str(String(lane))} AND `;
    return `SELECT "alive" FROM ${this.ctx.m(M.lanes)} WHERE ${which}time > ${nanos(nowNs() - this.leaseNs)} GROUP BY "lane", "holder"`;
  }

  /** Live holders per lane from the answer to {@link holdersStatement}. */
  parseHolders(series: Series[]): Map<number, { holder: string; since: bigint }[]> {
    const out = new Map<number, { holder: string; since: bigint }[]>();
    for (const s of series) {
      const rs = rows(s);
      const first = rs[0];
      const holder = s.tags.holder;
      const l = Number(s.tags.lane);
      if (!first || holder === undefined || !Number.isInteger(l) || rs.at(-1)?.alive !== true) continue;
      const list = out.get(l) ?? [];
      list.push({ holder, since: timeOf(first) });
      out.set(l, list);
    }
    return out;
  }
}
