import { type InfluxContext, M } from "./context.js";
import { rows, type Series, timeOf } from "./http.js";
import { nanos, str } from "./influxql.js";

/** One mailbox copy just written (or found already stored). */
export interface Copy {
  owner: string;
  id: string;
  ts: bigint;
}

/** Where a copy sits for readers: its own place, or the first copy's when it is a second copy. */
export interface Placement {
  ts: bigint;
  /** The position before it that readers see; null: the first; undefined: cannot tell (the client syncs). */
  prev: bigint | null | undefined;
  /** True when an earlier copy of the id was found: `ts` is that copy's. */
  second: boolean;
}

/** Points read before the newest copy of a mailbox, oldest first. */
export interface Row {
  ts: bigint;
  id: string;
}

/** How many points before a mailbox's newest copy are read to find predecessors. */
const LOOK_BACK = 64;

/**
 * Each copy's predecessor in its mailbox as readers see it (mailbox-read.ts drops a copy whose
 * id came up at most `racingNs` before it). Only meaningful once every point stamped before the
 * copies is visible (watermarks.ts): then nothing can land in between any more. One request
 * reads the points just before each mailbox's newest copy; when those do not reach the start of
 * the mailbox, a second one looks for earlier copies of their ids just before them.
 */
export async function readPredecessors(
  ctx: InfluxContext,
  copies: Copy[],
  racingNs: bigint,
  settled?: SettledRows,
): Promise<Map<string, Placement>> {
  // One attempt each: the appends wait for this, and without it they go out without predecessors.
  const res = await ctx.http.query(predecessorStatements(ctx, copies).join("; "));
  return placePredecessors(ctx, copies, racingNs, res, settled);
}

function byOwnerOf(copies: Copy[]): Map<string, Copy[]> {
  const byOwner = new Map<string, Copy[]>();
  for (const c of copies) {
    const list = byOwner.get(c.owner);
    if (list) list.push(c);
    else byOwner.set(c.owner, [c]);
  }
  return byOwner;
}

/**
 * The first request of {@link readPredecessors}: one statement per mailbox, reading the points
 * just before its newest copy. Watermarks.waitVisible can run them in the same request as the
 * floor that shows those points visible (they run after it), saving a round trip.
 */
export function predecessorStatements(ctx: InfluxContext, copies: Copy[]): string[] {
  const mailbox = ctx.m(M.mailbox);
  return [...byOwnerOf(copies)].map(
    ([owner, own]) =>
      `SELECT "id" FROM ${mailbox} WHERE "owner" = ${str(owner)} AND time <= ${nanos(newestOf(own))} ORDER BY time DESC LIMIT ${LOOK_BACK + own.length}`,
  );
}

/**
 * The rest of {@link readPredecessors}, given the answers to {@link predecessorStatements}
 * (read once every point stamped up to the newest copy is visible): the second request when
 * needed, and each copy's placement.
 */
