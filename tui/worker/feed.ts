/**
 * The message feed: turns what the client reports into `arrived` actions, each message once,
 * batched per tick. Messages another process of the profile stored first (the client reports
 * them as `already_stored`) are read from the shared cache by `catchUp`.
 */

import type { Cache, ChatMessage } from "../../core/client/cache.js";
import type { WorkerContext } from "./context.js";
import { ordLess, SEEN_MARK } from "./reads.js";

/** Messages read from the cache per page when catching up. */
const PAGE = 500;
/** Pages read per catch-up at most; the rest comes with the next one. */
const MAX_PAGES = 20;

export class Feed {
  /** Ids already shown (or loaded with a history page): never reported twice. */
  private readonly seen = new Set<string>();
  private queue: ChatMessage[] = [];
  private flushing: NodeJS.Immediate | null = null;
  /** The cache position up to which messages were shown; saved as the seen mark on stop. */
  private mark: string | null = null;

  constructor(private readonly ctx: Pick<WorkerContext, "dispatch" | "stopped" | "log">) {}

  /** Starts from what the cache holds: up to its cursor, messages count as shown. */
  seed(cache: Cache): void {
    this.mark = cache.cursor;
    for (const m of cache.after(this.mark, 10_000)) this.seen.add(m.id);
  }

  /** Records messages shown by other means (a history page, our own send). */
  see(ids: Iterable<string>): void {
    for (const id of ids) this.seen.add(id);
  }

  /** Queues new messages; one `arrived` action per tick keeps a big sync from re-rendering per message. */
  accept(messages: readonly ChatMessage[]): void {
    for (const m of messages) {
      if (this.seen.has(m.id)) continue;
      this.seen.add(m.id);
      this.queue.push(m);
    }
    if (this.queue.length > 0 && !this.flushing) {
      this.flushing = setImmediate(() => {
        this.flushing = null;
        const batch = this.queue;
        this.queue = [];
        if (!this.ctx.stopped() && batch.length > 0) this.ctx.dispatch({ type: "arrived", messages: batch });
      });
    }
  }

  /**
   * Reads what the shared cache holds past the mark (what other processes of this profile
   * stored there before this client could report it) and moves the mark to the cache's cursor.
   */
  catchUp(cache: Cache): void {
    try {
      const fence = cache.cursor;
      let from = this.mark;
      for (let page = 0; page < MAX_PAGES; page++) {
        const batch = cache.after(from, PAGE);
        this.accept(batch);
        if (batch.length < PAGE) break;
        from = batch.at(-1)!.cursor;
      }
      if (fence !== null && (this.mark === null || ordLess(this.mark, fence))) {
        this.mark = fence;
        cache.setState(SEEN_MARK, fence);
      }
    } catch (err) {
      this.ctx.log.warn({ err }, "reading the shared cache failed");
    }
  }

  /**
   * Saves how far messages were shown, so the next start counts unread from there: up to the
   * cache's cursor, since every message up to it was reported by the client or read by `catchUp`.
   */
  save(cache: Cache): void {
    try {
      const cursor = cache.cursor;
      if (cursor !== null && (this.mark === null || ordLess(this.mark, cursor))) this.mark = cursor;
      if (this.mark !== null) cache.setState(SEEN_MARK, this.mark);
    } catch (err) {
      this.ctx.log.warn({ err }, "could not save the seen mark");
    }
  }

  stop(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = null;
  }
}
