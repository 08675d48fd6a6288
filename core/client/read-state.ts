import type Database from "better-sqlite3";
import type { ChatMessage } from "./message.js";

/**
 * Read state shared across a user's devices (issue #19, with the receipts of issue 17).
 *
 * No event of its own: a read receipt is stored in the reader's mailbox as well as the author's
 * (receipts.ts), so every device of the reader gets a copy of it, signed by the reader. A device
 * that gets its own user's verified "read" receipt learns that those messages were read on another
 * device: it moves the conversation's read mark (`read_local`) up to them, and neither sends nor
 * keeps waiting a receipt of its own for them (the author was told once).
 *
 * When no receipt to an author says it — read receipts are off on the reading device, or the
 * newest message shown is deleted or unverified — the reading device sends the same receipt event
 * to its own user instead (`selfReceipts`): sealed for the user's devices only, so nobody else
 * learns what was read. Older clients take it as a receipt from the user, which shows nothing.
 *
 * Marks only move forward (the newest message read), so a replayed or stale receipt never moves a
 * mark back; a receipt from anyone but the user, or one that does not verify, moves nothing.
 */
export class SharedReadState {
  private readonly stmts;
  /**
   * Messages read on another device that were not cached here yet wait in `read_pending`; while
   * none does (known to this process), a message that lands costs no look-up.
   */
  private pending: boolean;

  /** `db` holds the cache's `messages` and the receipts' tables (receipts.ts makes them first). */
  constructor(db: Database.Database) {
    db.exec("CREATE TABLE IF NOT EXISTS read_pending (id TEXT PRIMARY KEY)");
    this.stmts = {
      place: db.prepare<[string], { conv: string; cursor: string }>(
        "SELECT conv, cursor FROM messages WHERE id = ?",
      ),
      wait: db.prepare("INSERT OR IGNORE INTO read_pending (id) VALUES (?)"),
      waited: db.prepare("DELETE FROM read_pending WHERE id = ?"),
      anyWaiting: db.prepare<[], { id: string }>("SELECT id FROM read_pending LIMIT 1"),
      mark: db.prepare<[string], { cursor: string }>("SELECT cursor FROM read_local WHERE conv = ?"),
      setMark: db.prepare(
        "INSERT INTO read_local (conv, cursor) VALUES (?, ?) ON CONFLICT(conv) DO UPDATE SET cursor = excluded.cursor WHERE CAST(excluded.cursor AS INTEGER) > CAST(read_local.cursor AS INTEGER)",
      ),
      unqueue: db.prepare("DELETE FROM receipts_out WHERE id = ? AND status = ?"),
      sent: db.prepare("INSERT OR IGNORE INTO receipts_sent (id, status) VALUES (?, 'read')"),
    };
    this.pending = this.stmts.anyWaiting.get() !== undefined;
  }

  /** The cursor of the newest message read in `conv` on any device of this profile's user, or null. */
  mark(conv: string): string | null {
    return this.stmts.mark.get(conv)?.cursor ?? null;
  }

  /**
   * Moves `conv`'s read mark to `cursor` unless it is already there or past it; true when it moved.
   * (`read_local` compares as integers: cursors are decimal mailbox positions.)
   */
  advance(conv: string, cursor: string): boolean {
    return this.stmts.setMark.run(conv, cursor).changes > 0;
  }

  /**
   * The user's own verified "read" receipt arrived (sent by any of their devices, this one
   * included): the messages it names are read. `toAuthor`: it went to their author (not to the user
   * herself). Returns the conversations whose mark moved.
   * Messages not cached yet (held for a key change) are marked when they land (`landed`).
   */
  learned(ids: readonly string[], toAuthor: boolean): string[] {
    const moved = new Set<string>();
    for (const id of ids) {
      // The author was told (or, for a receipt to the user herself, is not to be told): no read
      // receipt of this device waits for these messages, and none is sent later. A "delivered"
      // still goes when the author was not told "read" (which says both).
      this.stmts.unqueue.run(id, "read");
      if (toAuthor) this.stmts.unqueue.run(id, "delivered");
      this.stmts.sent.run(id);
      const at = this.stmts.place.get(id);
      if (!at) {
        this.stmts.wait.run(id);
        this.pending = true;
      } else if (this.advance(at.conv, at.cursor)) moved.add(at.conv);
    }
    return [...moved];
  }

  /** A message just stored: one the user already read on another device moves its mark. */
  landed(m: ChatMessage): boolean {
    if (!this.pending || this.stmts.waited.run(m.id).changes === 0) return false;
    return this.advance(m.conv, m.cursor);
  }

  /**
   * Of messages just shown, the ones whose reading the user's other devices would not learn from
   * a receipt to an author: per conversation, the newest message of someone else shown, when it
   * is past the mark the conversation had (`before`) and `covered` (a read receipt waits or went
   * for it) is false. The caller sends each as a "read" receipt to the user herself.
   */
  uncovered(
    messages: readonly ChatMessage[],
    owner: string,
    before: ReadonlyMap<string, string | null>,
    covered: (id: string) => boolean,
  ): ChatMessage[] {
    const newest = new Map<string, ChatMessage>();
    for (const m of messages) {
      if (m.from === owner) continue;
      const n = newest.get(m.conv);
      if (!n || BigInt(m.cursor) > BigInt(n.cursor)) newest.set(m.conv, m);
    }
    const out: ChatMessage[] = [];
    for (const [conv, m] of newest) {
      const prior = before.get(conv) ?? null;
      if (prior !== null && BigInt(m.cursor) <= BigInt(prior)) continue;
      if (!covered(m.id)) out.push(m);
    }
    return out;
  }
}

/**
 * Sets `unread` on each message: true for someone else's message past the conversation's read
 * mark (read on none of the user's devices), false otherwise — what `history --json` reports,
 * taken before the command itself marks anything read.
 */
export function withUnread(
  messages: readonly ChatMessage[],
  owner: string,
  mark: (conv: string) => string | null,
): ChatMessage[] {
  const marks = new Map<string, string | null>();
  return messages.map((m) => {
    if (!marks.has(m.conv)) marks.set(m.conv, mark(m.conv));
    const at = marks.get(m.conv) ?? null;
    const unread = m.from !== owner && (at === null || BigInt(m.cursor) > BigInt(at));
    return { ...m, unread };
  });
}
