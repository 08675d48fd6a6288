import type { Feed } from "./connection.js";

/** What the feed reads: the client cache's messages in mailbox order, and a place to keep its mark. */
export interface FeedSource<M extends { cursor: string }> {
  after(cursor: string | null, limit: number): M[];
  getState(key: string): string | null;
  setState(key: string, value: string): void;
}

const order = (c: string | null): bigint => (c === null ? -1n : BigInt(c));

/**
 * Subscriptions driven from the cache, not from live events: a subscriber starts after the
 * daemon's mark (kept in the cache, so it survives the daemon) and reads forward, so it gets
 * every message once and in mailbox order, also those that arrived while no daemon ran. The
 * mark moves to the least position every subscriber has written to its peer, and never back:
 * with one subscriber, a restarted daemon carries on exactly where it stopped.
 */
export class CacheFeed<M extends { cursor: string }> implements Feed {
  private readonly positions = new Map<object, string | null>();

  constructor(
    private readonly source: FeedSource<M>,
    /** The notification's params for a message, or null to skip it (your own messages). */
    private readonly params: (m: M) => unknown | null,
    private readonly key = "daemon_mark",
  ) {}

  start(): string | null {
    return this.source.getState(this.key);
  }

  after(after: string | null, limit: number): { items: unknown[]; last: string | null } {
    const rows = this.source.after(after, limit);
    if (rows.length === 0) return { items: [], last: null };
    const items: unknown[] = [];
    for (const m of rows) {
      const p = this.params(m);
      if (p !== null) items.push(p);
    }
    return { items, last: rows.at(-1)!.cursor };
  }

  handed(conn: object, cursor: string | null): void {
    this.positions.set(conn, cursor);
    let least: string | null | undefined;
    for (const c of this.positions.values()) if (least === undefined || order(c) < order(least)) least = c;
    const mark = this.start();
    if (least !== undefined && least !== null && order(least) > order(mark))
      this.source.setState(this.key, least);
  }

  leave(conn: object): void {
    this.positions.delete(conn);
  }

  /** How many connections are subscribed. */
  get subscribers(): number {
    return this.positions.size;
  }
}
