import { setTimeout as delay } from "node:timers/promises";
import { uuidv7Time } from "../../../core/protocol/ids.js";
import {
  type AppendInput,
  type AppendResult,
  appendChars,
  envelopeFor,
  type Placement,
  type StoreMetrics,
} from "../store.js";
import { isoOf, nowNs } from "./clock.js";
import { type InfluxContext, M } from "./context.js";
import { rows, timeOf } from "./http.js";
import type { IdIndex } from "./id-index.js";
import { nanos, str } from "./influxql.js";
import { mailboxLine } from "./line.js";
import {
  type Copy,
  idFilter,
  newestOf,
  placePredecessors,
  predecessorStatements,
  readPredecessors,
  SettledRows,
} from "./predecessors.js";
import { retrying } from "./retry.js";
import type { Watermarks } from "./watermarks.js";

/** Clock skew allowed between a client's UUIDv7 and the server when looking for a resend's first copy. */
const ID_SKEW_MS = 3600_000;

/** How often a batch looks again for stored copies when the lookup was slower than W/2. */
const LOOKUPS = 5;

/** How often close() looks whether settling batches are done. */
const POLL_MS = 5;

export interface GroupCommitOptions {
  maxBatchPoints: number;
  maxBatchBytes: number;
  dedupeWindowMs: number;
  safetyWindowMs: number;
}

interface Pending {
  input: AppendInput;
  /** The appendMany call it came with: once one of its batches failed, the rest is not written. */
  request: { failure: { error: unknown } | null } | null;
  points: number;
  bytes: number;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

interface Plan {
  /** The new copies' index points (id-index.ts), written before the copies. */
  indexChunks: string[];
  /** Line protocol, cut into requests of at most maxBatchBytes. */
  chunks: string[];
  results: AppendResult[];
  /** Every copy of the batch, new or found stored, with its id. */
  copies: Copy[];
  madeAt: number;
}

/**
 * Group commit of mailbox appends: one batch in flight; appends that arrive meanwhile form the
 * next one (up to maxBatchPoints points and maxBatchBytes per request). A batch looks up copies
 * already stored (resends), stamps the new points, writes them and settles every append only
 * after InfluxDB answered.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private draining: Promise<void> | null = null;
  /** Lowest timestamp of the batch being written: local reads never pass it until the write ends. */
  private floor: bigint | null = null;
  /** Batches written whose appends wait until their copies' predecessors can be told. */
  private settling = 0;
  /** Receives batch sizes and failures. */
  metrics: StoreMetrics | null = null;
  /** Mailbox points the predecessors' reads already saw in settled ranges (predecessors.ts). */
  private readonly settledRows: SettledRows;

  constructor(
    private readonly ctx: InfluxContext,
    private readonly opts: GroupCommitOptions,
    private readonly stamp: () => bigint,
    /** Lane watermarks (watermarks.ts); without them copies come without predecessors. */
    private readonly watermarks: Watermarks | null = null,
    /** How far apart racing copies of one id can lie (mailbox-read.ts). */
    private readonly racingNs: bigint = 0n,
    /** The message id index (id-index.ts); without it every resend lookup scans the mailboxes. */
    private readonly index: IdIndex | null = null,
  ) {
    this.settledRows = new SettledRows(4n * racingNs);
  }

  /** True while a batch is being written (or retried). */
  get busy(): boolean {
    return this.draining !== null;
  }

  /** The lowest timestamp of a batch still being written (or retried), if any. */
  get inflightMin(): bigint | null {
    return this.floor;
  }

  append(input: AppendInput): Promise<AppendResult> {
    const result = new Promise<AppendResult>((resolve, reject) => this.enqueue(input, null, resolve, reject));
    this.drain();
    return result;
  }

