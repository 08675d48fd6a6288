import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { MailboxItem, PublicKeys } from "../protocol/schema.js";
import { FALLBACK_AUTOCHECKPOINT_PAGES, WalCheckpointer } from "../wal-checkpoint.js";
import { ActionStore, type MessageExtra } from "./actions.js";
import { PresenceBook } from "./ephemeral.js";
import { MuteList, markMentions } from "./mentions.js";
import { type ChatMessage, type MessageRow, messageFromRow } from "./message.js";
import { ReceiptStore } from "./receipts.js";
import { SearchIndex } from "./search.js";

export { type ChatMessage, type MessageRow, messageFromRow } from "./message.js";

export interface Contact {
  name: string;
  keys: PublicKeys;
  pinnedAt: string;
  /** Keys the server presented that differ from the pinned ones, awaiting `keys trust`. */
  pending: PublicKeys | null;
  /** The user compared safety numbers for the pinned keys (`keys verify`); false for keys that came only from the server. */
  verified: boolean;
  /** The keys last verified, when they are not the pinned ones any more (their safety number is shown on a change). */
  verifiedKeys: PublicKeys | null;
}

/**
 * The page size of a new cache. A commit writes every page it touched, whole, to the log (and a
 * checkpoint writes it again), and a live delivery or a sent message touches some six pages (the
 * row, its id, conversation and order indexes, the seen mark, the cursor): with SQLite's 4,096 B
 * pages a 200 B message cost each client some 12 KB of writes. Measured at light load (1,000
 * msg/s, bench light workload, this 2-core machine, the clients' caches alone changed; the
 * servers' store at 1,024 B alone did not help): send → display p99 median of 15 runs 33 ms
 * (25.7-72.7) against 45 ms over 10 runs (38.0-56.8) with 4,096 B pages (2,048 B: 40 ms over 4);
 * the clients wrote half the bytes (6.6 KB a message, was 13). It costs where transactions are
 * large: recovery of 100,000 messages 6.3-6.9 s against 5.8 s, the group flood 6,286 and 7,341
 * deliveries/s against 7,506 and 7,343 (more, smaller pages to fill).
 */
export const CACHE_PAGE_BYTES = 1024;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,
  conv TEXT NOT NULL,
  sender TEXT NOT NULL,
  recipient TEXT,
  grp TEXT,
  text TEXT NOT NULL,
  sent_at TEXT NOT NULL,
  server_time TEXT NOT NULL,
  cursor TEXT NOT NULL,
  ord INTEGER NOT NULL,
  verified INTEGER NOT NULL,
  problem TEXT,
  seq INTEGER NOT NULL,
  device TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conv ON messages(conv, ord);
