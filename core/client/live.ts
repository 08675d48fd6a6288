import { checkDeliveryFrame, deliveriesInFrame } from "../protocol/delivery-check.js";
import { isPlainObject } from "../protocol/envelope-check.js";
import type { MailboxItem } from "../protocol/schema.js";
import { CURSOR } from "../protocol/sync-check.js";
import type { Cache, ChatMessage } from "./cache.js";
import { PARALLEL_MIN } from "./opener.js";

/** What live deliveries need from the client around them. */
export interface LiveDeps {
  cache: Pick<Cache, "addNext" | "cursor">;
  /** Opens (verifies, decrypts) mailbox items; items held for a key change are kept aside and left out. */
  open(items: MailboxItem[]): Promise<ChatMessage[]>;
  /** Reads the mailbox from the cursor (coalesced: a call during a sync makes it go round once more). */
  sync(): Promise<number>;
  /** The sync under way, if any. */
  running(): Promise<number> | null;
  /**
   * One page of the mailbox after `after` (a `sync` request, nothing stored): how a hold that ran
   * out reads just the gap. Without it, such a gap makes a sync.
   */
  fetch?(after: string | null, limit: number): Promise<{ items: MailboxItem[]; more: boolean }>;
  emit(message: ChatMessage): void;
  /** Deliveries were found already in the shared cache, which holds the mailbox up to `cursor` (another process of this profile, or our ack, stored them). */
  alreadyStored?(cursor: string): void;
  warn(err: unknown, what: string): void;
}

/** Deliveries waiting beyond this are dropped for one sync, which reads them from the mailbox. */
const MAX_QUEUED = 2000;

/**
 * Bytes of frames waiting unparsed (push(Buffer)) beyond which they are dropped the same way: a
 * `deliver.many` frame holds up to 256 deliveries, so frames alone do not bound it.
 */
export const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

/**
 * How long deliveries that arrived ahead of their predecessor wait for it before the gap is read:
 * two servers publish what they stored in the order their own work ends, so a delivery can
 * overtake the one before it by a few milliseconds; a read for each of those would cost a request
 * and a store read (about one per 250 messages in the bench).
 */
export const HOLD_MS = 50;

/**
 * Without a way to read just the gap (`LiveDeps.fetch`), the longest a hold is drawn out while
 * deliveries keep arriving (each HOLD_MS without the predecessor, but with others, extends it by
 * HOLD_MS): a sync reads and opens a whole page that the late deliveries then bring again. With
 * `fetch`, a hold is never drawn out: the gap is read after HOLD_MS. Traced in the 1:1 bench, a
 * server that fell behind by more than HOLD_MS had stored a whole `send.many` batch and published
 * it hundreds of milliseconds later; drawing the hold out made every message behind it wait up to
 * this long (display p99 672 ms against an ack p99 of 92 ms), while the gap read costs one request
 * and opens only what the late deliveries would have brought (they are then dropped on their
 * cursor alone).
 */
export const MAX_HOLD_MS = 500;

/**
 * Live runs are opened this many items at a time, on the calling thread, with a turn of the event
 * loop between chunks: below the opener's PARALLEL_MIN, so a run never goes to its worker threads.
 * Measured on the group bench's member path (2 cores): a run of 100 opened on the workers cost
 * 569 µs of CPU per delivery against 256 µs here, and took 2.5 times as long (the items are cloned
 * to and from the threads, whose code stays cold on the few items each gets). The turn between
 * chunks keeps a long run (up to MAX_QUEUED) from blocking the event loop for its whole length.
 */
export const LIVE_OPEN_CHUNK = PARALLEL_MIN - 1;

/**
 * When a hold runs out, the gap before the held deliveries is read with one request of at most
 * this many items after the cursor (fewer when the cursors say the gap is smaller: they grow by at
 * least one per item), and only the gap's items are opened (on the calling thread, in chunks): a
 * gap is what one server stored but has not published yet, up to a few `send.many` batches of 64
 * (a whole batch was the usual gap in the 1:1 bench), where a sync would read (and open, on the
 * opener's threads) a whole page of what the held deliveries already bring. A gap this page does
 * not close makes a sync.
 */
export const GAP_PAGE = 256;

/** Queued by the hold timer: the deliveries held did not find their predecessor in time. */
const HOLD_EXPIRED = Symbol("hold expired");

/** Queued when the cursor moved under a run: what was held is judged again (see apply). */
const AGAIN = Symbol("judge again");

type Checked = NonNullable<ReturnType<typeof checkDeliveryFrame>>;

/** A hold under way (see LiveDeliveries.hold). */
interface Hold {
  timer: NodeJS.Timeout;
  /** Resolves when the hold ends (released or expired). */
  done: Promise<void>;
  resolve: () => void;
  /** When the hold began, and how many deliveries had been pushed when it was last armed. */
  since: number;
  pushed: number;
}