  /**
   * Several appends queued at once, so they join one batch (unless they pass its size limits).
   * All or nothing for the caller: if any fails, it throws (what the others stored is harmless,
   * as a resend of the same ids finds it).
   */
  appendMany(inputs: readonly AppendInput[]): Promise<AppendResult[]> {
    // Cut into several batches (past the size limits), a request whose first batch failed must
    // not have its later ones stored: the caller resends it all, and the first batch's messages
    // would then land after the later ones'.
    const request: Pending["request"] = { failure: null };
    const results = Promise.all(
      inputs.map(
        (input) =>
          new Promise<AppendResult>((resolve, reject) => this.enqueue(input, request, resolve, reject)),
      ),
    );
    this.drain();
    return results;
  }

  private enqueue(
    input: AppendInput,
    request: Pending["request"],
    resolve: (r: AppendResult) => void,
    reject: (e: unknown) => void,
  ): void {
    const owners = new Set(input.owners).size;
    this.queue.push({
      input,
      request,
      points: owners,
      bytes: appendChars(input) * 3 + owners * 200,
      resolve,
      reject,
    });
  }

  /** Resolves when nothing is queued, in flight or settling. */
  async idle(): Promise<void> {
    while (this.draining || this.settling > 0) {
      if (this.draining) await this.draining;
      else await delay(POLL_MS);
    }
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = (async () => {
      await new Promise((r) => setImmediate(r));
      while (this.queue.length > 0) {
        const batch: Pending[] = [];
        for (const p of this.takeBatch()) {
          if (p.request?.failure) p.reject(p.request.failure.error);
          else batch.push(p);
        }
        if (batch.length > 0) await this.commit(batch);
      }
    })().finally(() => {
      this.draining = null;
      if (this.queue.length > 0) this.drain();
    });
  }

  private takeBatch(): Pending[] {
    let points = 0;
    let bytes = 0;
    let n = 0;
    for (const p of this.queue) {
      if (
        n > 0 &&
        (points + p.points > this.opts.maxBatchPoints || bytes + p.bytes > this.opts.maxBatchBytes)
      )
        break;
      points += p.points;
      bytes += p.bytes;
      n++;
    }
    return this.queue.splice(0, n);
  }

  /**
   * Writes one batch, retried (retry.ts). A retry later than half the safety window re-plans the
   * batch (fresh timestamps, and a fresh look for copies that a failed attempt may have stored
   * after all) so no point lands behind readers. Then the appends settle (see settle) while the
   * next batch is written.
   */
  private async commit(batch: Pending[]): Promise<void> {
    const started = performance.now();
    const ours = new Map<string, bigint>();
    let plan: Plan | null = null;
    let attempts = 0;
    try {
      const written = await retrying(this.ctx.policy, "store a message", async () => {
        attempts++;
        if (!plan || Date.now() - plan.madeAt > this.opts.safetyWindowMs / 2) {
          plan = await this.plan(batch, ours);
        }
        // Rewriting a chunk that already landed is harmless: same series, time and fields.
        // The index first: a copy stored is always found by a lookup (id-index.ts).
        const writes = [...plan.indexChunks, ...plan.chunks];
        // The batch's first write carries this process's watermark (below the batch: every
        // point stamped before it is acknowledged), standing in for the write of its own that
        // the batch before skipped (see below). Only on a first attempt: a process says nothing
        // while a write of its own may still land late (watermarks.ts, failed).
        if (attempts === 1 && this.floor !== null && writes.length > 0) {
          const line = this.watermarks?.carried(this.floor);
          if (line) writes[0] = `${writes[0]}\n${line}`;
        }
        for (const chunk of writes) await this.ctx.http.write(chunk);
        return plan;
      });
      this.floor = null;
      // Every point this process stamped so far is acknowledged: say so before the next batch
      // stamps. Unless an attempt failed: a write that timed out may still land, later.
      // When the next batch is already queued, its first write carries the watermark instead
      // (a write request fewer per batch under load), stamped right after its lookup; should it
      // write nothing, the one after it carries it, and the watermark timer publishes anyway.
      if (attempts > 1) this.watermarks?.failed();
      else if (this.queue.length === 0) this.watermarks?.publish();
      this.metrics?.batch(batch.length, (performance.now() - started) / 1000);
      void this.settle(batch, written);
    } catch (failure) {
      this.floor = null;
      this.watermarks?.failed();
      this.metrics?.error("append");
      for (const p of batch) {
        if (p.request) p.request.failure = { error: failure };
        p.reject(failure);
      }
    }
  }

