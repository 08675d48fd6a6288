import { createHash } from "node:crypto";
import { Point } from "@influxdata/influxdb-client";
import { uuidv7Time } from "../../../core/protocol/ids.js";
import { type InfluxContext, M } from "./context.js";
import { rows, timeOf } from "./http.js";
import { ident, nanos, str } from "./influxql.js";
import { indexLine } from "./line.js";
import { RawNumber } from "./raw-json.js";

/** How far before now a message id's time may lie and still be looked up in the index. */
const INDEX_PAST_MS = 30 * 60_000;
/** How far after now (a client clock ahead) a message id's time may lie and still be indexed. */
const INDEX_FUTURE_MS = 3600_000;
/** Clock skew allowed between a client's UUIDv7 and the server (as in group-commit.ts). */
const SKEW_MS = 3600_000;
/** Slots at most this far apart are read with one range statement. */
const RANGE_GAP_NS = 1_000_000_000n;
/** Statements per lookup request. */
const STATEMENTS_PER_QUERY = 400;

/** What the index says about one (owner, id). */
export type IndexAnswer =
  /** A copy is stored at this mailbox timestamp (read back from the mailbox). */
  | { found: bigint }
  /** No copy is stored. */
  | "absent"
  /** The index cannot tell (another id took the slot, or it points at nothing readable): scan. */
  | "unknown";

/**
 * The message id index: a point per mailbox copy in `msg_ids` (tag `owner`, fields `id` and `at`,
 * the copy's mailbox timestamp) whose own timestamp is derived from the id alone: the id's
 * UUIDv7 milliseconds × 10^6 plus SHA-256(id) mod 10^6. So a resend's lookup is one exact-time
 * read per id instead of a scan of an hour of both mailboxes, whatever their size.
 *
 * Exactness: the index points of a batch are written, and acknowledged, before its mailbox
 * points, so a copy that exists has its index point; an index point whose copy cannot be read
 * (the mailbox write failed after it) counts as absent. Two ids on one slot overwrite each other
 * (InfluxDB keeps the last point of a series and time): the id field tells, and such an id, as
 * one whose time lies outside [now - 30 min, now + 1 h] (a skewed clock, an old resend, or a
 * hostile id: kept out of the index so no point lands beyond a retention policy), is looked up
 * by the scan as before. So is an id made before the index was complete (see start).
 */
export class IdIndex {
  /**
   * Ids made before this (ms) may have copies that a server without the index stored (before an
   * upgrade): they are looked up by the scan. Null until start(): nothing is indexed.
   */
  private since: number | null = null;

  constructor(private readonly ctx: InfluxContext) {}

  /**
   * Reads since when every copy has its index point (measurement `id_index`, field `since`, the
   * lowest wins): 0 for a database whose mailboxes were empty when the first server with the
   * index started, else that start plus an hour (the clock skew a resend's id may have, as in
   * group-commit.ts). Writes it again at each start, so retention does not drop it.
   */
  async start(now: number = Date.now()): Promise<void> {
    const res = await this.ctx.query(
      `SELECT min("since") AS "since" FROM ${this.ctx.m(M.idIndex)}; SHOW MEASUREMENTS WITH MEASUREMENT = ${ident(M.mailbox)}`,
      "read since when message ids are indexed",
    );
    const known = res[0]?.[0] ? rows(res[0][0])[0]?.since : undefined;
    let since: number;
    if (known instanceof RawNumber) since = Number(known.text);
    else if (typeof known === "number") since = known;
    // No mailbox measurement (in any retention policy; series metadata only, however big the
    // database): no copy without an index point can exist.
    else since = (res[1] ?? []).length === 0 ? 0 : now + SKEW_MS;
    const point = new Point(M.idIndex).intField("since", since).timestamp(`${now}000000`);
    await this.ctx.write([point.toLineProtocol()!], "record since when message ids are indexed");
    this.since = since;
  }

