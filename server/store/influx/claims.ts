import { randomBytes } from "node:crypto";
import { Point } from "@influxdata/influxdb-client";
import { ZmqchatError } from "../../../core/errors.js";
import { nowNs } from "./clock.js";
import { type InfluxContext, M } from "./context.js";
import { rows, type Series, timeOf } from "./http.js";
import { ident, nanos, str } from "./influxql.js";

export interface Claim {
  id: string;
  ts: bigint;
  fields: Record<string, unknown>;
}

/** How long before its expiry a one-time token may have been claimed first (challenges live 30 s). */
const ONE_TIME_HORIZON_MS = 3600_000;

/**
 * First-claim-wins without compare-and-set. A claim is a point in its own series (tagged with a
 * random claim id, so nothing overwrites it) stamped by the lane clock; once the safety window
 * has passed a claim, every earlier claim is visible, so every server that reads the claims then
 * names the same winner: the earliest (time, claim id). A claim whose write took more than half
 * the window is withdrawn (a `void` point) and tried again, so a slow write cannot win a name
 * after another server already decided without seeing it.
 */
export class Claims {
  constructor(
    private readonly ctx: InfluxContext,
    private readonly stamp: () => bigint,
  ) {}

  /** Claims `name` in `measurement` (fields written by `build`); resolves with the settled winner. */
  async claim(
    measurement: string,
    name: string,
    fields: string[],
    build: (p: Point) => Point,
  ): Promise<{ created: boolean; winner: Claim }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = (await this.claimsOf(measurement, [name], fields)).get(name)?.[0];
      if (before && this.ctx.window.settled(before.ts)) return { created: false, winner: before };
      const id = randomBytes(8).toString("hex");
      const ts = this.stamp();
      const point = build(
        new Point(measurement).tag("name", name).tag("claim", id).booleanField("void", false),
      );
      await this.ctx.write([point.timestamp(ts.toString()).toLineProtocol()!], `claim the name ${name}`);
      if (this.ctx.window.late(ts)) {
        // The write took so long that another server may already have decided without seeing
        // it: withdraw this claim and try again with a fresh timestamp.
        await this.withdraw(measurement, name, id);
        continue;
      }
      await this.ctx.window.waitPast(ts);
      const winner = (await this.claimsOf(measurement, [name], fields)).get(name)?.[0];
      if (!winner)
        throw new ZmqchatError(
          "unavailable",
          `${this.ctx.where}: a claim on ${name} was written but cannot be read back`,
        );
      return { created: winner.id === id, winner };
    }
    throw new ZmqchatError(
      "unavailable",
      `${this.ctx.where} is too slow to decide who owns ${name}; try again`,
    );
  }

  /** Withdraws a claim: a `void` point in the claim's own series. */
  async withdraw(measurement: string, name: string, id: string): Promise<void> {
    const voided = new Point(measurement).tag("name", name).tag("claim", id).booleanField("void", true);
    await this.ctx.write(
      [voided.timestamp(this.stamp().toString()).toLineProtocol()!],
      `withdraw a claim on ${name}`,
    );
  }

  /** The settled winning claim of each name (claims younger than the safety window do not count yet). */
  async winners(measurement: string, names: string[] | null, fields: string[]): Promise<Map<string, Claim>> {
    const all = await this.claimsOf(measurement, names, fields);
    const out = new Map<string, Claim>();
    for (const [name, claims] of all) {
      const first = claims[0];
      if (first && this.ctx.window.settled(first.ts)) out.set(name, first);
    }
    return out;
  }

  /** Live (not withdrawn) claims per name, earliest first. */
  async claimsOf(
    measurement: string,
    names: string[] | null,
    fields: string[],
  ): Promise<Map<string, Claim[]>> {
    const res = await this.ctx.query(this.statement(measurement, names, fields), "read claims");
    return parseClaims(res[0] ?? []);
  }

  /** The InfluxQL that reads claims (several can share one request, see records.ts). */
  statement(measurement: string, names: string[] | null, fields: string[]): string {
    const filter = names ? `WHERE ${names.map((n) => `"name" = ${str(n)}`).join(" OR ")} ` : "";
    const cols = [...fields, "void"].map(ident).join(", ");
    return `SELECT ${cols} FROM ${this.ctx.m(measurement)} ${filter}GROUP BY "name", "claim"`;
  }

  /**
   * First-claim-wins for a one-time token (a login challenge), as for names: every claim is a
   * point with a cluster-unique timestamp (lane clock) in one series; after the safety window,
   * the earliest point for the token names the one holder that may use it. A claim whose write
   * took too long loses (it may be the earliest, yet unseen by a server that already decided):
   * at most one caller ever wins, and a slow one is refused rather than doubled.
   */
  async claimOnce(token: string, expires: number): Promise<boolean> {
    const holder = randomBytes(8).toString("hex");
    const ts = this.stamp();
    const point = new Point(M.usedTokens)
      .stringField("token", token)
      .stringField("holder", holder)
      .intField("expires", Math.floor(expires));
    await this.ctx.write([point.timestamp(ts.toString()).toLineProtocol()!], "use a login challenge");
    if (this.ctx.window.late(ts)) return false;
    await this.ctx.window.waitPast(ts);
    const since = nowNs(Math.floor(expires) - ONE_TIME_HORIZON_MS);
    const res = await this.ctx.query(
      `SELECT "holder" FROM ${this.ctx.m(M.usedTokens)} WHERE "token" = ${str(token)} AND time >= ${nanos(since)} ORDER BY time ASC LIMIT 1`,
      "read a login challenge's use",
    );
    const first = res[0]?.[0] ? rows(res[0][0])[0] : undefined;
    return first?.holder === holder;
  }
}

/** Live (not withdrawn) claims per name from a `GROUP BY "name", "claim"` answer, earliest first. */
export function parseClaims(series: Series[]): Map<string, Claim[]> {
  const out = new Map<string, Claim[]>();
  for (const s of series) {
    const name = s.tags.name;
    const id = s.tags.claim;
    if (name === undefined || id === undefined) continue;
    const rs = rows(s);
    if (rs.some((r) => r.void === true)) continue;
    const claimRow = rs.find((r) => r.void === false);
    if (!claimRow) continue;
    const list = out.get(name) ?? [];
    list.push({ id, ts: timeOf(claimRow), fields: claimRow });
    out.set(name, list);
  }
  for (const list of out.values())
    list.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : 1));
  return out;
}
