import type Database from "better-sqlite3";
import type { ChatMessage, ReceiptExtra } from "./message.js";
import { SharedReadState } from "./read-state.js";

/**
 * Delivery and read receipts (issue 17).
 *
 * A receipt is a message like any other on the wire: sealed for its author, signed by the reader,
 * stored in both mailboxes, numbered in the reader's sequence of that 1:1 conversation and
 * recovered by sync; what makes it a receipt is sealed beside the text (the envelope's `extra`,
 * see actions.ts), so the service cannot tell a receipt from a message, nor forge one.
 *
 * - "delivered": a device of the reader stored the message in its cache (any client: CLI, TUI,
 *   daemon, `listen`). "read": the reader was shown it — the TUI showing the conversation, or
 *   `zmqchat history` printing it to a terminal (or with `--mark-read`): output read by a script
 *   (`history --json` into a pipe) is not someone reading, so it does not count unless asked.
 * - Batched: receipts wait in the cache (`receipts_out`, so a command that exits first sends them
 *   next time) and go out as ONE event per author and conversation per burst, naming up to
 *   MAX_RECEIPT_IDS ids. One receipt per message would double what every message costs the
 *   service (a second sealed, signed, stored envelope in two mailboxes for each one, and a third
 *   when it is read) and make a recovery of thousands of messages send thousands of receipts.
 * - Group receipts go to the author alone, as a 1:1 event naming the group, not to the group:
 *   sent to the group they would cost every member's mailbox members × messages entries.
 * - Status of an own message: "read" when every recipient read it, "delivered" when every
 *   recipient's device stored it (a read receipt counts as delivered), else "sent" (stored by the
 *   service). The recipients are the ones this device sealed for (recorded at send); for a group
 *   message sent from another device of the user, which this device cannot know, the status
 *   stays "sent" and `readBy` still lists who read it. A receipt counts only from a recipient of
 *   that message: a 1:1 receipt only from the peer of that conversation, a group receipt only for
 *   a message of the group it names.
 * - With `readReceipts: false` no read receipt is sent and none is shown (as in Signal): status
 *   stops at "delivered" and `readBy` is empty.
 *
 * Tables (in the cache's database): `receipts` (id, reader, status, grp, at) as received;
 * `receipts_out` (id, author, grp, status) waiting to be sent; `receipt_expect` (id, names) the
 * recipients of own sends; `read_local` (conv → cursor of the newest message shown here).
 */

/** Most message ids one receipt event names (36 characters each: about 3.7 KB). */
export const MAX_RECEIPT_IDS = 100;

/**
 * Most rows of the queue one read takes (`window`): a flush sends what it read before it reads
 * on, so a long queue (receipts queued faster than the service takes them, or a flush that stops
 * when the service is away) costs a flush what it sends, not the whole queue every 250 ms.
 */
export const RECEIPT_READ_ROWS = 10 * MAX_RECEIPT_IDS;

/** Read receipts remembered as sent (see `sent`): about 40 bytes each on disk. */
const MAX_SENT_KEPT = 50_000;

export type ReceiptStatus = "delivered" | "read";

export type { ReceiptExtra } from "./message.js";

