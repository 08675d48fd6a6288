import { ZmqchatError } from "../errors.js";
import { MAX_ENVELOPE_BYTES } from "../protocol/limits.js";
import type { Envelope } from "../protocol/schema.js";

/** The service's acknowledgement of one envelope, as `send` answers it. */
export interface SendAck {
  id: string;
  cursor: string;
  serverTime: string;
  duplicate: boolean;
  prev?: string | null;
}

/** One envelope's outcome in a `send.many` reply: its acknowledgement, or why it was refused. */
export type SendResult =
  | SendAck
  | { id: string; error: { code: string; message: string; retryAfterMs?: number } };

/** Most envelopes one `send.many` request carries (the wire format's bound). */
export const MAX_BATCH = 64;

/** What the window needs: the two ways to hand envelopes to the service. */
export interface SendWindowDeps {
  /** `send`: one envelope. */
  one(envelope: Envelope, timeoutMs: number): Promise<SendAck>;
  /** `send.many`: 1..MAX_BATCH envelopes; one result per envelope, in order. */
  many(envelopes: Envelope[], timeoutMs: number): Promise<SendResult[]>;
}

/** A place in the send order, taken when a message is composed and filled once it is sealed. */
export interface SendSlot {
  /** Hands the sealed envelope over; resolves with its acknowledgement. */
  post(envelope: Envelope, timeoutMs: number): Promise<SendAck>;
  /** Gives the place up (nothing will be posted); harmless after `post`. */
  cancel(): void;
}

interface Entry {
  state: "waiting" | "ready" | "cancelled";
  envelope?: Envelope;
  deadline: number;
  bytes: number;
  settled: boolean;
  resolve(ack: SendAck): void;
  reject(err: unknown): void;
}

/**
 * The client's send window: envelopes leave in the order their messages were composed, one
 * request in flight at a time, and what was sealed while a request was out leaves in the next
 * one, as a `send.many` of up to MAX_BATCH envelopes within a frame. One request at a time keeps
 * each conversation's mailbox order the order of composition, also across retries (a retry is
 * the same request id and body; the service answers `duplicate` for what it stored before).
 * A service that does not know `send.many` (it answers `bad_request` for the type) gets one
 * `send` per envelope from then on, as before the window.
 */
export class SendWindow {
  private readonly queue: Entry[] = [];
  private busy = false;
  private scheduled = false;
  /** False once the service refused `send.many` as an unknown request type. */
  private manyKnown = true;

  constructor(private readonly deps: SendWindowDeps) {}

  /** Takes the next place in the send order. */
  reserve(): SendSlot {
    const entry: Entry = {
      state: "waiting",
      deadline: 0,
      bytes: 0,
      settled: false,
      resolve: () => {},
      reject: () => {},
    };
    this.queue.push(entry);
    return {
      post: (envelope, timeoutMs) => {
        if (entry.state !== "waiting") return Promise.reject(new Error("a send slot is posted once"));
        return new Promise<SendAck>((resolve, reject) => {
          entry.state = "ready";
          entry.envelope = envelope;
          entry.deadline = Date.now() + timeoutMs;
          entry.bytes = Buffer.byteLength(JSON.stringify(envelope));
          entry.resolve = (ack) => {
            if (!entry.settled) resolve(ack);
            entry.settled = true;
          };
          entry.reject = (err) => {
            if (!entry.settled) reject(err);
            entry.settled = true;
          };
          this.schedule();
        });
      },
      cancel: () => {
        if (entry.state !== "waiting") return;
        entry.state = "cancelled";
        this.schedule();
      },
    };
  }

  /** Envelopes waiting for their turn (not yet handed to the service). */
  get waiting(): number {
    return this.queue.length;
  }

  /** Runs a turn later, so envelopes sealed in the same turn leave together. */
  private schedule(): void {
    if (this.scheduled || this.busy) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** The ready envelopes at the head of the queue, in order, within the batch and frame bounds. */
  private take(): Entry[] {
    const batch: Entry[] = [];
    let bytes = 0;
    while (this.queue.length > 0 && batch.length < MAX_BATCH) {
      const head = this.queue[0]!;
      if (head.state === "cancelled") {
        this.queue.shift();
        continue;
      }
      if (head.state === "waiting") break;
      // Each envelope fits a frame alone (MAX_ENVELOPE_BYTES); a batch stays within the same.
      if (batch.length > 0 && bytes + head.bytes > MAX_ENVELOPE_BYTES) break;
      this.queue.shift();
      if (Date.now() >= head.deadline) {
        head.reject(new ZmqchatError("timeout", "the message waited for its turn past its deadline"));
        continue;
      }
      bytes += head.bytes;
      batch.push(head);
    }
    return batch;
  }

  private pump(): void {
    if (this.busy) return;
    if (!this.manyKnown) {
      // The old way: every envelope its own `send`, as many in flight as callers started.
      for (const e of this.take()) void this.sendOne(e);
      if (this.queue.some((e) => e.state !== "waiting")) this.schedule();
      return;
    }
    const batch = this.take();
    if (batch.length === 0) return;
    this.busy = true;
    const done = batch.length === 1 ? this.sendOne(batch[0]!) : this.sendMany(batch);
    void done.finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  private async sendOne(e: Entry): Promise<void> {
    try {
      e.resolve(await this.deps.one(e.envelope!, Math.max(1, e.deadline - Date.now())));
    } catch (err) {
      e.reject(err);
    }
  }

  private async sendMany(batch: Entry[]): Promise<void> {
    const now = Date.now();
    const last = Math.max(...batch.map((e) => e.deadline));
    // A member whose own deadline comes before the batch's is told then; the batch goes on.
    const timers = batch
      .filter((e) => e.deadline < last)
      .map((e) =>
        setTimeout(
          () => e.reject(new ZmqchatError("timeout", "no acknowledgement before the deadline")),
          e.deadline - now,
        ),
      );
    try {
      const results = await this.deps.many(
        batch.map((e) => e.envelope!),
        Math.max(1, last - now),
      );
      const again: Entry[] = [];
      let wait = 0;
      batch.forEach((e, i) => {
        const r = results[i];
        if (!r || r.id !== e.envelope!.id)
          e.reject(new ZmqchatError("internal", "the service's send.many reply does not match the request"));
        else if (!("error" in r)) e.resolve(r);
        else if (RETRYABLE.has(r.error.code) && !e.settled) {
          // As the channel does for a whole request: wait and send again (same id) until the deadline.
          again.push(e);
          wait = Math.max(wait, r.error.retryAfterMs ?? 50);
        } else e.reject(new ZmqchatError(r.error.code as never, r.error.message));
      });
      if (again.length > 0) {
        this.queue.unshift(...again);
        await delay(Math.min(wait, Math.max(0, Math.min(...again.map((e) => e.deadline)) - Date.now())));
      }
    } catch (err) {
      if (err instanceof ZmqchatError && err.code === "bad_request") {
        // An old service does not know the type: from now on one `send` each. A body it refused
        // as a whole (one malformed envelope) gets each envelope its own answer this once.
        if (!err.message.startsWith("send.many")) this.manyKnown = false;
        for (const e of batch) await this.sendOne(e);
        return;
      }
      for (const e of batch) e.reject(err);
    } finally {
      for (const t of timers) clearTimeout(t);
    }
  }
}

/** Per-envelope refusals that say "not now" rather than "no". */
const RETRYABLE = new Set(["unavailable", "rate_limited"]);

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