export async function placePredecessors(
  ctx: InfluxContext,
  copies: Copy[],
  racingNs: bigint,
  res: Series[][],
  /** What earlier batches read of these mailboxes (see SettledRows); none: read it all. */
  settled?: SettledRows,
): Promise<Map<string, Placement>> {
  const byOwner = byOwnerOf(copies);
  const owners = [...byOwner.keys()];
  const limits = owners.map((o) => LOOK_BACK + byOwner.get(o)!.length);
  const mailbox = ctx.m(M.mailbox);
  const fetched = owners.map((_, i) => {
    const out: Row[] = [];
    for (const s of res[i] ?? [])
      for (const r of rows(s)) if (typeof r.id === "string") out.push({ ts: timeOf(r), id: r.id });
    return out.sort(byTime);
  });
  const partial = owners.flatMap((owner, i) => (fetched[i]!.length >= limits[i]! ? [{ owner, i }] : []));
  const before = new Map<number, { rows: Row[]; checked: Set<string> | null }>();
  if (partial.length > 0) {
    // Each mailbox's points in the racing window before the oldest row read: from what earlier
    // batches read of it (settled ranges do not change), and only the rest from InfluxDB. That
    // rest is read whole, unfiltered: an id filter costs InfluxDB more than answering every point.
    const reads: Array<{ i: number; q: string }> = [];
    for (const { owner, i } of partial) {
      const oldest = fetched[i]![0]!.ts;
      const from = oldest - racingNs > 0n ? oldest - racingNs : 0n;
      const known = settled?.cover(owner, from, oldest) ?? { rows: [], rest: from };
      before.set(i, { rows: known.rows, checked: null });
      if (known.rest !== null)
        reads.push({
          i,
          q: `SELECT "id" FROM ${mailbox} WHERE "owner" = ${str(owner)} AND time >= ${nanos(known.rest)} AND time < ${nanos(oldest)}`,
        });
    }
    if (reads.length > 0) {
      const earlier = await ctx.http.query(reads.map((r) => r.q).join("; "));
      reads.forEach(({ i }, k) => {
        const out = before.get(i)!.rows;
        for (const s of earlier[k] ?? [])
          for (const r of rows(s)) if (typeof r.id === "string") out.push({ ts: timeOf(r), id: r.id });
      });
    }
    for (const { owner, i } of partial) {
      const oldest = fetched[i]![0]!.ts;
      const from = oldest - racingNs > 0n ? oldest - racingNs : 0n;
      before.get(i)!.rows.sort(byTime);
      settled?.add(owner, from, newestOf(byOwner.get(owner)!), [...before.get(i)!.rows, ...fetched[i]!]);
    }
  }
  for (const [i, owner] of owners.entries()) {
    if (fetched[i]!.length < limits[i]!) settled?.add(owner, 0n, newestOf(byOwner.get(owner)!), fetched[i]!);
  }
  const out = new Map<string, Placement>();
  owners.forEach((owner, i) => {
    const complete = fetched[i]!.length < limits[i]!;
    const earlier = before.get(i) ?? { rows: [], checked: null };
    const placements = placeAmong(
      fetched[i]!,
      complete,
      earlier.rows,
      earlier.checked,
      byOwner.get(owner)!,
      racingNs,
    );
    for (const [ts, p] of placements) out.set(`${owner}\u0000${ts}`, p);
  });
  return out;
}

/** Most ids a query filters on; past that, matching them costs InfluxDB more than answering all. */
const MAX_ID_FILTER = 32;

/**
 * `("id" = … OR …) AND ` for a few ids (InfluxDB still scans the range, but answers only those),
 * nothing for many.
 */
export function idFilter(ids: string[]): string {
  const distinct = [...new Set(ids)];
  if (distinct.length > MAX_ID_FILTER) return "";
  return `(${distinct.map((id) => `"id" = ${str(id)}`).join(" OR ")}) AND `;
}

/** The latest stamp among copies (bigints: Math.max does not take them). */
export function newestOf(copies: Copy[]): bigint {
  let newest = 0n;
  for (const c of copies) if (c.ts > newest) newest = c.ts;
  return newest;
}

/**
 * The pure part of {@link readPredecessors}: `rows` are the points up to the newest copy, oldest
 * first, `complete` when they reach the start of the mailbox; `before` holds the earlier copies
 * (within `racingNs` before the oldest row) of the ids in `checked` (null: of every row's id).
 * Keyed by each copy's own `ts`.
 */
export function placeAmong(
  rows: Row[],
  complete: boolean,
  before: Row[],
  checked: Set<string> | null,
  copies: Copy[],
  racingNs: bigint,
): Map<bigint, Placement> {
  const index = new Map(rows.map((r, i) => [r.ts, i]));
  const oldest = rows[0]?.ts ?? 0n;
  // Every stamp of each id among the points read, earliest first (built without copying: with
  // the settled range some 1,000 rows a mailbox at 1,000 messages a second, nearly all one each).
  const stamps = new Map<string, bigint[]>();
  for (const list of [before, rows])
    for (const q of list) {
      const seen = stamps.get(q.id);
      if (seen) seen.push(q.ts);
      else stamps.set(q.id, [q.ts]);
    }
  for (const list of stamps.values()) if (list.length > 1) list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const firsts = new Map<number, bigint | null | undefined>();
  /**
   * The earliest stamp of row i's id within racingNs before it; null: row i is a first copy;
   * undefined: cannot tell (its earlier copies, if any, were not read).
   */
  const firstOf = (i: number): bigint | null | undefined => {
    if (firsts.has(i)) return firsts.get(i);
    const r = rows[i]!;
    const from = r.ts - racingNs;
    let first: bigint | null | undefined = stamps.get(r.id)!.find((ts) => ts >= from && ts < r.ts) ?? null;
    if (first === null && !complete && from < oldest && checked !== null && !checked.has(r.id))
      first = undefined;
    firsts.set(i, first);
    return first;
  };
  const prevOf = (i: number): bigint | null | undefined => {
    for (let k = i - 1; k >= 0; k--) {
      const first = firstOf(k);
      if (first === undefined) return undefined;
      if (first === null) return rows[k]!.ts;
    }
    return complete ? null : undefined;
  };
  const out = new Map<bigint, Placement>();
  for (const c of copies) {
    const i = index.get(c.ts);
    const first = i === undefined ? undefined : firstOf(i);
    if (i === undefined || first === undefined) {
      out.set(c.ts, { ts: c.ts, prev: undefined, second: false });
    } else if (first === null) {
      out.set(c.ts, { ts: c.ts, prev: prevOf(i), second: false });
    } else {
      const at = index.get(first);
      out.set(c.ts, { ts: first, prev: at === undefined ? undefined : prevOf(at), second: true });
    }
  }
  return out;
}