/** One receipt event to send: to `author`, about messages of `group` (null: their 1:1 conversation). */
export interface ReceiptBatch {
  author: string;
  group: string | null;
  status: ReceiptStatus;
  ids: string[];
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS receipts (
  id TEXT NOT NULL,
  reader TEXT NOT NULL,
  status TEXT NOT NULL,
  grp TEXT,
  at TEXT NOT NULL,
  PRIMARY KEY (id, reader, status)
);
CREATE TABLE IF NOT EXISTS receipts_out (
  id TEXT NOT NULL,
  author TEXT NOT NULL,
  grp TEXT,
  status TEXT NOT NULL,
  PRIMARY KEY (id, status)
);
CREATE TABLE IF NOT EXISTS receipts_sent (id TEXT NOT NULL, status TEXT NOT NULL, PRIMARY KEY (id, status));
DELETE FROM receipts_sent WHERE status = 'delivered';
CREATE TABLE IF NOT EXISTS receipt_expect (id TEXT PRIMARY KEY, names TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS read_local (conv TEXT PRIMARY KEY, cursor TEXT NOT NULL);
`;

interface ReceiptRow {
  id: string;
  reader: string;
  status: ReceiptStatus;
  grp: string | null;
}

/** The cache's receipts (see the file header). */
export class ReceiptStore {
  private readonly stmts;
  /** The profile's user (set by the client): only their messages have a status. */
  owner: string | null = null;
  /** False: read receipts are neither queued nor shown (config `readReceipts`). */
  readReceipts = true;
  /** How many read receipts are remembered as sent (see `sent`). */
  sentKept = MAX_SENT_KEPT;
  /** Called (inside the writing transaction) when receipts wait to be sent. */
  onPending: (() => void) | null = null;
  /** Called after the writing transaction with the receipts that just arrived, for views. */
  onReceived: ((r: { from: string; status: ReceiptStatus; ids: string[] }) => void) | null = null;
  /** Called after the writing transaction with the conversations read on another device of the user (read-state.ts). */
  onReadElsewhere: ((convs: string[]) => void) | null = null;
  /** The read marks shared by the user's devices (read-state.ts). */
  readonly shared: SharedReadState;

  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
    this.shared = new SharedReadState(db);
    this.stmts = {
      insertMany: db.prepare<[string, string, string | null, string, string]>(
        "INSERT OR IGNORE INTO receipts (id, reader, status, grp, at) SELECT value, ?, ?, ?, ? FROM json_each(?)",
      ),
      queue: db.prepare(
        "INSERT OR IGNORE INTO receipts_out (id, author, grp, status) SELECT @id, @author, @grp, @status WHERE NOT EXISTS (SELECT 1 FROM receipts_sent WHERE id = @id AND status = @status)",
      ),
      // Without a look-up in receipts_sent per message: it holds no "delivered" rows (see `sent`;
      // SCHEMA drops those an older cache kept), and `landed` queues a message once, when it is new.
      queueDelivered: db.prepare<[string]>(
        "INSERT OR IGNORE INTO receipts_out (id, author, grp, status) SELECT value->>0, value->>1, value->>2, 'delivered' FROM json_each(?)",
      ),
      pending: db.prepare<
        [number, number],
        { n: number; id: string; author: string; grp: string | null; status: ReceiptStatus }
      >(
        "SELECT rowid AS n, id, author, grp, status FROM receipts_out WHERE rowid > ? ORDER BY rowid LIMIT ?",
      ),
      done: db.prepare("DELETE FROM receipts_out WHERE id = ? AND status = ?"),
      doneMany: db.prepare<[string, string]>(
        "DELETE FROM receipts_out WHERE status = ? AND id IN (SELECT value FROM json_each(?))",
      ),
      sentMany: db.prepare<[string]>(
        "INSERT OR IGNORE INTO receipts_sent (id, status) SELECT value, 'read' FROM json_each(?)",
      ),
      prune: db.prepare<[number]>(
        "DELETE FROM receipts_sent WHERE rowid <= (SELECT max(rowid) FROM receipts_sent) - ?",
      ),
      any: db.prepare<[], { id: string }>("SELECT id FROM receipts_out LIMIT 1"),
      readSent: db.prepare<[string, string], { id: string }>(
        "SELECT id FROM receipts_out WHERE id = ? AND status = 'read' UNION ALL SELECT id FROM receipts_sent WHERE id = ? AND status = 'read' LIMIT 1",
      ),
      expect: db.prepare("INSERT OR IGNORE INTO receipt_expect (id, names) VALUES (?, ?)"),
      expected: db.prepare<[string], { names: string }>("SELECT names FROM receipt_expect WHERE id = ?"),
      of: db.prepare<[string], ReceiptRow>("SELECT id, reader, status, grp FROM receipts WHERE id = ?"),
      readMark: db.prepare<[string], { cursor: string }>("SELECT cursor FROM read_local WHERE conv = ?"),
      setReadMark: db.prepare(
        "INSERT INTO read_local (conv, cursor) VALUES (?, ?) ON CONFLICT(conv) DO UPDATE SET cursor = excluded.cursor WHERE CAST(excluded.cursor AS INTEGER) > CAST(read_local.cursor AS INTEGER)",
      ),
    };
  }

  /** A receipt event arrived (from the mailbox, the live path or our own acknowledgement). */
  record(m: ChatMessage & { receipt: ReceiptExtra }): void {
    if (!m.verified) return;
    // The user's own "delivered" receipts (this device's, acknowledged, or another device's) say
    // nothing here: `apply` passes over the user's own rows, and only own "read" receipts move
    // read marks. Kept, they cost a row per message received (a group bench member: one insert
    // into `receipts` and its primary key per delivery, in the ack of each receipt it sent).
    if (m.from === this.owner && m.receipt.status === "delivered") return;
    // One statement for the up to MAX_RECEIPT_IDS ids of the event.
    const fresh = this.stmts.insertMany.run(
      m.from,
      m.receipt.status,
      m.receipt.group,
      m.sentAt,
      JSON.stringify(m.receipt.ids),
    ).changes;
    if (fresh > 0 && m.from !== this.owner) {
      const r = { from: m.from, status: m.receipt.status, ids: m.receipt.ids };
      queueMicrotask(() => this.onReceived?.(r));
    }
    if (fresh > 0 && m.from === this.owner && m.receipt.status === "read")
      this.readElsewhere(this.shared.learned(m.receipt.ids, m.to !== this.owner));
  }

  private readElsewhere(convs: string[]): void {
    if (convs.length > 0) queueMicrotask(() => this.onReadElsewhere?.(convs));
  }

  /**
   * A message just stored: someone else's verified message gets a "delivered" receipt (queued at
   * once, or pushed on `later` for `queueDelivered`).
   */
  landed(m: ChatMessage, later?: ChatMessage[]): void {
    if (m.sealedFor) this.expect(m.id, m.sealedFor);
    if (this.owner === null || m.from === this.owner) return;
    if (this.shared.landed(m)) this.readElsewhere([m.conv]);
    if (!m.verified) return;
    if (later) later.push(m);
    else this.queue(m, "delivered");
  }

  /** Queues "delivered" receipts for messages `landed` pushed on its `later`, in one statement. */
  queueDelivered(messages: readonly ChatMessage[]): void {
    if (messages.length === 0) return;
    const rows = JSON.stringify(messages.map((m) => [m.id, m.from, m.group]));
    if (this.stmts.queueDelivered.run(rows).changes > 0) this.onPending?.();
  }

  /** Recipients this device sealed an own message for (its status is judged against them). */
  expect(id: string, recipients: string[]): void {
    this.stmts.expect.run(id, JSON.stringify(recipients.filter((r) => r !== this.owner)));
  }

  /**
   * The user was shown these messages: queues read receipts for the others' ones (unless read
   * receipts are off) and moves the conversation's read mark (the "new messages" divider).
   */
  markRead(messages: ChatMessage[]): void {
    const before = new Map<string, string | null>();
    for (const m of messages) {
      if (!before.has(m.conv)) before.set(m.conv, this.readMark(m.conv));
      this.stmts.setReadMark.run(m.conv, m.cursor);
      if (this.readReceipts && m.from !== this.owner && m.verified && !m.deleted) this.queue(m, "read");
    }
    // What no receipt to an author tells the user's other devices goes to the user (read-state.ts).
    const owner = this.owner;
    if (owner === null) return;
    for (const m of this.shared.uncovered(messages, owner, before, (id) => this.readSent(id)))
      this.queue({ ...m, from: owner }, "read");
  }

  /** True when a read receipt for `id` waits or went (to its author or to the user). */
  private readSent(id: string): boolean {
    return this.stmts.readSent.get(id, id) !== undefined;
  }

  /** The cursor of the newest message read in a conversation, on this device or another of the user's (read-state.ts), or null. */
  readMark(conv: string): string | null {
    return this.stmts.readMark.get(conv)?.cursor ?? null;
  }

  private queue(m: ChatMessage, status: ReceiptStatus): void {
    if (this.stmts.queue.run({ id: m.id, author: m.from, grp: m.group, status }).changes > 0)
      this.onPending?.();
  }

  /**
   * What waits to be sent, as receipt events: one per author, conversation and status, at most
   * MAX_RECEIPT_IDS ids each. A "delivered" for a message also waiting as "read" is dropped: the
   * read receipt says both.
   */
  batches(): ReceiptBatch[] {
    return this.window(0, -1).batches;
  }

  /**
   * `batches` over the part of the queue after row `after`, at most `limit` rows (-1: all of it),
   * and the last row read (null: none), to read on from. The "delivered" dropped for a "read" is
   * one in the same window (a "read" further on, after a long queue, sends both: harmless, the
   * author keeps each once).
   */
  window(after: number, limit: number): { batches: ReceiptBatch[]; last: number | null } {
    const rows = this.stmts.pending.all(after, limit);
    // Per author: a read receipt to the user herself (read-state.ts) says nothing to the author.
    const read = new Set(rows.filter((r) => r.status === "read").map((r) => `${r.author}\0${r.id}`));
    const byKey = new Map<string, ReceiptBatch>();
    const out: ReceiptBatch[] = [];
    // The batch of the row before: a burst's rows are mostly one author's, one conversation's, one
    // status (a group member: one "delivered" per message of the group), so most rows join it
    // without a key string built and looked up for each (the group bench: once per delivery).
    let last: ReceiptBatch | null = null;
    for (const r of rows) {
      if (read.size > 0 && r.status === "delivered" && read.has(`${r.author}\0${r.id}`)) {
        this.stmts.done.run(r.id, r.status);
        continue;
      }
      if (
        last !== null &&
        last.author === r.author &&
        last.group === r.grp &&
        last.status === r.status &&
        last.ids.length < MAX_RECEIPT_IDS
      ) {
        last.ids.push(r.id);
        continue;
      }
      const key = `${r.author}\0${r.grp ?? ""}\0${r.status}`;
      let b = byKey.get(key);
      if (!b || b.ids.length >= MAX_RECEIPT_IDS) {
        b = { author: r.author, group: r.grp, status: r.status, ids: [] };
        byKey.set(key, b);
        out.push(b);
      }
      b.ids.push(r.id);
      last = b;
    }
    return { batches: out, last: rows.at(-1)?.n ?? null };
  }

  /** True when receipts wait to be sent. */
  waiting(): boolean {
    return this.stmts.any.get() !== undefined;
  }

  /**
   * A batch went out (or can never go): it is not sent again. One transaction, one statement per
   * table: this runs for every batch of a busy conversation, and one autocommit per id and table
   * stalled the event loop for tens of milliseconds per batch.
   *
   * Only read receipts are remembered as sent (`receipts_sent`, the newest MAX_SENT_KEPT): a
   * "delivered" is queued once, when the message is first stored, so it cannot come again; a
   * "read" is queued each time a view shows the message. A read receipt for a message shown again
   * after its row was pruned goes out once more, which the author stores once (receipts are keyed
   * by id, reader and status).
   */
  sent(b: ReceiptBatch): void {
    const ids = JSON.stringify(b.ids);
    this.db
      .transaction(() => {
        this.stmts.doneMany.run(b.status, ids);
        if (b.status !== "read") return;
        // A read receipt to the author says "delivered" too; one to the user herself does not.
        if (b.author !== this.owner) this.stmts.doneMany.run("delivered", ids);
        this.stmts.sentMany.run(ids);
        this.stmts.prune.run(this.sentKept);
      })
      .immediate();
  }

  /**
   * Own messages get `status` ("sent", "delivered", "read") and, in groups, `readBy`; others'
   * messages get null for both (the keys are always there, so `--json` lines keep one shape).
   */
  apply(messages: ChatMessage[]): ChatMessage[] {
    return messages.map((m) => {
      if (this.owner === null || m.from !== this.owner || !m.verified)
        return { ...m, status: null, readBy: null };
      const delivered = new Set<string>();
      const read = new Set<string>();
      for (const r of this.stmts.of.all(m.id)) {
        if (r.reader === this.owner) continue;
        // A receipt counts only from someone the message was for, for the conversation it names.
        if (m.group === null ? r.grp !== null || r.reader !== m.to : r.grp !== m.group) continue;
        delivered.add(r.reader);
        if (r.status === "read" && this.readReceipts) read.add(r.reader);
      }
      const expectedRow = this.stmts.expected.get(m.id);
      const expected: string[] | null = expectedRow
        ? (JSON.parse(expectedRow.names) as string[])
        : m.group === null && m.to !== null
          ? [m.to]
          : null;
      const counted = (s: Set<string>) => (expected ? expected.filter((n) => s.has(n)) : [...s]);
      const all = (s: Set<string>) => expected !== null && counted(s).length === expected.length;
      const status = all(read) ? "read" : all(delivered) ? "delivered" : "sent";
      return { ...m, status, readBy: m.group === null ? null : counted(read).sort() };
    });
  }
}
