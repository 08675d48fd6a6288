import type { Cache, ChatMessage } from "./cache.js";

interface Acked {
  message: ChatMessage;
  /** The sender's mailbox position before its copy, when the service said it. */
  prev: string | null | undefined;
  /** Take the message out of the outbox in the same transaction. */
  dequeue: boolean;
  resolve(fresh: ChatMessage[]): void;
  reject(err: unknown): void;
}

/**
 * Stores acknowledged sends in one cache transaction per event-loop turn instead of one (or
 * two, with the outbox) per message: with many sends in flight, acknowledgements come in
 * bursts. Each acknowledged copy that follows the cursor moves it (Cache.addAcked), so the live
 * delivery of our own copy finds it already stored; any other is stored without moving the
 * cursor, and the mailbox copy takes its place when a delivery or sync brings it.
 */
export class AckBatch {
  private pending: Acked[] = [];

  constructor(private readonly cache: Cache) {}

  /** Resolves with the message when it was not in the cache before (to be shown), else with nothing. */
  add(message: ChatMessage, prev: string | null | undefined, dequeue: boolean): Promise<ChatMessage[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ message, prev, dequeue, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    // In mailbox order, so a burst of our own copies moves the cursor along in one go.
    const ordered = [...batch].sort((a, b) => compare(a.message.cursor, b.message.cursor));
    let fresh: boolean[];
    try {
      fresh = this.cache.addAcked(ordered);
    } catch (err) {
      for (const a of batch) a.reject(err);
      return;
    }
    ordered.forEach((a, i) => {
      a.resolve(fresh[i] ? [a.message] : []);
    });
  }
}

function compare(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