  /**
   * Settles a written batch: once every point stamped before its copies is visible (the other
   * processes' watermarks passed them, or the safety window did), reads each copy's predecessor
   * (predecessors.ts), so a client at that position applies the delivery without reading. A copy
   * that turns out to be a second copy of a racing resend is reported where the first one is.
   * Without watermarks, or when the predecessors cannot be read, copies come without `prev`.
   */
  private async settle(batch: Pending[], plan: Plan): Promise<void> {
    const { results, copies } = plan;
    if (this.watermarks && copies.length > 0) {
      this.settling++;
      try {
        // The predecessors' first read rides in the floor request that shows the copies visible.
        const read = await this.watermarks.waitVisible(
          newestOf(copies),
          predecessorStatements(this.ctx, copies),
        );
        const placements = read
          ? await placePredecessors(this.ctx, copies, this.racingNs, read, this.settledRows)
          : await readPredecessors(this.ctx, copies, this.racingNs, this.settledRows);
        let i = 0;
        for (const result of results) {
          let second = true;
          for (const [owner, place] of result.placed) {
            const copy = copies[i++]!;
            const p = placements.get(`${owner}\u0000${copy.ts}`);
            if (!p) {
              second = false;
              continue;
            }
            second &&= p.second;
            const moved: Placement =
              p.ts === copy.ts ? { ...place } : { cursor: p.ts.toString(), serverTime: isoOf(p.ts) };
            if (p.prev !== undefined) moved.prev = p.prev === null ? null : p.prev.toString();
            result.placed.set(owner, moved);
          }
          if (second) result.duplicate = true;
        }
      } catch {
        // The predecessors could not be read: the copies go out without, and clients sync.
      } finally {
        this.settling--;
      }
    }
    batch.forEach((p, i) => {
      p.resolve(results[i]!);
    });
  }

