import { Point } from "@influxdata/influxdb-client";
import { uuidv7Time } from "../../../core/protocol/ids.js";
import {
  type AppendInput,
  type AppendResult,
  appendChars,
  envelopeFor,
  type StoreMetrics,
} from "../store.js";
import { isoOf, nowNs } from "./clock.js";
import { type InfluxContext, M } from "./context.js";
import { rows, timeOf } from "./http.js";
import { nanos, str } from "./influxql.js";
import { retrying } from "./retry.js";

/** Clock skew allowed between a client's UUIDv7 and the server when looking for a resend's first copy. */
const ID_SKEW_MS = 3600_000;

/** How often a batch looks again for stored copies when the lookup was slower than W/2. */
const LOOKUPS = 5;

export interface GroupCommitOptions {
  maxBatchPoints: number;
  maxBatchBytes: number;
  dedupeWindowMs: number;
  safetyWindowMs: number;
}

interface Pending {
  input: AppendInput;
  points: number;
  bytes: number;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

interface Plan {
  /** Line protocol, cut into requests of at most maxBatchBytes. */
  chunks: string[];
  results: AppendResult[];
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
  /** Receives batch sizes and failures. */
  metrics: StoreMetrics | null = null;

  constructor(
    private readonly ctx: InfluxContext,
    private readonly opts: GroupCommitOptions,
    private readonly stamp: () => bigint,
  ) {}

  /** The lowest timestamp of a batch still being written (or retried), if any. */
  get inflightMin(): bigint | null {
    return this.floor;
  }

  append(input: AppendInput): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      const owners = new Set(input.owners).size;
      this.queue.push({
        input,
        points: owners,
        bytes: appendChars(input) * 3 + owners * 200,
        resolve,
        reject,
      });
      this.drain();
    });
  }

  /** Resolves when nothing is queued or in flight. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = (async () => {
      await new Promise((r) => setImmediate(r));
      while (this.queue.length > 0) {
        const batch = this.takeBatch();
        await this.commit(batch);
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
   * Writes one batch and settles its appends, retried (retry.ts). A retry later than half the
   * safety window re-plans the batch (fresh timestamps, and a fresh look for copies that a
   * failed attempt may have stored after all) so no point lands behind readers.
   */
  private async commit(batch: Pending[]): Promise<void> {
    const started = performance.now();
    const ours = new Map<string, bigint>();
    let plan: Plan | null = null;
    try {
      const results = await retrying(this.ctx.policy, "store a message", async () => {
        if (!plan || Date.now() - plan.madeAt > this.opts.safetyWindowMs / 2) {
          plan = await this.plan(batch, ours);
        }
        // Rewriting a chunk that already landed is harmless: same series, time and fields.
        for (const chunk of plan.chunks) await this.ctx.http.write(chunk);
        return plan.results;
      });
      this.metrics?.batch(batch.length, (performance.now() - started) / 1000);
      batch.forEach((p, i) => {
        p.resolve(results[i]!);
      });
    } catch (failure) {
      this.metrics?.error("append");
      for (const p of batch) p.reject(failure);
    } finally {
      this.floor = null;
    }
  }

  /** Looks up copies already stored (resends), then stamps the new points. */
  private async plan(batch: Pending[], ours: Map<string, bigint>): Promise<Plan> {
    const owners = [...new Set(batch.flatMap((p) => p.input.owners))];
    const now = Date.now();
    let from = now - this.opts.dedupeWindowMs;
    let earliestId = now;
    for (const p of batch) {
      const t = uuidv7Time(p.input.id);
      if (Number.isFinite(t)) earliestId = Math.min(earliestId, t);
    }
    from = Math.max(from, earliestId - ID_SKEW_MS);
    // A copy that another server stamped more than W before this lookup began is visible to it
    // (the safety window), and this batch is stamped right after the lookup ends: a lookup kept
    // under W/2 bounds how far apart two racing copies of one id can lie (see mailbox-read.ts).
    let existing: Map<string, bigint>;
    for (let attempt = 1; ; attempt++) {
      const began = Date.now();
      existing = await this.storedIds(owners, nowNs(from));
      if (Date.now() - began <= this.opts.safetyWindowMs / 2 || attempt >= LOOKUPS) break;
    }
    const placedHere = new Map<string, bigint>();
    const handled = new Set<string>();
    const lines: string[] = [];
    let minTs: bigint | null = null;
    const results = batch.map((p) => {
      const placed = new Map<string, { cursor: string; serverTime: string }>();
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
          const point = new Point(M.mailbox)
            .tag("owner", owner)
            .stringField("id", p.input.id)
            .stringField("envelope", envelopeFor(p.input, owner))
            .timestamp(ts.toString());
          lines.push(point.toLineProtocol()!);
        }
        handled.add(key);
        placed.set(owner, { cursor: ts.toString(), serverTime: isoOf(ts) });
      }
      return { placed, duplicate };
    });
    if (minTs !== null && (this.floor === null || minTs < this.floor)) this.floor = minTs;
    return { chunks: this.chunk(lines), results, madeAt: Date.now() };
  }

  private chunk(lines: string[]): string[] {
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

  /** Earliest stored copy of each (owner, id) since `from`, keyed `owner\0id`. */
  private async storedIds(owners: string[], from: bigint): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    const res = await this.ctx.http.query(
      `SELECT "id" FROM ${this.ctx.m(M.mailbox)} WHERE (${owners.map((o) => `"owner" = ${str(o)}`).join(" OR ")}) AND time >= ${nanos(from)} GROUP BY "owner"`,
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
