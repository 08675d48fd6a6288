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

/** How many points before each copy are checked for earlier copies beyond those read. */
const CANDIDATES = 3;

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
): Promise<Map<string, Placement>> {
  // One attempt each: the appends wait for this, and without it they go out without predecessors.
  const res = await ctx.http.query(predecessorStatements(ctx, copies).join("; "));
  return placePredecessors(ctx, copies, racingNs, res);
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
): Promise<Map<string, Placement>> {
  const byOwner = byOwnerOf(copies);
  const owners = [...byOwner.keys()];
  const limits = owners.map((o) => LOOK_BACK + byOwner.get(o)!.length);
  const mailbox = ctx.m(M.mailbox);
  const fetched = owners.map((_, i) => {
    const out: Row[] = [];
    for (const s of res[i] ?? [])
      for (const r of rows(s)) if (typeof r.id === "string") out.push({ ts: timeOf(r), id: r.id });
    return out.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  });
  const partial = owners.flatMap((owner, i) => (fetched[i]!.length >= limits[i]! ? [{ owner, i }] : []));
  // The rows whose status matters: each copy and the few before it (where its predecessor is).
  const candidates = new Map<number, string[]>();
  for (const { owner, i } of partial) {
    const at = new Map(fetched[i]!.map((r, k) => [r.ts, k]));
    const ids = new Set<string>();
    for (const c of byOwner.get(owner)!) {
      const k = at.get(c.ts);
      if (k === undefined) continue;
      for (let j = Math.max(0, k - CANDIDATES); j <= k; j++) ids.add(fetched[i]![j]!.id);
    }
    candidates.set(i, [...ids]);
  }
  const before = new Map<number, { rows: Row[]; checked: Set<string> | null }>();
  if (partial.length > 0) {
    const earlier = await ctx.http.query(
      partial
        .map(({ owner, i }) => {
          const oldest = fetched[i]![0]!.ts;
          const from = oldest - racingNs;
          return `SELECT "id" FROM ${mailbox} WHERE "owner" = ${str(owner)} AND ${idFilter(candidates.get(i)!)}time >= ${nanos(from > 0n ? from : 0n)} AND time < ${nanos(oldest)}`;
        })
        .join("; "),
    );
    partial.forEach(({ i }, k) => {
      const out: Row[] = [];
      for (const s of earlier[k] ?? [])
        for (const r of rows(s)) if (typeof r.id === "string") out.push({ ts: timeOf(r), id: r.id });
      const ids = candidates.get(i)!;
      before.set(i, { rows: out, checked: idFilter(ids) === "" ? null : new Set(ids) });
    });
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
  // Every stamp of each id among the points read, earliest first.
  const stamps = new Map<string, bigint[]>();
  for (const q of [...before, ...rows]) stamps.set(q.id, [...(stamps.get(q.id) ?? []), q.ts]);
  for (const list of stamps.values()) list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
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