/**
 * Mailbox points already read over ranges that were settled when read (every point stamped up
 * to the range's end was visible then: the watermarks or the window had passed it), so they can
 * no longer change: no point can land inside such a range any more. One contiguous range per
 * mailbox, the latest, trimmed to `keepNs` before its end; at most `maxMailboxes` mailboxes
 * (the least recently used go). So each batch reads from InfluxDB only what landed since the
 * previous batch of the mailbox, instead of the whole racing window (some 1,100 points at
 * 1,000 messages a second, read for every batch).
 */
export class SettledRows {
  private readonly spans = new Map<string, { from: bigint; to: bigint; rows: Row[] }>();

  constructor(
    private readonly keepNs: bigint,
    private readonly maxMailboxes = 1024,
  ) {}

  /**
   * The known rows of `owner` in [from, to), oldest first, and where the unknown rest of that
   * range starts (null: nothing of it is unknown). Only a range that starts inside the known one
   * is served from it.
   */
  cover(owner: string, from: bigint, to: bigint): { rows: Row[]; rest: bigint | null } {
    const span = this.spans.get(owner);
    if (!span || span.from > from || span.to < from) return { rows: [], rest: from };
    this.spans.delete(owner);
    this.spans.set(owner, span);
    const rows = span.rows.slice(firstAtOrAfter(span.rows, from), firstAtOrAfter(span.rows, to));
    return { rows, rest: span.to + 1n < to ? span.to + 1n : null };
  }

  /**
   * Records every point of `owner` in [from, to] (inclusive), as read once that range was
   * settled; `rows` oldest first.
   */
  add(owner: string, from: bigint, to: bigint, rows: Row[]): void {
    const span = this.spans.get(owner);
    let next: { from: bigint; to: bigint; rows: Row[] };
    if (span && span.from <= to + 1n && from <= span.to + 1n) {
      // Both ranges are complete: their union is, and each holds every point of its own range.
      const head = from < span.from ? rows.slice(0, firstAtOrAfter(rows, span.from)) : [];
      const tail = to > span.to ? rows.slice(firstAtOrAfter(rows, span.to + 1n)) : [];
      next = {
        from: from < span.from ? from : span.from,
        to: to > span.to ? to : span.to,
        rows: head.length === 0 && tail.length === 0 ? span.rows : [...head, ...span.rows, ...tail],
      };
    } else if (span && span.to > to) {
      return;
    } else {
      next = { from, to, rows };
    }
    const keepFrom = next.to - this.keepNs;
    if (next.from < keepFrom) {
      next.from = keepFrom;
      next.rows = next.rows.slice(firstAtOrAfter(next.rows, keepFrom));
    }
    this.spans.delete(owner);
    this.spans.set(owner, next);
    if (this.spans.size > this.maxMailboxes) {
      const lru = this.spans.keys().next().value;
      if (lru !== undefined) this.spans.delete(lru);
    }
  }
}

function byTime(a: Row, b: Row): number {
  return a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0;
}

/** The index of the first row at or after `ts` in rows sorted oldest first. */
function firstAtOrAfter(rows: Row[], ts: bigint): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rows[mid]!.ts < ts) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
