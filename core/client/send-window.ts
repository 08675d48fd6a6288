import { BATCH_SIGNATURE_ROOM, isDraft } from "../crypto/envelope.js";
import { rateLimited, ZmqchatError } from "../errors.js";
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

/** Most `send.many` requests in flight, whatever the service offers (login reply `pipeline`). */
export const MAX_IN_FLIGHT = 4;

/**
 * A request joins others in flight only with this many envelopes ready (or half a frame's
 * bytes): under light load what is sealed while a request is out waits for its reply and leaves
 * together, as with one in flight. Measured on SQLite at 1,000 msg/s offered (quiet machine):
 * chaining each few messages into a request of their own took the commits that waited for the
 * other server's write lock from 10–16 % to 28–33 % and the send → display p50 from 8–14 ms to
 * 14–18 ms, for no gain at p99; a burst (the 1:1 bench's ~33 a request) still pipelines.
 */
export const PIPELINE_MIN = 16;

/** What the window needs: the two ways to hand envelopes to the service. */
export interface SendWindowDeps {
  /** `send`: one envelope. */
  one(envelope: Envelope, timeoutMs: number): Promise<SendAck>;
  /**
   * `send.many`: 1..MAX_BATCH envelopes, stored only after this device's envelope `follows` when
   * given; one result per envelope, in order.
   */
  many(envelopes: Envelope[], timeoutMs: number, follows?: string, quiet?: boolean): Promise<SendResult[]>;
  /**
   * Whether this process may ask the service not to ring its device for its own copies
   * (`quiet`): only when no other process shares the profile, which would learn of them only
   * through that ring (Cache.alone). Absent: never.
   */
  alone?(): boolean;
  /**
   * Signs the drafts among the envelopes about to leave together (suite 4: one signature over
   * their Merkle tree, core/crypto/envelope.ts signBatch); called once per request before it is
   * first sent, and a draft never leaves unsigned. Absent: nothing is a draft.
   */
  sign?(envelopes: Envelope[]): void;
}

/** A place in the send order, taken when a message is composed and filled once it is sealed. */
export interface SendSlot {
  /** Hands the sealed envelope over; resolves with its acknowledgement. */
  post(envelope: Envelope, timeoutMs: number): Promise<SendAck>;
  /** Gives the place up (nothing will be posted); harmless after `post`. */
  cancel(): void;
}

interface Entry {
  /** Its place in the send order (reserve order): a refused entry goes back to the queue there. */
  order: number;
  state: "waiting" | "ready" | "cancelled";
  envelope?: Envelope;
  deadline: number;
  bytes: number;
  settled: boolean;
  /** The service's last "not now" for it (rate_limited, unavailable): what it fails with at its deadline. */
  refused?: ZmqchatError;
  resolve(ack: SendAck): void;
  reject(err: unknown): void;
}

/** A request in flight: the id of its last envelope, which the next request names as `follows`. */
interface Flight {
  last: string;
}

/**
 * The client's send window: envelopes leave in the order their messages were composed, and
 * what was sealed while requests were out leaves in the next one, as a `send.many` of up to
 * MAX_BATCH envelopes within a frame.
 *
 * One request in flight keeps each conversation's mailbox order the order of composition, also
 * across retries (a retry is the same request id and body; the service answers `duplicate` for
 * what it stored before). When the service offers it at login (`pipeline`), up to that many
 * (at most MAX_IN_FLIGHT) are in flight and each names the last envelope of the one before it
 * (`follows`): the service stores a request only once that envelope is in the sender's own
 * mailbox (checked in the store's write, so also when another server stored it), refuses it as
 * `unavailable` otherwise, and refuses the rest of a request after an envelope it refused "not
 * now". So whatever is stored is a prefix of the send order (less what was refused for good),
 * and whatever a reply shows not stored goes back to the queue in its place: then nothing more
 * leaves until every request in flight is answered (a drain), and the next one names nothing,
 * so a request never waits on a predecessor that will not be stored (a refused envelope, a
 * request given up at its deadline). A request refused as malformed while naming a predecessor
 * (an older server during a rolling upgrade) puts its envelopes back and the window goes on one
 * request at a time until the next login.
 *
 * A service that does not know `send.many` (it answers `bad_request` for the type) gets one
 * `send` per envelope from then on, as before the window.
 */