CREATE INDEX IF NOT EXISTS messages_by_ord ON messages(ord);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
  name TEXT PRIMARY KEY,
  sign_key TEXT NOT NULL,
  enc_key TEXT NOT NULL,
  pinned_at TEXT NOT NULL,
  pending_sign TEXT,
  pending_enc TEXT
);
CREATE TABLE IF NOT EXISTS seqs (conv TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS verified_keys (
  name TEXT PRIMARY KEY,
  sign_key TEXT NOT NULL,
  enc_key TEXT NOT NULL,
  verified_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
  id TEXT PRIMARY KEY,
  sender TEXT NOT NULL,
  item TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mailbox_seen (
  id TEXT NOT NULL,
  cursor TEXT NOT NULL,
  conv TEXT NOT NULL,
  PRIMARY KEY (id, cursor)
);
CREATE TABLE IF NOT EXISTS live_clients (
  id TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  conv TEXT NOT NULL,
  target_user TEXT,
  target_group TEXT,
  text TEXT NOT NULL,
  seq INTEGER NOT NULL,
  sent_at TEXT NOT NULL,
  last_error TEXT
);
`;

/** Columns added after the first release: a cache made before gets them on open. */
const ADDED_COLUMNS: Array<[table: string, column: string, type: string]> = [["outbox", "extra", "TEXT"]];

/** A message composed but not yet acknowledged by the service; kept on disk until it is. */
export interface OutboxItem {
  id: string;
  conv: string;
  target: { user: string } | { group: string };
  text: string;
  seq: number;
  sentAt: string;
  lastError: string | null;
  /** A reply reference or an action, sealed with the text (actions.ts). */
  extra?: MessageExtra;
}

/** How long `alone` trusts its last look at the other clients when the database did not change. */
const ALONE_RECHECK_MS = 5000;

/** Most own copies waiting for the cursor to reach their predecessor (beyond: forgotten; a gap read places them). */
const MAX_CHAINED = 10_000;

/** Our own copy stored from its acknowledgement ahead of the cursor, waiting for the cursor to reach its predecessor. */
interface Chained {
  cursor: string;
  id: string;
  conv: string;
}

/** How soon after a burst of new messages they are indexed for search. */
const INDEX_DELAY_MS = 1000;
/** Messages indexed per slice of the background catch-up (about 1–2 ms of FTS5 work here). */
const INDEX_SLICE = 64;

const COLUMNS =
  "id, conv, sender, recipient, grp, text, sent_at, server_time, cursor, verified, problem, seq, device";

/**
 * The local cache of one profile: opened messages, the sync cursor, pinned keys. SQLite in WAL
 * mode, so the TUI and headless commands can use one profile at the same time. Readable by the
 * user only (0600): it holds decrypted text.
 */
export class Cache {
  private readonly db: Database.Database;
  private readonly stmts;
  /** Copies the write-ahead log into the database off the event loop (null: in memory). */
  readonly checkpointer: WalCheckpointer | null;
  /** Full-text search over the cached messages (`searchMessages` in search.ts). */
  readonly searchIndex: SearchIndex;
  /** Replies, edits, deletes and reactions (actions.ts). */
  readonly actions: ActionStore;
  /** Delivery and read receipts, and the read marks of this profile (receipts.ts). */
  readonly receipts: ReceiptStore;
  /** Contacts' presence as last signalled (ephemeral.ts). */
  readonly presence: PresenceBook;
  /** Conversations this profile muted (mentions.ts). */
  readonly mutes: MuteList;

  constructor(path: string) {
    const inMemory = path === ":memory:";
    if (!inMemory) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fresh = !inMemory && !existsSync(path);
    this.db = new Database(path);
    if (fresh) chmodSync(path, 0o600);
    this.db.pragma("busy_timeout = 10000");
    // Before WAL mode and the first table: a new cache's pages (an existing one keeps its own).
    if (fresh) this.db.pragma(`page_size = ${CACHE_PAGE_BYTES}`);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    // The log is checkpointed on a worker thread (wal-checkpoint.ts), not inside a commit here.
    this.checkpointer = inMemory ? null : new WalCheckpointer(path);
    if (this.checkpointer) this.db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
    this.db.exec(SCHEMA);
    for (const [table, column, type] of ADDED_COLUMNS) {
      const has = this.db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all();
      if (!has.some((c) => c.name === column))
        this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
    this.searchIndex = new SearchIndex(this.db);
    this.actions = new ActionStore(this.db);
    this.receipts = new ReceiptStore(this.db);
    this.presence = new PresenceBook(this.db);
    this.mutes = new MuteList(this.db);
    const db = this.db;
    this.stmts = {
      insert: db.prepare<
        [
          string,
          string,
          string,
          string | null,
          string | null,
          string,
          string,
          string,
          string,
          number,
          string | null,
          number,
          string,
          bigint,
        ]
      >(`INSERT OR IGNORE INTO messages (${COLUMNS}, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      hold: db.prepare("INSERT OR REPLACE INTO held (id, sender, item) VALUES (?, ?, ?)"),
      heldFrom: db.prepare<[string], { item: string }>(
        "SELECT item FROM held WHERE sender = ? ORDER BY rowid",
      ),
      heldAll: db.prepare<[], { item: string }>("SELECT item FROM held ORDER BY rowid"),
      heldCount: db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM held WHERE sender = ?"),
      unhold: db.prepare("DELETE FROM held WHERE id = ?"),
      acted: db.prepare<[string], { target: string }>(
        "SELECT DISTINCT target FROM actions WHERE kind IN ('edit', 'delete') AND target IN (SELECT value FROM json_each(?))",
      ),
      seen: db.prepare("INSERT OR IGNORE INTO mailbox_seen (id, cursor, conv) VALUES (?, ?, ?)"),
      seenMany: db.prepare<[string]>(
        "INSERT OR IGNORE INTO mailbox_seen (id, cursor, conv) SELECT value->>0, value->>1, value->>2 FROM json_each(?)",
      ),
      seenAt: db.prepare<[string], { cursor: string }>(
        "SELECT cursor FROM mailbox_seen WHERE id = ? ORDER BY CAST(cursor AS INTEGER)",
      ),
      replays: db.prepare<[string], { id: string; cursors: string }>(
        "SELECT id, group_concat(cursor) AS cursors FROM (SELECT id, cursor FROM mailbox_seen WHERE conv = ? ORDER BY CAST(cursor AS INTEGER)) GROUP BY id HAVING count(*) > 1",
      ),
      place: db.prepare(
        "UPDATE messages SET server_time = @serverTime, cursor = @cursor, ord = @ord WHERE id = @id AND cursor != @cursor",
      ),
      getState: db.prepare<[string], { value: string }>("SELECT value FROM state WHERE key = ?"),
      setState: db.prepare(
        "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      ),
      history: db.prepare<[string, number], MessageRow>(
        `SELECT * FROM (SELECT ${COLUMNS}, ord FROM messages WHERE conv = ? ORDER BY ord DESC LIMIT ?) ORDER BY ord`,
      ),
      after: db.prepare<[bigint, number], MessageRow>(
        `SELECT ${COLUMNS} FROM messages WHERE ord > ? ORDER BY ord LIMIT ?`,
      ),
      has: db.prepare<[string], { id: string }>("SELECT id FROM messages WHERE id = ?"),
      byId: db.prepare<[string], MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE id = ?`),
      conversations: db.prepare<[], { conv: string; last: string; n: number }>(
        "SELECT conv, max(server_time) AS last, count(*) AS n FROM messages GROUP BY conv ORDER BY max(ord) DESC",
      ),
      getContact: db.prepare<[string], ContactRow>(`${CONTACT_SELECT} WHERE c.name = ?`),
      allContacts: db.prepare<[], ContactRow>(`${CONTACT_SELECT} ORDER BY c.name`),
      markVerified: db.prepare(
        "INSERT INTO verified_keys (name, sign_key, enc_key, verified_at) SELECT name, sign_key, enc_key, ? FROM contacts WHERE name = ? ON CONFLICT(name) DO UPDATE SET sign_key = excluded.sign_key, enc_key = excluded.enc_key, verified_at = excluded.verified_at",
      ),
      pin: db.prepare(
        "INSERT OR IGNORE INTO contacts (name, sign_key, enc_key, pinned_at) VALUES (?, ?, ?, ?)",
      ),
      setPending: db.prepare("UPDATE contacts SET pending_sign = ?, pending_enc = ? WHERE name = ?"),
      trust: db.prepare(
        "UPDATE contacts SET sign_key = pending_sign, enc_key = pending_enc, pending_sign = NULL, pending_enc = NULL, pinned_at = ? WHERE name = ? AND pending_sign IS NOT NULL",
      ),
      nextSeq: db.prepare<[string], { next: number }>(
        "INSERT INTO seqs (conv, next) VALUES (?, 1) ON CONFLICT(conv) DO UPDATE SET next = next + 1 RETURNING next",
      ),
      count: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM messages"),
      releaseSeq: db.prepare("UPDATE seqs SET next = next - 1 WHERE conv = ? AND next = ?"),
      setSeq: db.prepare<[number, string]>("UPDATE seqs SET next = ? WHERE conv = ?"),
      enqueue: db.prepare(
        "INSERT OR IGNORE INTO outbox (id, conv, target_user, target_group, text, seq, sent_at, extra) VALUES (@id, @conv, @user, @group, @text, @seq, @sentAt, @extra)",
      ),
      dequeue: db.prepare("DELETE FROM outbox WHERE id = ?"),
      outbox: db.prepare<[], OutboxRow>("SELECT * FROM outbox ORDER BY n"),
      outboxError: db.prepare("UPDATE outbox SET last_error = ? WHERE id = ?"),
      dataVersion: db.prepare<[], number>("PRAGMA data_version").pluck(),
      live: db.prepare("INSERT OR REPLACE INTO live_clients (id, pid, since) VALUES (?, ?, ?)"),
      unlive: db.prepare("DELETE FROM live_clients WHERE id = ?"),
      othersLive: db.prepare<[string], { id: string; pid: number }>(
        "SELECT id, pid FROM live_clients WHERE id != ?",
      ),
    };
  }

  /** Stores opened messages and the new cursor in one transaction; returns those not seen before. */
  addMessages(messages: ChatMessage[], cursor: string | null): ChatMessage[] {
    return this.indexed(this.db.transaction(() => this.write(messages, cursor)).immediate());
  }

  private indexTimer: NodeJS.Timeout | null = null;
  /** How many holds (`holdIndexing`) keep the search index from catching up by itself. */
  private indexHolds = 0;
  /** New messages were written since the index last caught up by itself. */
  private indexDue = false;

  /**
   * New messages are indexed for search shortly after a burst of writes, all in one transaction
   * (a search indexes what still waits first).
   */
  private indexed<T extends unknown[] | null>(fresh: T): T {
    this.checkpointer?.wrote();
    if (fresh && fresh.length > 0) {
      this.indexDue = true;
      this.scheduleIndex();
    }
    return fresh;
  }

  private scheduleIndex(): void {
    if (this.indexTimer || this.indexHolds > 0 || !this.indexDue) return;
    this.indexTimer = setTimeout(() => {
      this.indexTimer = null;
      this.indexDue = false;
      this.indexSlices();
    }, INDEX_DELAY_MS);
    this.indexTimer.unref();
  }

  /** Indexes what waits INDEX_SLICE messages at a time, a turn of the event loop between slices. */
  private indexSlices(): void {
    if (this.indexHolds > 0 || !this.db.open) return;
    let more = false;
    try {
      more = this.searchIndex.catchUpSome(INDEX_SLICE);
    } catch {
      // Busy or closed: the next write or search indexes what waits.
      return;
    }
    if (more) setImmediate(() => this.indexSlices());
  }

  /**
   * Keeps the search index from catching up by itself until the returned function is called (a
   * recovery: one catch-up after the last page, instead of one per second of pages, each on this
   * thread between pages). A search still indexes everything that waits first, so it stays
   * complete; only the background catch-up waits.
   */
  holdIndexing(): () => void {
    this.indexHolds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.indexHolds--;
      this.scheduleIndex();
    };
  }

  /**
   * Runs `fn` in one transaction (nested calls become savepoints). Writing transactions start
   * IMMEDIATE: a deferred one that reads (the cursor) before it writes fails at once with
   * "database is locked" when another process sharing the profile wrote in between, where an
   * immediate one waits its turn (busy_timeout).
   */
  transaction<T>(fn: () => T): T {
    let r: T;
    try {
      r = this.db.transaction(fn).immediate();
    } catch (err) {
      // Rolled back: a contact read inside it may be kept with what was undone.
      this.contactsChanged();
      throw err;
    }
    this.checkpointer?.wrote();
    return r;
  }

  /**
   * Stores a live delivery whose mailbox predecessor is `prev`, and moves the cursor to it, in one
   * transaction — but only when the cursor is at `prev` (null: nothing read yet). Returns null,
   * storing nothing, when it is not: there is a gap (or another process moved on) and a sync decides.
   */
  addNext(messages: ChatMessage[], prev: string | null, cursor: string): ChatMessage[] | null {
    return this.indexed(
      this.db
        .transaction(() => (this.cursor === prev ? this.write(messages, cursor, prev) : null))
        .immediate(),
    );
  }

  /**
   * Stores acknowledged sends in one transaction, in the order given (mailbox order): each whose
   * mailbox predecessor `prev` is where the cursor is moves the cursor to it, as `addNext` would;
   * any other is stored without moving the cursor (its mailbox copy places it later). Outbox
   * items are taken out in the same transaction. Returns, per send, whether it was new.
   */
  addAcked(
    acks: Array<{ message: ChatMessage; prev: string | null | undefined; dequeue: boolean }>,
  ): boolean[] {
    const fresh = this.db
      .transaction(() => {
        let at = this.cursor;
        let moved = false;
        const follows = acks.map((a) => {
          if (a.dequeue) this.stmts.dequeue.run(a.message.id);
          const f = a.prev !== undefined && a.prev === at;
          if (f) {
            at = a.message.cursor;
            moved = true;
          }
          return f;
        });
        // Stored in runs of acks that all follow or all do not (one `put` each, in order): a
        // burst of our own copies is one run, not one put per message.
        const fresh: boolean[] = [];
        for (let i = 0; i < acks.length; ) {
          let j = i + 1;
          while (j < acks.length && follows[j] === follows[i]) j++;
          const run = acks.slice(i, j).map((a) => a.message);
          // `put` returns the new ones of the run in its order.
          const stored = this.put(run, follows[i]!);
          let k = 0;
          for (const m of run) {
            const isNew = stored[k] === m;
            if (isNew) k++;
            fresh.push(isNew);
          }
          i = j;
        }
        // Those that do not follow wait for the cursor to reach their predecessor.
        acks.forEach((a, i) => {
          if (follows[i] || a.prev === undefined || a.prev === null) return;
          if (at !== null && BigInt(a.message.cursor) <= BigInt(at)) return;
          if (this.chained.size >= MAX_CHAINED) this.chained.clear();
          this.chained.set(a.prev, { cursor: a.message.cursor, id: a.message.id, conv: a.message.conv });
        });
        if (moved && at !== null) this.advanceCursor(at);
        return fresh;
      })
      .immediate();
    if (fresh.some((f) => f)) this.indexed(fresh);
    return fresh;
  }

  /** `current`: the cursor as this transaction read it already (addNext), when it did. */
  private write(messages: ChatMessage[], cursor: string | null, current?: string | null): ChatMessage[] {
    const fresh = this.put(messages, cursor !== null);
    if (cursor !== null) this.advanceCursor(cursor, current);
    return fresh;
  }

  /** Stores messages (inside a transaction); `placed`: they come with their mailbox place (not from an ack). */
  private put(messages: ChatMessage[], placed: boolean): ChatMessage[] {
    const fresh: ChatMessage[] = [];
    // Messages an edit or delete already waits for (it came first): only those look their actions
    // up when they land; one query for the whole burst instead of two per message.
    const acted = new Set(
      this.stmts.acted
        .all(JSON.stringify(messages.filter((m) => !m.action && !m.receipt).map((m) => m.id)))
        .map((r) => r.target),
    );
    // New messages' mailbox places and "delivered" receipts are written in one statement per run
    // of new messages (a recovery page: one each instead of one per message). The run is written
    // before anything that reads them: an action or receipt event, or a copy already cached.
    const seenLater: ChatMessage[] = [];
    const deliveredLater: ChatMessage[] = [];
    const flush = () => {
      if (seenLater.length > 0)
        this.stmts.seenMany.run(JSON.stringify(seenLater.map((m) => [m.id, m.cursor, m.conv])));
      this.receipts.queueDelivered(deliveredLater);
      seenLater.length = 0;
      deliveredLater.length = 0;
    };
    for (const m of messages) {
      if (m.action || m.receipt) {
        flush();
        // Every place the mailbox handed an id out at is kept: a second place is a replay (verify-history).
        if (placed) this.stmts.seen.run(m.id, m.cursor, m.conv);
        // An edit, delete or reaction is kept apart and applied when messages are read (actions.ts).
        if (m.action) {
          if (m.action.kind !== "react") acted.add(m.action.target);
          this.actions.record({ ...m, action: m.action }, placed);
          continue;
        }
        // A receipt likewise (receipts.ts).
        const receipt = m.receipt!;
        this.actions.recordReceipt({ ...m, receipt }, placed);
        this.receipts.record({ ...m, receipt });
        continue;
      }
      const r = this.stmts.insert.run(
        m.id,
        m.conv,
        m.from,
        m.to,
        m.group,
        m.text,
        m.sentAt,
        m.serverTime,
        m.cursor,
        m.verified ? 1 : 0,
        m.problem,
        m.seq,
        m.device,
        BigInt(m.cursor),
      );
      if (r.changes === 1) {
        fresh.push(m);
        if (placed) seenLater.push(m);
        this.actions.landed(m, acted.has(m.id));
        this.receipts.landed(m, deliveredLater);
        continue;
      }
      if (!placed) continue;
      flush();
      const newPlace = this.stmts.seen.run(m.id, m.cursor, m.conv).changes === 1;
      // A message cached from its acknowledgement takes its place from the mailbox copy when that
      // arrives; a replay keeps the place it was first seen at. (Only a message already cached can
      // be a replay, so the places are read only then.)
      if (!(newPlace && this.stmts.seenAt.all(m.id).length > 1))
        this.stmts.place.run({
          serverTime: m.serverTime,
          cursor: m.cursor,
          ord: BigInt(m.cursor),
          id: m.id,
        });
    }
    flush();
    return fresh;
  }

  /**
   * Keeps a mailbox item that is signed by a sender's new, not yet trusted keys: not shown,
   * not lost; `keys trust` opens it again.
   */
  hold(sender: string, item: MailboxItem): void {
    this.stmts.hold.run(item.envelope.id, sender, JSON.stringify(item));
  }

  /** The items held for `sender`, as they came from the mailbox (JSON text parsed). */
  heldFrom(sender: string): MailboxItem[] {
    return this.stmts.heldFrom.all(sender).map((r) => JSON.parse(r.item) as MailboxItem);
  }

  /** Every held item, oldest first. */
  heldAll(): MailboxItem[] {
    return this.stmts.heldAll.all().map((r) => JSON.parse(r.item) as MailboxItem);
  }

  heldCount(sender: string): number {
    return this.stmts.heldCount.get(sender)!.n;
  }

  unhold(id: string): void {
    this.stmts.unhold.run(id);
  }

  /** Ids of a conversation that the mailbox handed out at more than one place, with those places. */
  replays(conv: string): Array<{ id: string; cursors: string[] }> {
    return this.stmts.replays.all(conv).map((r) => ({ id: r.id, cursors: r.cursors.split(",") }));
  }

  /**
   * Our own copies stored from their acknowledgement ahead of the cursor, by their mailbox
   * predecessor: when the cursor reaches one's predecessor it moves over it (advanceCursor). The
   * service leaves this device's own copies off its topics when asked (`quiet`), so no live
   * delivery brings them again; a reply from the other side placed after one then follows the
   * cursor, where it would otherwise wait for a gap read. In memory: after a restart a sync from
   * the cursor reads them again (already cached, so only their places are noted).
   */
  private readonly chained = new Map<string, Chained>();

  /** This handle's row among the profile's live clients (null: not registered). */
  private liveId: string | null = null;
  private aloneSeen: { version: number; at: number; alone: boolean } | null = null;

  /**
   * Registers this handle as a client that takes live deliveries for the profile, until close.
   * Another process (or handle) on the same profile learns of what this one sends only through
   * the ring this device gets for its own copies, so `quiet` is asked only while `alone`.
   */
  registerLive(): void {
    if (this.liveId) return;
    this.liveId = randomUUID();
    this.stmts.live.run(this.liveId, process.pid, new Date().toISOString());
  }

  /** Ends `registerLive` (the client closes). */
  unregisterLive(): void {
    if (!this.liveId) return;
    try {
      this.stmts.unlive.run(this.liveId);
    } catch {
      // Busy or closed: a row whose process is gone is removed by the next `alone`.
    }
    this.liveId = null;
    this.aloneSeen = null;
  }

  /**
   * Whether no other live client of the profile runs (registered and its process alive; a row
   * left by a process that died is removed). Looked at again when another connection wrote to
   * the database (PRAGMA data_version), or after ALONE_RECHECK_MS.
   */
  alone(): boolean {
    if (!this.liveId) return false;
    const version = this.stmts.dataVersion.get() as number;
    const now = performance.now();
    const seen = this.aloneSeen;
    if (seen && seen.version === version && now - seen.at < ALONE_RECHECK_MS) return seen.alone;
    let alone = true;
    for (const other of this.stmts.othersLive.all(this.liveId)) {
      if (processAlive(other.pid)) alone = false;
      else this.stmts.unlive.run(other.id);
    }
    this.aloneSeen = { version, at: now, alone };
    return alone;
  }

  has(id: string): boolean {
    return this.stmts.has.get(id) !== undefined;
  }

  get cursor(): string | null {
    return this.getState("cursor");
  }

  /**
   * Moves the cursor forward only: a slower process sharing the profile never moves it back.
   * `current`: the cursor read earlier in this transaction (put does not move it), else read here.
   */
  private advanceCursor(cursor: string, current: string | null = this.getState("cursor")): void {
    if (current !== null && BigInt(cursor) <= BigInt(current)) return;
    let at = cursor;
    // Over our own copies that follow (see `chained`): each is in the mailbox right after `at`.
    for (let next = this.chained.get(at); next; next = this.chained.get(at)) {
      this.chained.delete(at);
      this.stmts.seen.run(next.id, next.cursor, next.conv);
      at = next.cursor;
    }
    this.setState("cursor", at);
    if (this.chained.size > MAX_CHAINED / 2) {
      // Left behind by a sync that passed them: forgotten.
      const now = BigInt(at);
      for (const k of this.chained.keys()) if (BigInt(k) < now) this.chained.delete(k);
    }
  }

  getState(key: string): string | null {
    return this.stmts.getState.get(key)?.value ?? null;
  }

  setState(key: string, value: string): void {
    this.stmts.setState.run(key, value);
  }

  /** The newest `limit` messages of a conversation, oldest first. */
  history(conv: string, limit: number): ChatMessage[] {
    return this.view(this.stmts.history.all(conv, limit).map(messageFromRow));
  }

  /** Messages placed after a cursor (any conversation), oldest first. */
  after(cursor: string | null, limit: number): ChatMessage[] {
    return this.view(this.stmts.after.all(cursor === null ? -1n : BigInt(cursor), limit).map(messageFromRow));
  }

  /** These messages (by id, any conversation) as the user sees them; unknown ids are left out. */
  messages(ids: string[]): ChatMessage[] {
    return this.view(ids.flatMap((id) => this.stmts.byId.all(id)).map(messageFromRow));
  }

  /** Messages as the user sees them: actions applied, receipts' status, mentions (issue 17). */
  private view(messages: ChatMessage[]): ChatMessage[] {
    return markMentions(this.receipts.apply(this.actions.apply(messages)), this.receipts.owner);
  }

  conversations(): Array<{ conv: string; last: string; count: number }> {
    return this.stmts.conversations.all().map((r) => ({ conv: r.conv, last: r.last, count: r.n }));
  }

  messageCount(): number {
    return this.stmts.count.get()!.n;
  }

  /**
   * A contact's pinned keys. Read for every send and every opened batch, so the answer is kept
   * (frozen) until the contacts may have changed: this connection's own changes (`see`,
   * `markVerified`, `trust`, a rolled-back transaction) drop what is kept, and SQLite's
   * `data_version` tells when another connection (another process sharing the profile, e.g.
   * `zmqchat keys trust`) committed anything since it was read.
   */
  contact(name: string): Contact | null {
    const version = this.stmts.dataVersion.get()!;
    if (version !== this.contactsVersion) {
      this.contactsKept.clear();
      this.contactsVersion = version;
    }
    const kept = this.contactsKept.get(name);
    if (kept !== undefined) return kept;
    const r = this.stmts.getContact.get(name);
    const c = r ? freezeContact(fromContactRow(r)) : null;
    this.contactsKept.set(name, c);
    return c;
  }

  /** Contacts as last read (see `contact`), valid while `data_version` is `contactsVersion`. */
  private readonly contactsKept = new Map<string, Contact | null>();
  private contactsVersion = -1;

  /** This connection changed (or rolled back a change to) the contacts: read them again. */
  private contactsChanged(): void {
    this.contactsKept.clear();
  }

  contacts(): Contact[] {
    return this.stmts.allContacts.all().map(fromContactRow);
  }

  /** Pins keys on first sight; records different keys as pending. Returns what happened. */
  see(name: string, keys: PublicKeys): "pinned" | "same" | "changed" {
    this.contactsChanged();
    const existing = this.stmts.getContact.get(name);
    if (!existing) {
      this.stmts.pin.run(name, keys.sign, keys.enc, new Date().toISOString());
      return "pinned";
    }
    if (existing.sign_key === keys.sign && existing.enc_key === keys.enc) {
      if (existing.pending_sign !== null) this.stmts.setPending.run(null, null, name);
      return "same";
    }
    this.stmts.setPending.run(keys.sign, keys.enc, name);
    return "changed";
  }

  /** Records that the user compared safety numbers for a contact's pinned keys; false when nothing is pinned. */
  markVerified(name: string): boolean {
    this.contactsChanged();
    return this.stmts.markVerified.run(new Date().toISOString(), name).changes === 1;
  }

  /** Accepts the pending keys of a contact; returns false when nothing was pending. */
  trust(name: string): boolean {
    this.contactsChanged();
    return this.stmts.trust.run(new Date().toISOString(), name).changes === 1;
  }

  /**
   * The next sequence number of a conversation. Many messages composed together take theirs in
   * one write transaction instead of one commit each. It is committed as soon as the microtasks
   * that follow stop taking numbers (a loop of sends, or a burst of sends resumed by one burst of
   * acknowledgements), before anything else of the event loop runs, so it is committed before any
   * of them is sent (the send window leaves a turn later), and the write lock is not held over a
   * turn: another connection to this file in this thread (a second client, a command's own
   * cache) that writes in a timer or I/O callback no longer waits out the busy timeout on a lock
   * that only this thread could release.
   */
  nextSeq(conv: string): number {
    if (!this.db.inTransaction) {
      this.db.exec("BEGIN IMMEDIATE");
      this.composing = true;
      this.composed = 0;
      // Numbers counted in a transaction SQLite ended by itself (an I/O error) were never written.
      this.seqsTaken.clear();
      queueMicrotask(() => this.settleComposing(0));
    }
    if (!this.composing) return this.stmts.nextSeq.get(conv)!.next;
    this.composed++;
    // The write lock is held until the commit: the first number of a conversation is taken from
    // the table (and written), the next ones count on from it here and are written once, before
    // the commit (writeSeqs), instead of one statement each.
    const last = this.seqsTaken.get(conv);
    const next = last === undefined ? this.stmts.nextSeq.get(conv)!.next : last + 1;
    this.seqsTaken.set(conv, next);
    return next;
  }

  /** A write transaction nextSeq opened, and how many numbers it took. */
  private composing = false;
  private composed = 0;
  /** Per conversation, the last number the composing transaction took that the table does not hold yet. */
  private readonly seqsTaken = new Map<string, number>();

  /** Writes the numbers the composing transaction counted on (see nextSeq) into the table. */
  private writeSeqs(): void {
    for (const [conv, next] of this.seqsTaken) this.stmts.setSeq.run(next, conv);
    this.seqsTaken.clear();
  }

  /** Commits the composing transaction once a pass of the microtask queue took no more numbers. */
  private settleComposing(seen: number): void {
    if (!this.composing) return;
    if (this.composed !== seen) {
      const now = this.composed;
      queueMicrotask(() => this.settleComposing(now));
      return;
    }
    this.endComposing();
  }

  private endComposing(): void {
    if (!this.composing) return;
    this.composing = false;
    if (!this.db.open || !this.db.inTransaction) {
      this.seqsTaken.clear();
      return;
    }
    try {
      this.writeSeqs();
      this.db.exec("COMMIT");
      this.checkpointer?.wrote();
    } catch {
      // With the write lock held, COMMIT fails only on an I/O error (disk full): roll back so
      // the cache stays usable; the numbers taken this turn may be taken again.
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      this.seqsTaken.clear();
      this.contactsChanged();
    }
  }

  /** Gives back a sequence number whose message was never sent, when it is still the latest one. */
  releaseSeq(conv: string, seq: number): void {
    if (this.composing && this.seqsTaken.has(conv)) this.writeSeqs();
    this.stmts.releaseSeq.run(conv, seq);
  }

  enqueue(item: OutboxItem): void {
    this.stmts.enqueue.run({
      id: item.id,
      conv: item.conv,
      user: "user" in item.target ? item.target.user : null,
      group: "group" in item.target ? item.target.group : null,
      text: item.text,
      seq: item.seq,
      sentAt: item.sentAt,
      extra: item.extra ? JSON.stringify(item.extra) : null,
    });
  }

  dequeue(id: string): void {
    this.stmts.dequeue.run(id);
  }

  outbox(): OutboxItem[] {
    return this.stmts.outbox.all().map((r) => ({
      id: r.id,
      conv: r.conv,
      target: r.target_group !== null ? { group: r.target_group } : { user: r.target_user! },
      text: r.text,
      seq: r.seq,
      sentAt: r.sent_at,
      lastError: r.last_error,
      ...(r.extra ? { extra: JSON.parse(r.extra) as MessageExtra } : {}),
    }));
  }

  setOutboxError(id: string, error: string): void {
    this.stmts.outboxError.run(error, id);
  }

  /**
   * Closes the cache. The database is closed at once; the promise settles when the checkpoint
   * thread has let go of the files too (await it before removing the cache's directory).
   */
  close(): Promise<void> {
    this.endComposing();
    this.unregisterLive();
    if (this.indexTimer) clearTimeout(this.indexTimer);
    this.indexTimer = null;
    this.db.close();
    // After this connection is closed, so the thread's is the last: it checkpoints the whole log
    // and removes it. (Closed the other way round, both could close at once, each seeing the
    // other still open, and leave the log behind: harmless, but the unit test saw it under load.)
    return this.checkpointer?.close() ?? Promise.resolve();
  }
}

/** Whether a process with this id runs on this machine (EPERM: it does, as another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

interface OutboxRow {
  id: string;
  conv: string;
  target_user: string | null;
  target_group: string | null;
  text: string;
  seq: number;
  sent_at: string;
  last_error: string | null;
  extra: string | null;
}

interface ContactRow {
  name: string;
  sign_key: string;
  enc_key: string;
  pinned_at: string;
  pending_sign: string | null;
  pending_enc: string | null;
  v_sign: string | null;
  v_enc: string | null;
}

const CONTACT_SELECT =
  "SELECT c.name, c.sign_key, c.enc_key, c.pinned_at, c.pending_sign, c.pending_enc, v.sign_key AS v_sign, v.enc_key AS v_enc FROM contacts c LEFT JOIN verified_keys v ON v.name = c.name";

/** Kept contacts are shared by every caller: none may change one. */
function freezeContact(c: Contact): Contact {
  Object.freeze(c.keys);
  if (c.pending) Object.freeze(c.pending);
  if (c.verifiedKeys) Object.freeze(c.verifiedKeys);
  return Object.freeze(c);
}

function fromContactRow(r: ContactRow): Contact {
  const verified = r.v_sign === r.sign_key && r.v_enc === r.enc_key;
  return {
    name: r.name,
    keys: { sign: r.sign_key, enc: r.enc_key },
    pinnedAt: r.pinned_at,
    pending: r.pending_sign && r.pending_enc ? { sign: r.pending_sign, enc: r.pending_enc } : null,
    verified,
    verifiedKeys: !verified && r.v_sign && r.v_enc ? { sign: r.v_sign, enc: r.v_enc } : null,
  };
}