/**
 * Applies live deliveries in mailbox order, each run of those that queued up meanwhile at once.
 * A delivery whose mailbox predecessor (`prev`) is where the cache's cursor is (or the delivery
 * before it in the run) gets opened and stored directly, moving the cursor (Cache.addNext checks
 * and moves in one transaction); one at or behind the cursor is already in the cache (the
 * sender's own copy, stored from its acknowledgement, or a sync) and is dropped; one ahead of a
 * predecessor not yet here waits for it up to HOLD_MS (drawn out up to MAX_HOLD_MS only without
 * `fetch`), then the gap alone is read (GAP_PAGE); anything else — a gap that page does not
 * close, a delivery from a server that does not say `prev` — makes a sync from the cursor. The
 * mailbox stays the one truth: the cursor never moves past an item not stored.
 */
export class LiveDeliveries {
  private queue: unknown[] = [];
  /** Bytes of the raw frames in `queue`. */
  private queuedBytes = 0;
  private draining: Promise<void> | null = null;
  /** Deliveries ahead of their predecessor, in mailbox order. */
  private held: Checked[] = [];
  private holdTimer: Hold | null = null;
  /** Deliveries pushed so far (a hold that sees this move is extended, see MAX_HOLD_MS). */
  private pushed = 0;

  constructor(
    private readonly me: string,
    private readonly deps: LiveDeps,
  ) {}

  /**
   * Takes one delivery frame (group notices are handled elsewhere): as it came off the socket (a
   * Buffer, parsed only when its run is applied) or parsed. A `deliver.many` frame is taken as
   * its deliveries one by one, and one malformed (or not JSON) as a malformed delivery (a sync).
   *
   * Raw frames wait as Buffers, off the V8 heap: a member behind in the group bench held some
   * 1,000–1,500 parsed frames per client, 25 clients a process, which outlived the young
   * generation, were copied, promoted and collected by mark-compacts (the group engineer's
   * profile: the members' GC threads at up to a third of their CPU). Parsed when applied, a
   * frame lives for one run.
   */
  push(frame: unknown): void {
    if (frame instanceof Uint8Array) {
      if (this.queuedBytes + frame.byteLength > MAX_QUEUED_BYTES) {
        this.syncLater();
        return;
      }
      this.queuedBytes += frame.byteLength;
      this.enqueue(frame);
      return;
    }
    for (const f of expand(frame)) this.enqueue(f);
  }

