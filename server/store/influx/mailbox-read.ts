import { ZmqchatError } from "../../../core/errors.js";
import type { StoredItem } from "../store.js";
import { isoOf } from "./clock.js";
import { type InfluxContext, M } from "./context.js";
import { rows, timeOf } from "./http.js";
import { nanos, str } from "./influxql.js";
import { RawNumber } from "./raw-json.js";
import type { Watermarks } from "./watermarks.js";

/** Most pages read ahead and kept at once (see MailboxReader.read). */
const AHEAD_MAX = 8;
/** A page read ahead is served only this long after it was asked for; then it is read afresh. */
const AHEAD_TTL_MS = 2000;

type Page = { items: StoredItem[]; more: boolean };

interface PageRow {
  ts: bigint;
  id: string;
  envelope: string;
}

/**
 * Every point of a mailbox (second copies included) within the racing window up to `upTo`, the
 * last position a page handed out: what the next page's read would ask InfluxDB for again as
 * the ids "just before the cursor" (see readOnce).
 */
interface Tail {
  upTo: bigint;
  rows: Array<{ ts: bigint; id: string }>;
}

/** A page as read, with the tail that the page after it may use (see Tail). */
type ReadPage = Page & { tail: Tail | null };

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
    /** Read the next page ahead when a page says there is more (see read). */
    private readonly readAhead = false,
  ) {}

  /** Pages being read ahead, by owner, cursor, limit and size bound (see read). */
  private readonly ahead = new Map<
    string,
    { at: number; tail: Tail | null; page: Promise<ReadPage | null> }
  >();

  /**
   * A page of the mailbox after `after`. With `readAhead`, a page that says there is more has
   * the next one read at once, in the background, and a request for exactly that page (same
   * cursor, limit and bound) within AHEAD_TTL_MS gets it: a reader working through a backlog
   * (a fresh device's recovery) finds each page ready, InfluxDB's and this process's work on it
   * overlapping the client's on the one before. Such a page is as correct later as when read:
   * every position it hands out was settled (visible, nothing can land before it any more), and
   * it says there is more, so the reader asks on. Only one that says so is served.
   */
  async read(
    owner: string,
    after: string | null,
    limit: number,
    maxChars = Number.POSITIVE_INFINITY,
  ): Promise<Page> {
    if (after !== null && !/^(0|[1-9][0-9]{0,18})$/.test(after))
      throw new ZmqchatError("bad_request", `bad cursor ${JSON.stringify(after)}`);
    if (!Number.isInteger(limit) || limit < 0)
      throw new ZmqchatError("bad_request", `bad page size ${limit}`);
    const key = `${owner}\u0000${after}\u0000${limit}\u0000${maxChars}`;
    const early = this.ahead.get(key);
    if (early) {
      this.ahead.delete(key);
      const page = Date.now() - early.at <= AHEAD_TTL_MS ? await early.page : null;
      if (page?.more && page.items.length > 0) {
        this.aheadOf(owner, page, limit, maxChars);
        return { items: page.items, more: page.more };
      }
    }
    // A page read ahead that said there was no more is read again, knowing what it knew.
    const page = await this.readFresh(owner, after, limit, maxChars, early?.tail ?? null);
    this.aheadOf(owner, page, limit, maxChars);
    return { items: page.items, more: page.more };
  }

  /** Starts reading the page after `page` when it says there is more (see read). */
  private aheadOf(owner: string, page: ReadPage, limit: number, maxChars: number): void {
    if (!this.readAhead || !page.more || page.items.length === 0) return;
    const after = page.items.at(-1)!.cursor;
    const key = `${owner}\u0000${after}\u0000${limit}\u0000${maxChars}`;
    if (this.ahead.has(key)) return;
    if (this.ahead.size >= AHEAD_MAX) {
      const oldest = this.ahead.keys().next().value;
      if (oldest !== undefined) this.ahead.delete(oldest);
    }
    // A failed read ahead is forgotten: the request reads afresh, and reports its own failure.
    this.ahead.set(key, {
      at: Date.now(),
      tail: page.tail,
      page: this.readFresh(owner, after, limit, maxChars, page.tail).catch(() => null),
    });
  }

  /** `tail`: what the page before this one knows of the points just before `after` (see Tail). */
  private async readFresh(
    owner: string,
    after: string | null,
    limit: number,
    maxChars: number,
    tail: Tail | null,
  ): Promise<ReadPage> {
    // A page bounded in characters needs only about that many characters' worth of rows: asking
    // InfluxDB for `limit` rows of ~700-character envelopes when the reply takes 512 KiB read,
    // sent and parsed some six times what a sync page returns (recovery read 1,700 items/s).
    // As many as the mean says fit, not a quarter more: the rows past the bound are read, sent
    // and parsed for nothing (and read again for the next page), and envelopes of one mailbox
    // vary little in length, so the page is cut a few rows short or ends a few rows early.
    const rowsFor = Number.isFinite(maxChars) ? Math.ceil(maxChars / this.meanChars) + 1 : limit;
    const fetch = Math.max(1, Math.min(limit, rowsFor));
    for (;;) {
      const page = await this.readOnce(owner, after, limit === 0 ? 0 : fetch, maxChars, tail);
      // A page of nothing but second copies says nothing: read on past them.
      if (page.items.length > 0 || !page.more || page.skippedTo === null) return page;
      after = page.skippedTo.toString();
      tail = null;
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
    tail: Tail | null,
  ): Promise<ReadPage & { skippedTo: bigint | null }> {
    // The ids just before the cursor are known when the page before this one read them.
    const known = after !== null && tail !== null && tail.upTo === BigInt(after) ? tail.rows : null;
    // A local batch may finish while the query runs: take its floor from before and after.
    const floorBefore = this.inflightMin();
    const first = await this.page(owner, after, null, limit + 1, known);
    if (first.rows.length === 0 || limit === 0)
      return { items: [], more: first.rows.length > 0, skippedTo: null, tail: null };

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
      const again = await this.page(owner, after, boundary, limit + 1, known);
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
    const seen = new Set<string>();
    for (const r of earlier) seen.add(r.id);
    const items: StoredItem[] = [];
    let chars = 0;
    let trimmed = false;
    let skippedTo: bigint | null = null;
    let used = 0;
    for (const r of page.slice(0, limit)) {
      if (seen.has(r.id)) {
        skippedTo = r.ts;
        used++;
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
      used++;
    }
    // Every point up to the last item handed out, within the racing window before it: from the
    // ids before the cursor and this page's rows (all of them up to that item, second copies too).
    let next: Tail | null = null;
    const last = items.at(-1);
    if (last !== undefined) {
      const upTo = BigInt(last.cursor);
      const from = upTo - this.ctx.window.racingNs;
      const rows: Tail["rows"] = [];
      for (const r of earlier) if (r.ts > from) rows.push(r);
      for (const r of page.slice(0, used)) if (r.ts > from && r.ts <= upTo) rows.push({ ts: r.ts, id: r.id });
      next = { upTo, rows };
    }
    return { items, more: more || trimmed, skippedTo, tail: next };
  }

  async size(owner: string): Promise<number> {
    const res = await this.ctx.query(
      `SELECT count("id") AS "n" FROM ${this.ctx.m(M.mailbox)} WHERE "owner" = ${str(owner)}`,
      "count a mailbox",
    );
    const n = res[0]?.[0] ? rows(res[0][0])[0]?.n : undefined;
    return n instanceof RawNumber ? Number(n.text) : typeof n === "number" ? n : 0;
  }

  /**
   * A page of the mailbox after `after`, with the points stored just before `after` (see
   * readOnce): read in the same request, unless `known` already holds them.
   */
  private async page(
    owner: string,
    after: string | null,
    upTo: bigint | null,
    limit: number,
    known: Tail["rows"] | null,
  ): Promise<{ rows: PageRow[]; earlier: Tail["rows"] }> {
    const mailbox = this.ctx.m(M.mailbox);
    const conds = [`"owner" = ${str(owner)}`];
    if (after !== null) conds.push(`time > ${nanos(after)}`);
    if (upTo !== null) conds.push(`time <= ${nanos(upTo)}`);
    const statements = [
      `SELECT "id", "envelope" FROM ${mailbox} WHERE ${conds.join(" AND ")} ORDER BY time ASC LIMIT ${limit}`,
    ];
    if (after !== null && known === null) {
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
    if (known !== null) return { rows: out, earlier: known };
    const earlier: Tail["rows"] = [];
    for (const s of res[1] ?? [])
      for (const r of rows(s)) if (typeof r.id === "string") earlier.push({ ts: timeOf(r), id: r.id });
    return { rows: out, earlier };
  }
}
