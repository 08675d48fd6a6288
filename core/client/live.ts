import { deliveryFrameSchema, type MailboxItem } from "../protocol/schema.js";
import type { Cache, ChatMessage } from "./cache.js";

/** What live deliveries need from the client around them. */
export interface LiveDeps {
  cache: Pick<Cache, "covers" | "addNext" | "cursor">;
  /** Opens (verifies, decrypts) mailbox items; items held for a key change are kept aside and left out. */
  open(items: MailboxItem[]): Promise<ChatMessage[]>;
  /** Reads the mailbox from the cursor (coalesced: a call during a sync makes it go round once more). */
  sync(): Promise<number>;
  /** The sync under way, if any. */
  running(): Promise<number> | null;
  emit(message: ChatMessage): void;
  warn(err: unknown, what: string): void;
}

/** Deliveries waiting beyond this are dropped for one sync, which reads them from the mailbox. */
const MAX_QUEUED = 2000;

/**
 * Applies live deliveries one at a time, in arrival order. A delivery whose mailbox predecessor
 * (`prev`) is where the cache's cursor is gets opened and stored directly, moving the cursor
 * (Cache.addNext checks and moves in one transaction); one at or behind the cursor is already in
 * the cache (the sender's own copy, stored from its acknowledgement, or a sync) and is dropped;
 * anything else — a gap, a delivery from a server that does not say `prev` — makes a sync from
 * the cursor. The mailbox stays the one truth: the cursor never moves past an item not stored.
 */
export class LiveDeliveries {
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    private readonly me: string,
    private readonly deps: LiveDeps,
  ) {}

  /** Takes one parsed delivery frame (group notices are handled elsewhere). */
  push(frame: unknown): void {
    if (this.queued >= MAX_QUEUED) {
      this.syncLater();
      return;
    }
    this.queued++;
    this.chain = this.chain
      .then(() => this.apply(frame))
      .catch((err) => {
        this.deps.warn(err, "applying a live delivery failed");
        this.syncLater();
      })
      .finally(() => {
        this.queued--;
      });
  }

  /** Resolves once every delivery pushed so far is applied (or handed to a sync). */
  idle(): Promise<void> {
    return this.chain;
  }

  private syncLater(): void {
    void this.deps.sync().catch((err) => this.deps.warn(err, "sync after a delivery failed"));
  }

  private async apply(frame: unknown): Promise<void> {
    const parsed = deliveryFrameSchema.safeParse(frame);
    if (!parsed.success || parsed.data.owner !== this.me || parsed.data.prev === undefined) {
      await this.deps.sync();
      return;
    }
    const { item, prev } = parsed.data;
    const running = this.deps.running();
    if (running) await running.catch(() => 0);
    const { cache } = this.deps;
    if (cache.covers(item.cursor)) return;
    if (cache.cursor !== prev) {
      await this.deps.sync();
      return;
    }
    const opened = await this.deps.open([item]);
    const fresh = cache.addNext(opened, prev, item.cursor);
    if (fresh === null) {
      await this.deps.sync();
      return;
    }
    for (const m of fresh) this.deps.emit(m);
  }
}