  private enqueue(frame: unknown): void {
    if (this.queue.length >= MAX_QUEUED) {
      if (frame instanceof Uint8Array) this.queuedBytes -= frame.byteLength;
      this.syncLater();
      return;
    }
    this.queue.push(frame);
    this.pushed++;
    // Started a turn later, so that frames arriving together are applied as one run.
    this.draining ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain());
  }

  /** Resolves once every delivery pushed so far is applied (or handed to a sync). */
  async idle(): Promise<void> {
    while (this.draining || this.holdTimer) await (this.draining ?? this.holdTimer?.done);
  }

  /** Applies what has queued up, a whole run at a time: one open call and one cache transaction per run. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        this.queuedBytes = 0;
        try {
          await this.apply(batch);
        } catch (err) {
          this.deps.warn(err, "applying a live delivery failed");
          this.release();
          this.syncLater();
        }
      }
    } finally {
      this.draining = null;
    }
  }

  private syncLater(): void {
    void this.deps.sync().catch((err) => this.deps.warn(err, "sync after a delivery failed"));
  }

  /**
   * Waits for held deliveries' predecessors until HOLD_MS from now (a timer already running
   * stays); without `fetch`, drawn out by HOLD_MS at a time while other deliveries keep arriving,
   * up to MAX_HOLD_MS (see there).
   */
  private hold(): void {
    if (this.holdTimer) return;
    let resolve = () => {};
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const h: Hold = {
      timer: setTimeout(() => later(), HOLD_MS),
      done,
      resolve,
      since: Date.now(),
      pushed: this.pushed,
    };
    // Judged after this turn's I/O: timers run before it, so after a busy turn the deliveries
    // that arrived meanwhile are still unread when the timer fires.
    const later = () => setImmediate(expire);
    const expire = () => {
      // Released (and maybe held again) meanwhile: that hold has its own timer.
      if (this.holdTimer !== h) return;
      if (!this.deps.fetch && this.pushed > h.pushed && Date.now() - h.since + HOLD_MS <= MAX_HOLD_MS) {
        h.pushed = this.pushed;
        h.timer = setTimeout(later, HOLD_MS);
        return;
      }
      this.holdTimer = null;
      this.push(HOLD_EXPIRED);
      resolve();
    };
    this.holdTimer = h;
  }

  /** Drops what is held (a sync reads it from the mailbox) and stops waiting. */
  private release(): void {
    this.held = [];
    if (!this.holdTimer) return;
    clearTimeout(this.holdTimer.timer);
    this.holdTimer.resolve();
    this.holdTimer = null;
  }

  private async apply(batch: unknown[]): Promise<void> {
    const running = this.deps.running();
    if (running) await running.catch(() => 0);
    const { cache } = this.deps;
    const start = cache.cursor;
    let gap = false;
    // The hold ran out: whatever is still held after this run waits for a gap only a sync can fill.
    let expired = false;
    let stored: string | null = null;
    const behind = (cursor: string, at: string | null) => at !== null && BigInt(cursor) <= BigInt(at);
    const frames = this.held;
    this.held = [];
    for (const frame of parsed(batch)) {
      if (frame === HOLD_EXPIRED) {
        expired = true;
        continue;
      }
      if (frame === AGAIN) continue;
      // At or behind the cursor (our own copies, whose acks stored them first): dropped on the
      // cursor alone, without checking the envelope nobody will open.
      const seen = cursorOf(frame, this.me);
      if (seen !== null && behind(seen, start)) {
        stored = seen;
        continue;
      }
      // Checked by hand as deliveryFrameSchema would (delivery-check.ts), without Zod's cost.
      const parsed = checkDeliveryFrame(frame);
      if (parsed === null || parsed.owner !== this.me) {
        gap = true;
        continue;
      }
      // At or behind the cursor: already stored (our own copy from its ack, a sync, a repeat).
      if (behind(parsed.item.cursor, start)) {
        stored = parsed.item.cursor;
        continue;
      }
      if (parsed.prev === undefined) gap = true;
      else frames.push(parsed);
    }
    frames.sort((a, b) => {
      const x = BigInt(a.item.cursor);
      const y = BigInt(b.item.cursor);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    let at = start;
    const run: Checked[] = [];
    let held: Checked[] = [];
    for (const f of frames) {
      if (behind(f.item.cursor, at)) continue;
      // Once one waits for its predecessor, every later one waits behind it.
      if (held.length === 0 && f.prev === at) {
        run.push(f);
        at = f.item.cursor;
      } else if (held.length > 0 || (f.prev !== null && (at === null || BigInt(f.prev!) > BigInt(at))))
        held.push(f);
      // Its predecessor is at or behind the cursor but is not the cursor: only a sync can tell.
      else gap = true;
    }
    if (run.length > 0 && at !== null) {
      const opened = await this.openRun(run.map((f) => f.item));
      const fresh = cache.addNext(opened, start, at);
      if (fresh === null) {
        // The cursor moved while the run was opened: our acknowledgement stored our own copies
        // (the sender's live copies race its ack), or another process of this profile stored
        // some of these. Forward: the run and what was held are judged again against the new
        // cursor (what it passed is dropped), where a sync read a page for each (traced in the
        // 1:1 bench: ~15 syncs a run at the sender). Anywhere else: a sync decides.
        stored = at;
        const now = cache.cursor;
        // Not when this batch also had something only a sync can settle (a malformed delivery,
        // one without `prev`, one whose predecessor is behind the cursor): it is not held, and
        // judging again would forget it.
        if (!gap && now !== null && (start === null || BigInt(now) > BigInt(start))) {
          this.held = [...run, ...held];
          this.queue.unshift(expired ? HOLD_EXPIRED : AGAIN);
          this.deps.alreadyStored?.(now);
          return;
        }
        gap = true;
      } else {
        for (const m of fresh) this.deps.emit(m);
        // Some were in the cache already (stored by another process without moving the cursor).
        if (fresh.length < opened.length) stored = at;
        // The cursor went on over our own copies stored from their acks (Cache.addAcked): what
        // waits for one of them is judged again now, not after a hold.
        const now = cache.cursor;
        if (!gap && !expired && held.length > 0 && now !== at && held[0]!.prev === now) {
          if (stored !== null) this.deps.alreadyStored?.(now ?? stored);
          this.held = held;
          this.queue.unshift(AGAIN);
          return;
        }
      }
    }
    if (stored !== null) this.deps.alreadyStored?.(cache.cursor ?? stored);
    if (!gap && expired && held.length > 0 && held.length <= MAX_QUEUED && this.deps.fetch) {
      const before = cache.cursor;
      const left = await this.fillGap(held);
      if (left !== null) {
        held = left;
        expired = false;
      } else if (cache.cursor !== before) {
        // The cursor moved on while the gap was read: at the sender, its acknowledgements stored
        // its own copies, which are what the gap before a receipt is made of (or another process
        // of the profile stored it). The held deliveries are judged again against the new cursor,
        // as a run is above, and wait for the rest of the gap afresh. A sync here read and opened
        // every page up to the mailbox's end; traced in the 1:1 bench, one at the sender opened
        // some 2,000 of its own messages, held both cores for about 0.9 s, and every message
        // behind it waited that long (display p99 0.7-1.1 s in half the runs).
        this.held = held;
        this.queue.unshift(AGAIN);
        return;
      }
    }
    if (gap || (expired && held.length > 0) || held.length > MAX_QUEUED) {
      this.release();
      await this.deps.sync();
      return;
    }
    this.held = held;
    if (held.length > 0) this.hold();
    else this.release();
  }

  /** Opens a run in chunks of LIVE_OPEN_CHUNK on the calling thread, a turn of the event loop between them. */
  private async openRun(run: MailboxItem[]): Promise<ChatMessage[]> {
    const opened: ChatMessage[] = [];
    for (let i = 0; i < run.length; i += LIVE_OPEN_CHUNK) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      opened.push(...(await this.deps.open(run.slice(i, i + LIVE_OPEN_CHUNK))));
    }
    return opened;
  }

  /**
   * A hold ran out: reads the gap between the cursor and the first held delivery (one page of at
   * most GAP_PAGE after the cursor, see gapLimit), then stores the gap and the held deliveries that follow it as one
   * run. Returns the deliveries still held behind a further gap, or null when this could not
   * close the gap (the page ends before it, the read failed, the cursor moved): a sync decides,
   * or, when the cursor moved, the held deliveries are judged again (apply).
   * The gap's live deliveries, when they come, are behind the cursor and dropped.
   */
  private async fillGap(held: Checked[]): Promise<Checked[] | null> {
    const { cache } = this.deps;
    const start = cache.cursor;
    const first = held[0]!;
    const until = BigInt(first.prev!);
    let page: { items: MailboxItem[]; more: boolean };
    try {
      page = await this.deps.fetch!(start, gapLimit(start, until));
    } catch (err) {
      this.deps.warn(err, "reading a gap in the live deliveries failed");
      return null;
    }
    const run: MailboxItem[] = [];
    let at = start;
    for (const item of page.items) {
      // In mailbox order after the cursor: the gap ends at the first held delivery's predecessor.
      if (BigInt(item.cursor) > until || (at !== null && BigInt(item.cursor) <= BigInt(at))) break;
      run.push(item);
      at = item.cursor;
      if (at === first.prev) break;
    }
    if (at !== first.prev) return null;
    let k = 0;
    for (; k < held.length && held[k]!.prev === at; k++) {
      run.push(held[k]!.item);
      at = held[k]!.item.cursor;
    }
    const opened = await this.openRun(run);
    const fresh = cache.addNext(opened, start, at!);
    if (fresh === null) return null;
    for (const m of fresh) this.deps.emit(m);
    if (fresh.length < opened.length) this.deps.alreadyStored?.(cache.cursor ?? at!);
    return held.slice(k);
  }
}