  /** The index timestamp of `id`, or null when the id is not indexed (see the class comment). */
  slot(id: string, now: number = Date.now()): bigint | null {
    const ms = uuidv7Time(id);
    if (this.since === null || !Number.isFinite(ms) || ms < this.since) return null;
    if (ms < now - INDEX_PAST_MS || ms > now + INDEX_FUTURE_MS) return null;
    const h = createHash("sha256").update(id).digest().readUInt32BE(0) % 1_000_000;
    return BigInt(ms) * 1_000_000n + BigInt(h);
  }

  /** The index point of one new copy (null when the id is not indexed). */
  line(owner: string, id: string, ts: bigint, slot: bigint | null): string | null {
    if (slot === null) return null;
    return indexLine(owner, id, ts, slot);
  }

  /**
   * Looks up every (owner, id) of `ids` (with their slots) in `owners`' mailboxes; keyed by
   * owner, NUL, id. One request reads the slots; a second one (only for a resend) reads the
   * mailbox at each found copy's timestamp, to be sure it is there.
   */
  async lookup(owners: string[], ids: Map<string, bigint>): Promise<Map<string, IndexAnswer>> {
    const out = new Map<string, IndexAnswer>();
    const ownerFilter = owners.map((o) => `"owner" = ${str(o)}`).join(" OR ");
    const hits: Array<{ owner: string; id: string; at: bigint }> = [];
    for (const [id] of ids) for (const owner of owners) out.set(`${owner}\u0000${id}`, "absent");
    // Slots close together share one range read (ids of one batch are usually made within a second).
    const sorted = [...ids].sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    const ranges: Array<{ from: bigint; to: bigint; ids: Map<string, bigint> }> = [];
    for (const [id, slot] of sorted) {
      const last = ranges[ranges.length - 1];
      if (last && slot - last.to <= RANGE_GAP_NS) {
        last.to = slot;
        last.ids.set(id, slot);
      } else ranges.push({ from: slot, to: slot, ids: new Map([[id, slot]]) });
    }
    for (let i = 0; i < ranges.length; i += STATEMENTS_PER_QUERY) {
      const part = ranges.slice(i, i + STATEMENTS_PER_QUERY);
      const res = await this.ctx.http.query(
        part
          .map(
            (r) =>
              `SELECT "id", "at" FROM ${this.ctx.m(M.msgIds)} WHERE (${ownerFilter}) AND time >= ${nanos(r.from)} AND time <= ${nanos(r.to)} GROUP BY "owner"`,
          )
          .join("; "),
      );
      part.forEach((range, k) => {
        const bySlot = new Map<bigint, string>();
        for (const [id, slot] of range.ids) bySlot.set(slot, id);
        for (const s of res[k] ?? []) {
          const owner = s.tags.owner;
          if (owner === undefined) continue;
          for (const r of rows(s)) {
            const id = bySlot.get(timeOf(r));
            if (id === undefined) continue;
            const key = `${owner}\u0000${id}`;
            if (r.id !== id || typeof r.at !== "string" || !/^[1-9][0-9]{0,18}$/.test(r.at)) {
              out.set(key, "unknown");
              continue;
            }
            hits.push({ owner, id, at: BigInt(r.at) });
          }
        }
      });
    }
    if (hits.length === 0) return out;
    const mailbox = this.ctx.m(M.mailbox);
    for (let i = 0; i < hits.length; i += STATEMENTS_PER_QUERY) {
      const part = hits.slice(i, i + STATEMENTS_PER_QUERY);
      const res = await this.ctx.http.query(
        part
          .map((h) => `SELECT "id" FROM ${mailbox} WHERE "owner" = ${str(h.owner)} AND time = ${nanos(h.at)}`)
          .join("; "),
      );
      part.forEach((h, k) => {
        const key = `${h.owner}\u0000${h.id}`;
        const stored = (res[k] ?? []).flatMap((s) => rows(s));
        if (stored.length === 0) return; // the copy's write failed after its index point: absent
        const r = stored[0]!;
        out.set(key, r.id === h.id && timeOf(r) === h.at ? { found: h.at } : "unknown");
      });
    }
    return out;
  }
}