  /** Looks up copies already stored (resends), then stamps the new points. */
  private async plan(batch: Pending[], ours: Map<string, bigint>): Promise<Plan> {
    const owners = [...new Set(batch.flatMap((p) => p.input.owners))];
    const now = Date.now();
    // Ids in the index (id-index.ts) are looked up there; the others by a scan of the mailboxes.
    const slots = new Map<string, bigint | null>();
    for (const p of batch)
      if (!slots.has(p.input.id)) slots.set(p.input.id, this.index?.slot(p.input.id, now) ?? null);
    const indexed = new Map<string, bigint>();
    for (const [id, slot] of slots) if (slot !== null) indexed.set(id, slot);
    // A copy that another server stamped more than W before this lookup began is visible to it
    // (the safety window; index points are written before their copies), and this batch is
    // stamped right after the lookup ends: a lookup kept under W/2 bounds how far apart two
    // racing copies of one id can lie (see mailbox-read.ts). A lookup looked again covers only
    // what the one before may have missed: since W before it began.
    const existing = new Map<string, bigint>();
    let since: number | null = null;
    for (let attempt = 1; ; attempt++) {
      const began = Date.now();
      const scan = new Set<string>();
      for (const [id, slot] of slots) if (slot === null) scan.add(id);
      if (this.index && indexed.size > 0) {
        for (const [key, answer] of await this.index.lookup(owners, indexed)) {
          if (answer === "unknown") scan.add(key.slice(key.indexOf("\u0000") + 1));
          else if (answer !== "absent") {
            const known = existing.get(key);
            if (known === undefined || answer.found < known) existing.set(key, answer.found);
          }
        }
      }
      if (scan.size > 0) {
        let earliestId = now;
        for (const id of scan) {
          const t = uuidv7Time(id);
          if (Number.isFinite(t)) earliestId = Math.min(earliestId, t);
        }
        const from = Math.max(now - this.opts.dedupeWindowMs, earliestId - ID_SKEW_MS);
        for (const [key, ts] of await this.storedIds(
          owners,
          [...scan],
          nowNs(Math.max(from, since ?? from)),
        )) {
          const known = existing.get(key);
          if (known === undefined || ts < known) existing.set(key, ts);
        }
      }
      if (Date.now() - began <= this.opts.safetyWindowMs / 2 || attempt >= LOOKUPS) break;
      since = began - this.opts.safetyWindowMs;
    }
    const placedHere = new Map<string, bigint>();
    const handled = new Set<string>();
    const lines: string[] = [];
    const indexLines: string[] = [];
    let minTs: bigint | null = null;
    const copies: Copy[] = [];
    const results = batch.map((p) => {
      const placed = new Map<string, Placement>();
      let duplicate = true;
      for (const owner of new Set(p.input.owners)) {
        const key = `${owner}\u0000${p.input.id}`;
        let ts = existing.get(key) ?? placedHere.get(key);
        if (ts !== undefined) {
          // A copy an earlier attempt of this very batch stored is not a resend.
          if (ours.get(key) === ts && !handled.has(key)) duplicate = false;
        } else {
          ts = this.stamp();
          minTs ??= ts;
          placedHere.set(key, ts);
          ours.set(key, ts);
          duplicate = false;
          lines.push(mailboxLine(owner, p.input.id, envelopeFor(p.input, owner), ts));
          const entry = this.index?.line(owner, p.input.id, ts, slots.get(p.input.id) ?? null);
          if (entry) indexLines.push(entry);
        }
        handled.add(key);
        placed.set(owner, { cursor: ts.toString(), serverTime: isoOf(ts) });
        copies.push({ owner, id: p.input.id, ts });
      }
      return { placed, duplicate };
    });
    if (minTs !== null && (this.floor === null || minTs < this.floor)) this.floor = minTs;
    return {
      indexChunks: this.chunk(indexLines),
      chunks: this.chunk(lines),
      results,
      copies,
      madeAt: Date.now(),
    };
  }

  private chunk(lines: string[]): string[] {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: most batches are one request, counted cheaply.
    let units = 0;
    for (const line of lines) units += line.length + 1;
    if (units * 3 <= this.opts.maxBatchBytes) return lines.length > 0 ? [lines.join("\n")] : [];
    const chunks: string[] = [];
    let current: string[] = [];
    let bytes = 0;
    for (const line of lines) {
      const size = Buffer.byteLength(line) + 1;
      if (current.length > 0 && bytes + size > this.opts.maxBatchBytes) {
        chunks.push(current.join("\n"));
        current = [];
        bytes = 0;
      }
      current.push(line);
      bytes += size;
    }
    if (current.length > 0) chunks.push(current.join("\n"));
    return chunks;
  }

  /** Earliest stored copy of each (owner, id) of `ids` since `from`, keyed by owner, NUL, id. */
  private async storedIds(owners: string[], ids: string[], from: bigint): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    const res = await this.ctx.http.query(
      `SELECT "id" FROM ${this.ctx.m(M.mailbox)} WHERE (${owners.map((o) => `"owner" = ${str(o)}`).join(" OR ")}) AND ${idFilter(ids)}time >= ${nanos(from)} GROUP BY "owner"`,
    );
    for (const s of res[0] ?? []) {
      const owner = s.tags.owner;
      if (owner === undefined) continue;
      for (const r of rows(s)) {
        if (typeof r.id !== "string") continue;
        const key = `${owner}\u0000${r.id}`;
        const ts = timeOf(r);
        const seen = out.get(key);
        if (seen === undefined || ts < seen) out.set(key, ts);
      }
    }
    return out;
  }
}
