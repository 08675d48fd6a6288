import { ZmqchatError } from "../../../core/errors.js";
import type { StoredItem } from "../store.js";
import { isoOf } from "./clock.js";
import { type InfluxContext, M } from "./context.js";
import { rows, timeOf } from "./http.js";
import { nanos, str } from "./influxql.js";
import { RawNumber } from "./raw-json.js";

interface PageRow {
  ts: bigint;
  id: string;
  envelope: string;
}

/**
 * Mailbox reads under the safety window: a page never hands out a position at or past a local
 * write still in flight, nor one younger than the window until the window has passed it (then
 * the range is read again), so a point another server stamped earlier but committed later is
 * never jumped over (docs/influx-schema.md, "Exactly once, in order").
 */
export class MailboxReader {
  constructor(
    private readonly ctx: InfluxContext,
    /** The lowest timestamp of a local batch still being written (group-commit.ts). */
    private readonly inflightMin: () => bigint | null,
  ) {}

  async read(
    owner: string,
    after: string | null,
    limit: number,
    maxChars = Number.POSITIVE_INFINITY,
  ): Promise<{ items: StoredItem[]; more: boolean }> {
    if (after !== null && !/^(0|[1-9][0-9]{0,18})$/.test(after))
      throw new ZmqchatError("bad_request", `bad cursor ${JSON.stringify(after)}`);
    if (!Number.isInteger(limit) || limit < 0)
      throw new ZmqchatError("bad_request", `bad page size ${limit}`);
    // A local batch may finish while the query runs: take its floor from before and after.
    const floorBefore = this.inflightMin();
    const first = await this.page(owner, after, null, limit + 1);
    if (first.length === 0 || limit === 0) return { items: [], more: first.length > 0 };

    // The last position this page may hand out: never at or past a local write still in flight,
    // and never one younger than the safety window until the window has passed, then re-read,
    // so that a point another server stamped earlier but committed later is not jumped over.
    let boundary = (first[Math.min(limit, first.length) - 1] as PageRow).ts;
    for (const floor of [floorBefore, this.inflightMin()]) {
      if (floor !== null && floor <= boundary) boundary = floor - 1n;
    }
    let page: PageRow[];
    if (!this.ctx.window.settled(boundary)) {
      await this.ctx.window.waitPast(boundary);
      const floor = this.inflightMin();
      if (floor !== null && floor <= boundary) boundary = floor - 1n;
      page = await this.page(owner, after, boundary, limit + 1);
      const floorAfter = this.inflightMin();
      if (floorAfter !== null && floorAfter <= boundary) {
        boundary = floorAfter - 1n;
        page = page.filter((r) => r.ts <= boundary);
      }
    } else {
      page = first.filter((r) => r.ts <= boundary);
    }
    const more = page.length > limit || first.some((r) => r.ts > boundary);
    const seen = new Set<string>();
    const items: StoredItem[] = [];
    let chars = 0;
    let trimmed = false;
    for (const r of page.slice(0, limit)) {
      // A second copy of an id can exist only after a race between servers; the first copy is the one.
      if (seen.has(r.id)) continue;
      if (items.length > 0 && chars + r.envelope.length > maxChars) {
        trimmed = true;
        break;
      }
      seen.add(r.id);
      chars += r.envelope.length;
      items.push({ cursor: r.ts.toString(), serverTime: isoOf(r.ts), envelope: r.envelope });
    }
    return { items, more: more || trimmed };
  }

  async size(owner: string): Promise<number> {
    const res = await this.ctx.query(
      `SELECT count("id") AS "n" FROM ${this.ctx.m(M.mailbox)} WHERE "owner" = ${str(owner)}`,
      "count a mailbox",
    );
    const n = res[0]?.[0] ? rows(res[0][0])[0]?.n : undefined;
    return n instanceof RawNumber ? Number(n.text) : typeof n === "number" ? n : 0;
  }

  private async page(
    owner: string,
    after: string | null,
    upTo: bigint | null,
    limit: number,
  ): Promise<PageRow[]> {
    const conds = [`"owner" = ${str(owner)}`];
    if (after !== null) conds.push(`time > ${nanos(after)}`);
    if (upTo !== null) conds.push(`time <= ${nanos(upTo)}`);
    const res = await this.ctx.query(
      `SELECT "id", "envelope" FROM ${this.ctx.m(M.mailbox)} WHERE ${conds.join(" AND ")} ORDER BY time ASC LIMIT ${limit}`,
      "read a mailbox",
    );
    const out: PageRow[] = [];
    for (const s of res[0] ?? []) {
      for (const r of rows(s)) {
        if (typeof r.id === "string" && typeof r.envelope === "string")
          out.push({ ts: timeOf(r), id: r.id, envelope: r.envelope });
      }
    }
    return out;
  }
}