/**
 * How many items a gap read asks for: the gap ends at `until` (the first held delivery's
 * predecessor), and mailbox cursors grow by at least one per item, so it holds at most
 * `until - cursor` items; never more than GAP_PAGE.
 */
export function gapLimit(cursor: string | null, until: bigint): number {
  const most = cursor === null ? until : until - BigInt(cursor);
  return most < 1n ? 1 : most < BigInt(GAP_PAGE) ? Number(most) : GAP_PAGE;
}

/** One delivery frame as the deliveries it holds: a `deliver.many` expanded one level (malformed: null, a sync). */
function expand(frame: unknown): unknown[] {
  if (!isPlainObject(frame) || frame.type !== "deliver.many") return [frame];
  // One level only: a batch inside a batch is a malformed delivery.
  const frames = deliveriesInFrame(frame);
  return frames === null || frames.length === 0 ? [null] : frames;
}

/** A run's queue with its raw frames parsed and expanded (not JSON: null, a malformed delivery). */
function* parsed(batch: readonly unknown[]): Generator<unknown> {
  for (const frame of batch) {
    if (!(frame instanceof Uint8Array)) {
      yield frame;
      continue;
    }
    let value: unknown = null;
    try {
      value = JSON.parse(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString("utf8"));
    } catch {}
    yield* expand(value);
  }
}

/** A delivery frame's mailbox cursor when it is well formed and the frame is `me`'s; else null. */
function cursorOf(frame: unknown, me: string): string | null {
  if (!isPlainObject(frame) || frame.owner !== me || frame.type !== "deliver" || !isPlainObject(frame.item))
    return null;
  const { cursor } = frame.item;
  return typeof cursor === "string" && CURSOR.test(cursor) ? cursor : null;
}
