import { ZmqchatError } from "../../../core/errors.js";
import type { StoredItem } from "../store.js";
import { isoOf } from "./clock.js";
import { type InfluxContext, M } from "./context.js";
import { rows, timeOf } from "./http.js";
import { nanos, str } from "./influxql.js";
import { RawNumber } from "./raw-json.js";
import type { Watermarks } from "./watermarks.js";

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
  /** Mean envelope length of the pages read so far (a moving average), to size bounded pages. */
  private meanChars = 256;

  constructor(
    private readonly ctx: InfluxContext,
    /** The lowest timestamp of a local batch still being written (group-commit.ts). */
    private readonly inflightMin: () => bigint | null,
    /** Lane watermarks, which often tell sooner than the window that a position is safe. */
    private readonly watermarks: Watermarks | null = null,
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
    // A page bounded in characters needs only about that many characters' worth of rows: asking
    // InfluxDB for `limit` rows of ~700-character envelopes when the reply takes 512 KiB read,
    // sent and parsed some six times what a sync page returns (recovery read 1,700 items/s).
    const rowsFor = Number.isFinite(maxChars) ? Math.ceil((1.25 * maxChars) / this.meanChars) + 1 : limit;
    const fetch = Math.max(1, Math.min(limit, rowsFor));
    for (;;) {
      const page = await this.readOnce(owner, after, limit === 0 ? 0 : fetch, maxChars);
      // A page of nothing but second copies says nothing: read on past them.
      if (page.items.length > 0 || !page.more || page.skippedTo === null) return page;
      after = page.skippedTo.toString();
    }
  }

  /** Resolves once every point stamped up to `ts` is visible: the window passed it, or the watermarks did. */
  private async visible(ts: bigint): Promise<void> {
    if (this.watermarks) await this.watermarks.waitVisible(ts);
    else await this.ctx.window.waitPast(ts);
  }

  private async readOnce(
    owner: string,
    after: string | null,
    limit: number,
    maxChars: number,
  ): Promise<{ items: StoredItem[]; more: boolean; skippedTo: bigint | null }> {
    // A local batch may finish while the query runs: take its floor from before and after.
    const floorBefore = this.inflightMin();
    const first = await this.page(owner, after, null, limit + 1);
    if (first.rows.length === 0 || limit === 0)
      return { items: [], more: first.rows.length > 0, skippedTo: null };

    // The last position this page may hand out: never at or past a local write still in flight,
    // and never one younger than the safety window until the window has passed, then re-read,
    // so that a point another server stamped earlier but committed later is not jumped over.
    let boundary = (first.rows[Math.min(limit, first.rows.length) - 1] as PageRow).ts;
    for (const floor of [floorBefore, this.inflightMin()]) {
      if (floor !== null && floor <= boundary) boundary = floor - 1n;
    }
    let page: PageRow[];
    let earlier = first.earlier;
    if (!this.ctx.window.settled(boundary)) {
      await this.visible(boundary);
      const floor = this.inflightMin();
      if (floor !== null && floor <= boundary) boundary = floor - 1n;
      const again = await this.page(owner, after, boundary, limit + 1);
      page = again.rows;
      earlier = again.earlier;
      const floorAfter = this.inflightMin();
      if (floorAfter !== null && floorAfter <= boundary) {
        boundary = floorAfter - 1n;
        page = page.filter((r) => r.ts <= boundary);
      }
    } else {
      page = first.rows.filter((r) => r.ts <= boundary);
    }
    const more = page.length > limit || first.rows.some((r) => r.ts > boundary);
    // Two servers that took a resend at the moment its first copy was being written both store
    // it; the first copy is the one, and the second lies at most racingCopiesNs after it: in
    // this page, or among the ids just before the cursor (`earlier`).
    const seen = new Set<string>(earlier);
    const items: StoredItem[] = [];
    let chars = 0;
    let trimmed = false;
    let skippedTo: bigint | null = null;
    for (const r of page.slice(0, limit)) {
      if (seen.has(r.id)) {
        skippedTo = r.ts;
        continue;
      }
      if (items.length > 0 && chars + r.envelope.length > maxChars) {
        trimmed = true;
        break;
      }
      seen.add(r.id);
      chars += r.envelope.length;
      this.meanChars += (r.envelope.length - this.meanChars) / 64;
      items.push({ cursor: r.ts.toString(), serverTime: isoOf(r.ts), envelope: r.envelope });
    }
    return { items, more: more || trimmed, skippedTo };
  }

  async size(owner: string): Promise<number> {
    const res = await this.ctx.query(
      `SELECT count("id") AS "n" FROM ${this.ctx.m(M.mailbox)} WHERE "owner" = ${str(owner)}`,
      "count a mailbox",
    );
    const n = res[0]?.[0] ? rows(res[0][0])[0]?.n : undefined;
    return n instanceof RawNumber ? Number(n.text) : typeof n === "number" ? n : 0;
  }

  /** A page of the mailbox after `after`, with the ids stored just before `after` (see readOnce). */
  private async page(
    owner: string,
    after: string | null,
    upTo: bigint | null,
    limit: number,
  ): Promise<{ rows: PageRow[]; earlier: Set<string> }> {
    const mailbox = this.ctx.m(M.mailbox);
    const conds = [`"owner" = ${str(owner)}`];
    if (after !== null) conds.push(`time > ${nanos(after)}`);
    if (upTo !== null) conds.push(`time <= ${nanos(upTo)}`);
    const statements = [
      `SELECT "id", "envelope" FROM ${mailbox} WHERE ${conds.join(" AND ")} ORDER BY time ASC LIMIT ${limit}`,
    ];
    if (after !== null) {
      const from = BigInt(after) - this.ctx.window.racingNs;
      statements.push(
        `SELECT "id" FROM ${mailbox} WHERE "owner" = ${str(owner)} AND time > ${nanos(from > 0n ? from : 0n)} AND time <= ${nanos(after)}`,
      );
    }
    const res = await this.ctx.query(statements.join("; "), "read a mailbox");
    const out: PageRow[] = [];
    for (const s of res[0] ?? []) {
      for (const r of rows(s)) {
        if (typeof r.id === "string" && typeof r.envelope === "string")
          out.push({ ts: timeOf(r), id: r.id, envelope: r.envelope });
      }
    }
    const earlier = new Set<string>();
    for (const s of res[1] ?? []) for (const r of rows(s)) if (typeof r.id === "string") earlier.add(r.id);
    return { rows: out, earlier };
  }
}