export class SendWindow {
  /** Entries not handed to the service, in send order. */
  private queue: Entry[] = [];
  /** Requests in flight, oldest first. */
  private readonly flights: Flight[] = [];
  private scheduled = false;
  /** False once the service refused `send.many` as an unknown request type. */
  private manyKnown = true;
  /** Requests that may be in flight (the service's offer at login, at most MAX_IN_FLIGHT). */
  private depth = 1;
  /** The service offered `quiet` at login (and has not refused it since). */
  private quietOffered = false;
  /** A reply showed something in flight may not be stored: nothing leaves until every request in flight is answered. */
  private draining = false;
  private nextOrder = 0;

  constructor(private readonly deps: SendWindowDeps) {}

  /** The service's offer in a login reply: how many requests may be in flight (absent: one). */
  offer(pipeline: number | undefined, quiet = false): void {
    this.depth = Math.max(1, Math.min(MAX_IN_FLIGHT, pipeline ?? 1));
    this.quietOffered = quiet;
    this.schedule();
  }

  /** Takes the next place in the send order. */
  reserve(): SendSlot {
    const entry: Entry = {
      order: this.nextOrder++,
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
          entry.bytes =
            Buffer.byteLength(JSON.stringify(envelope)) + (isDraft(envelope) ? BATCH_SIGNATURE_ROOM : 0);
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

  /** Requests in flight now. */
  get inFlight(): number {
    return this.flights.length;
  }

  /** Runs a turn later, so envelopes sealed in the same turn leave together. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Puts entries a reply showed not stored back in their places in the send order. */
  private requeue(entries: Entry[]): void {
    const back = entries.filter((e) => !e.settled).sort((a, b) => a.order - b.order);
    if (back.length === 0) return;
    const merged: Entry[] = [];
    let i = 0;
    for (const e of this.queue) {
      while (i < back.length && back[i]!.order < e.order) merged.push(back[i++]!);
      merged.push(e);
    }
    while (i < back.length) merged.push(back[i++]!);
    this.queue = merged;
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
      if (head.settled) continue;
      // A refused entry whose wait ran into its deadline (a timer may fire a millisecond early)
      // fails with the service's answer, not as a request with no time left to be answered.
      if (Date.now() >= head.deadline - (head.refused ? DEADLINE_SLACK_MS : 0)) {
        head.reject(
          head.refused ?? new ZmqchatError("timeout", "the message waited for its turn past its deadline"),
        );
        continue;
      }
      bytes += head.bytes;
      batch.push(head);
    }
    return batch;
  }

  /** Whether PIPELINE_MIN envelopes (or half a frame's bytes) are ready at the head of the queue. */
  private batchReady(): boolean {
    let n = 0;
    let bytes = 0;
    for (const e of this.queue) {
      if (e.state === "cancelled") continue;
      if (e.state === "waiting") return false;
      n++;
      bytes += e.bytes;
      if (n >= PIPELINE_MIN || bytes >= MAX_ENVELOPE_BYTES / 2) return true;
    }
    return false;
  }

  private pump(): void {
    for (;;) {
      if (this.draining) {
        if (this.flights.length > 0) return;
        this.draining = false;
      }
      if (!this.manyKnown) {
        if (this.flights.length > 0) return;
        // The old way: every envelope its own `send`, as many in flight as callers started.
        const batch = this.take();
        this.deps.sign?.(batch.map((e) => e.envelope!));
        for (const e of batch) void this.sendOne(e);
        if (this.queue.some((e) => e.state !== "waiting")) this.schedule();
        return;
      }
      if (this.flights.length >= this.depth) return;
      if (this.flights.length > 0 && !this.batchReady()) return;
      const batch = this.take();
      if (batch.length === 0) return;
      this.deps.sign?.(batch.map((e) => e.envelope!));
      const follows = this.flights.at(-1)?.last;
      const flight: Flight = { last: batch.at(-1)!.envelope!.id };
      this.flights.push(flight);
      // Asked per request: another process of the profile may have started meanwhile.
      const quiet = this.quietOffered && this.deps.alone?.() === true;
      const done =
        batch.length === 1 && follows === undefined && !quiet
          ? this.sendOne(batch[0]!)
          : this.sendMany(batch, follows, quiet);
      void done.finally(() => {
        this.flights.splice(this.flights.indexOf(flight), 1);
        this.pump();
      });
    }
  }

  private async sendOne(e: Entry): Promise<void> {
    try {
      e.resolve(await this.deps.one(e.envelope!, Math.max(1, e.deadline - Date.now())));
    } catch (err) {
      // Not known to be stored: what follows it in flight must not chain on it.
      this.draining = true;
      e.reject(err);
    }
  }

  private async sendMany(batch: Entry[], follows: string | undefined, quiet = false): Promise<void> {
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
        follows,
        quiet || undefined,
      );
      const again: Entry[] = [];
      let wait = 0;
      batch.forEach((e, i) => {
        const r = results[i];
        if (!r || r.id !== e.envelope!.id) {
          this.draining = true;
          e.reject(new ZmqchatError("internal", "the service's send.many reply does not match the request"));
        } else if (!("error" in r)) e.resolve(r);
        else if (
          r.error.code === "rate_limited" &&
          Date.now() + (r.error.retryAfterMs ?? 0) >= e.deadline &&
          !e.settled
        ) {
          // The service's retry-after reaches past the deadline: say so now, as the channel does
          // for a whole request, rather than wait the deadline out for a known answer.
          this.draining = true;
          e.reject(rateLimited(r.error.message, r.error.retryAfterMs ?? 0));
        } else if (RETRYABLE.has(r.error.code) && !e.settled) {
          // As the channel does for a whole request: wait and send again (same id) until the
          // deadline, in its place: what is in flight after it was refused too (it follows this
          // one), and nothing leaves before every request in flight is answered.
          again.push(e);
          e.refused = new ZmqchatError(r.error.code as never, r.error.message);
          // A refusal for want of its predecessor says 0: the drain is the wait. Without a
          // predecessor named, a floor, so no answer makes the window spin.
          wait = Math.max(wait, r.error.retryAfterMs ?? 50, follows === undefined ? 10 : 0);
        } else e.reject(new ZmqchatError(r.error.code as never, r.error.message));
      });
      if (again.length > 0) {
        this.draining = true;
        this.requeue(again);
        const soonest = Math.min(...again.map((e) => e.deadline));
        if (wait > 0) await delay(Math.min(wait, Math.max(0, soonest - Date.now())));
      }
    } catch (err) {
      this.draining = true;
      if (err instanceof ZmqchatError && err.code === "bad_request") {
        if (quiet) {
          // Refused as malformed while asking `quiet` (an older server behind the same balancer
          // during a rolling upgrade): nothing of it was stored. Back to its place, and neither
          // `quiet` nor `follows` until the next login.
          this.quietOffered = false;
          this.depth = 1;
          this.requeue(batch);
          return;
        }
        if (follows !== undefined) {
          // Refused as malformed while naming its predecessor (an older server, which does not
          // know `follows`): nothing of it was stored. Back to its place; one at a time until
          // the next login, so it leaves again without `follows`.
          this.depth = 1;
          this.requeue(batch);
          return;
        }
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

/** Time too short for a request to be answered: a refused entry with less left is not sent again. */
const DEADLINE_SLACK_MS = 5;

/** Per-envelope refusals that say "not now" rather than "no". */
const RETRYABLE = new Set(["unavailable", "rate_limited"]);

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
