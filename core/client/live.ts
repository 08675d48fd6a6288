import { checkDeliveryFrame } from "../protocol/delivery-check.js";
import type { MailboxItem } from "../protocol/schema.js";
import type { Cache, ChatMessage } from "./cache.js";

/** What live deliveries need from the client around them. */
export interface LiveDeps {
  cache: Pick<Cache, "addNext" | "cursor">;
  /** Opens (verifies, decrypts) mailbox items; items held for a key change are kept aside and left out. */
  open(items: MailboxItem[]): Promise<ChatMessage[]>;
  /** Reads the mailbox from the cursor (coalesced: a call during a sync makes it go round once more). */
  sync(): Promise<number>;
  /** The sync under way, if any. */
  running(): Promise<number> | null;
  emit(message: ChatMessage): void;
  /** Deliveries were found already in the shared cache, which holds the mailbox up to `cursor` (another process of this profile, or our ack, stored them). */
  alreadyStored?(cursor: string): void;
  warn(err: unknown, what: string): void;
}

/** Deliveries waiting beyond this are dropped for one sync, which reads them from the mailbox. */
const MAX_QUEUED = 2000;

/**
 * Applies live deliveries in arrival order, each run of those that queued up meanwhile at once.
 * A delivery whose mailbox predecessor (`prev`) is where the cache's cursor is (or the delivery
 * before it in the run) gets opened and stored directly, moving the cursor (Cache.addNext checks
 * and moves in one transaction); one at or behind the cursor is already in
 * the cache (the sender's own copy, stored from its acknowledgement, or a sync) and is dropped;
 * anything else — a gap, a delivery from a server that does not say `prev` — makes a sync from
 * the cursor. The mailbox stays the one truth: the cursor never moves past an item not stored.
 */
export class LiveDeliveries {
  private queue: unknown[] = [];
  private draining: Promise<void> | null = null;

  constructor(
    private readonly me: string,
    private readonly deps: LiveDeps,
  ) {}

  /** Takes one parsed delivery frame (group notices are handled elsewhere). */
  push(frame: unknown): void {
    if (this.queue.length >= MAX_QUEUED) {
      this.syncLater();
      return;
    }
    this.queue.push(frame);
    // Started a turn later, so that frames arriving together are applied as one run.
    this.draining ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain());
  }

  /** Resolves once every delivery pushed so far is applied (or handed to a sync). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Applies what has queued up, a whole run at a time: one open call and one cache transaction per run. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        try {
          await this.apply(batch);
        } catch (err) {
          this.deps.warn(err, "applying a live delivery failed");
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

  private async apply(batch: unknown[]): Promise<void> {
    const running = this.deps.running();
    if (running) await running.catch(() => 0);
    const { cache } = this.deps;
    const start = cache.cursor;
    let at = start;
    const run: MailboxItem[] = [];
    let gap = false;
    let stored: string | null = null;
    for (const frame of batch) {
      // Checked by hand as deliveryFrameSchema would (delivery-check.ts), without Zod's cost.
      const parsed = checkDeliveryFrame(frame);
      if (parsed === null || parsed.owner !== this.me) {
        gap = true;
        continue;
      }
      const { item, prev } = parsed;
      // At or behind the cursor: already stored (our own copy from its ack, a sync, a repeat).
      if (at !== null && BigInt(item.cursor) <= BigInt(at)) {
        stored = item.cursor;
        continue;
      }
      if (prev === undefined) gap = true;
      else if (prev === at) {
        run.push(item);
        at = item.cursor;
      } else gap = true;
    }
    if (run.length > 0 && at !== null) {
      const opened = await this.deps.open(run);
      const fresh = cache.addNext(opened, start, at);
      // The cursor moved meanwhile: another process of this profile stored (at least some of) these.
      if (fresh === null) {
        gap = true;
        stored = at;
      } else {
        for (const m of fresh) this.deps.emit(m);
        // Some were in the cache already (stored by another process without moving the cursor).
        if (fresh.length < opened.length) stored = at;
      }
    }
    if (stored !== null) this.deps.alreadyStored?.(cache.cursor ?? stored);
    if (gap) await this.deps.sync();
  }
}
