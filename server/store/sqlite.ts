import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { ZmqchatError } from "../../core/errors.js";
import { FALLBACK_AUTOCHECKPOINT_PAGES, WalCheckpointer } from "../../core/wal-checkpoint.js";
import { startWorker } from "../../core/worker-start.js";
import {
  type AppendedRow,
  type AppendRequest,
  type AppendStatements,
  appendBatch,
  appendRequest,
  appendStatements,
} from "./sqlite-append.js";
import type { WriterJob, WriterReply } from "./sqlite-writer.js";
import type {
  AppendInput,
  AppendResult,
  DeviceRecord,
  GroupChange,
  GroupEventRecord,
  GroupRecord,
  KeyLinkRecord,
  NewGroup,
  Placement,
  RotationProof,
  Store,
  StoredItem,
  StoreMetrics,
  UserRecord,
} from "./store.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY,
  sign_key TEXT NOT NULL,
  enc_key TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_history (
  name TEXT NOT NULL,
  gen INTEGER NOT NULL,
  sign_key TEXT NOT NULL,
  enc_key TEXT NOT NULL,
  sig TEXT,
  sig_new TEXT,
  at TEXT NOT NULL,
  PRIMARY KEY (name, gen)
);
CREATE TABLE IF NOT EXISTS backups (
  name TEXT PRIMARY KEY,
  blob TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS groups (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
  group_name TEXT NOT NULL,
  user_name TEXT NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (group_name, user_name)
);
CREATE INDEX IF NOT EXISTS members_by_user ON members(user_name);
CREATE TABLE IF NOT EXISTS group_events (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  group_name TEXT NOT NULL,
  id TEXT NOT NULL,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  target TEXT,
  title TEXT
);
CREATE INDEX IF NOT EXISTS group_events_by_group ON group_events(group_name, pos);
CREATE TABLE IF NOT EXISTS mailbox (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  server_time TEXT NOT NULL,
  envelope TEXT NOT NULL,
  UNIQUE (owner, msg_id)
);
CREATE INDEX IF NOT EXISTS mailbox_by_owner ON mailbox(owner, pos);
CREATE TABLE IF NOT EXISTS used_tokens (
  token TEXT PRIMARY KEY,
  expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS used_tokens_by_expiry ON used_tokens(expires);
CREATE TABLE IF NOT EXISTS revocations (
  name TEXT NOT NULL,
  scope TEXT NOT NULL,
  before INTEGER NOT NULL,
  PRIMARY KEY (name, scope)
);
CREATE TABLE IF NOT EXISTS devices (
  name TEXT NOT NULL,
  id TEXT NOT NULL,
  record TEXT NOT NULL,
  added INTEGER NOT NULL,
  PRIMARY KEY (name, id)
);
CREATE TABLE IF NOT EXISTS drops (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires INTEGER NOT NULL
);
`;

interface Pending {
  /** Appends that commit together (one request's batch), in order. */
  inputs: readonly AppendInput[];
  /** appendFollowing: the copy that must be stored first (else nothing is stored and this resolves null). */
  follows?: { owner: string; id: string };
  /** When the append arrived: the busy deadline counts from here. */
  since: number;
  resolve: (r: AppendResult[] | null) => void;
  reject: (e: unknown) => void;
}

/**
 * The embedded store: one SQLite file in WAL mode, shared safely by several server processes.
 * Appends are group-committed: every append that arrives while a batch is pending (or being
 * committed) joins the next one, and all of them resolve after its one transaction commits
 * (synchronous=FULL: durable). A file's commits run on a writer thread with a connection of its
 * own (sqlite-writer.ts): the event loop goes on (reads, replies, the next batch's checks) while
 * a commit syncs the log, which took some 19 % of a busy server's main thread at 1,000 messages a
 * second. An in-memory store commits on the calling thread.
 */
export class SqliteStore implements Store {
  private db: Database.Database | null = null;
  private pending: Pending[] = [];
  /** Appends in `pending` (a request's batch counts each). */
  private pendingAppends = 0;
  private flushScheduled = false;
  /** A group commit is on the writer thread: what arrives meanwhile waits for the next one. */
  private inflight = false;
  private readonly maxBatch: number;
  private stmts!: ReturnType<SqliteStore["prepare"]>;
  /** The append statements on this thread's connection (an in-memory store, or no writer thread). */
  private appendStmts!: AppendStatements;
  private writer: SqliteWriter | null = null;
  private readonly writerThread: boolean;

  constructor(
    private readonly path: string,
    options: {
      maxBatch?: number;
      busyTimeoutMs?: number;
      metrics?: StoreMetrics;
      /** How long after a commit the write-ahead log is checkpointed (on its own thread). */
      checkpointDelayMs?: number;
      /** Commits on a writer thread (default, for a file); false: on the calling thread. */
      writerThread?: boolean;
    } = {},
  ) {
    this.maxBatch = options.maxBatch ?? 512;
    this.writerThread = options.writerThread ?? true;
    this.checkpointDelayMs = options.checkpointDelayMs;
    this.metrics = options.metrics ?? null;
    this.busyTimeoutMs = options.busyTimeoutMs ?? 2000;
  }

  private readonly busyTimeoutMs: number;
  private readonly checkpointDelayMs: number | undefined;
  private readonly metrics: StoreMetrics | null;

  async init(): Promise<void> {
    if (this.db) return;
    try {
      if (this.path !== ":memory:") mkdirSync(dirname(this.path), { recursive: true });
      const db = new Database(this.path);
      // Lock waits are retried asynchronously (see guard and flush), never inside SQLite, which
      // would block this server's event loop and sleep in coarse steps of up to 100 ms.
      db.pragma("busy_timeout = 0");
      // Several servers may open a new file at once: the first sets it up, the others wait their turn.
      await this.guard(() => {
        db.pragma("journal_mode = WAL");
        db.pragma("synchronous = FULL");
        // Schema and column check in one transaction that holds the write lock from its start: two
        // servers opening one new file both saw no `invited` column and the second ALTER failed
        // with "duplicate column name" (seen in the Node 24 run of sessions.test.ts under load).
        db.transaction(() => {
          db.exec(SCHEMA);
          // Stores made before invitations existed: every row there is a member.
          const columns = db.pragma("table_info(members)") as Array<{ name: string }>;
          if (!columns.some((c) => c.name === "invited"))
            db.exec("ALTER TABLE members ADD COLUMN invited INTEGER NOT NULL DEFAULT 0");
          // Stores made before group admins and titles (issue 17): none of either.
          const groupColumns = db.pragma("table_info(groups)") as Array<{ name: string }>;
          if (!groupColumns.some((c) => c.name === "admins"))
            db.exec("ALTER TABLE groups ADD COLUMN admins TEXT NOT NULL DEFAULT '[]'");
          if (!groupColumns.some((c) => c.name === "title"))
            db.exec("ALTER TABLE groups ADD COLUMN title TEXT");
        }).immediate();
      }, 10_000);
      this.db = db;
      this.stmts = this.prepare(db);
      this.appendStmts = appendStatements(db);
      this.tokens = this.openTokens(db);
      // The log is checkpointed on a thread (core/wal-checkpoint.ts), not inside a commit: SQLite's
      // automatic checkpoint copies the log's pages into the database and syncs it within the
      // commit that crosses 1,000 pages, stalling that commit's acknowledgements and the event loop.
      if (this.path !== ":memory:") {
        this.checkpointer = new WalCheckpointer(this.path, this.checkpointDelayMs);
        db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
        if (this.tokens.db !== db)
          this.tokens.db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
        if (this.writerThread) this.writer = await SqliteWriter.start(this.path, this.metrics);
      }
    } catch (cause) {
      throw new ZmqchatError(
        "unavailable",
        `cannot open the SQLite store at ${this.path}: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
  }

  private prepare(db: Database.Database) {
    return {
      insertUser: db.prepare(
        "INSERT OR IGNORE INTO users (name, sign_key, enc_key, created_at) VALUES (?, ?, ?, ?)",
      ),
      getUser: db.prepare<[string], { name: string; sign_key: string; enc_key: string }>(
        "SELECT name, sign_key, enc_key FROM users WHERE name = ?",
      ),
      listUsers: db.prepare<[], { name: string; sign_key: string; enc_key: string }>(
        "SELECT name, sign_key, enc_key FROM users ORDER BY name",
      ),
      listUsersPage: db.prepare<[string, number], { name: string; sign_key: string; enc_key: string }>(
        "SELECT name, sign_key, enc_key FROM users WHERE name > ? ORDER BY name LIMIT ?",
      ),
      rotate: db.prepare(
        "UPDATE users SET sign_key = ?, enc_key = ? WHERE name = ? AND sign_key = ? AND enc_key = ?",
      ),
      keyHistory: db.prepare<
        [string],
        { sign_key: string; enc_key: string; sig: string | null; sig_new: string | null; at: string }
      >("SELECT sign_key, enc_key, sig, sig_new, at FROM key_history WHERE name = ? ORDER BY gen"),
      registered: db.prepare<[string], { sign_key: string; enc_key: string; created_at: string }>(
        "SELECT sign_key, enc_key, created_at FROM users WHERE name = ?",
      ),
      insertLink: db.prepare(
        "INSERT INTO key_history (name, gen, sign_key, enc_key, sig, sig_new, at) VALUES (?, (SELECT coalesce(max(gen) + 1, 0) FROM key_history WHERE name = ?), ?, ?, ?, ?, ?)",
      ),
      putBackup: db.prepare(
        "INSERT INTO backups (name, blob, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at",
      ),
      getBackup: db.prepare<[string], { blob: string }>("SELECT blob FROM backups WHERE name = ?"),
      revoke: db.prepare(
        "INSERT INTO revocations (name, scope, before) VALUES (?, ?, ?) ON CONFLICT(name, scope) DO UPDATE SET before = max(before, excluded.before)",
      ),
      revocations: db.prepare<[string], { scope: string; before: number }>(
        "SELECT scope, before FROM revocations WHERE name = ?",
      ),
      putDevice: db.prepare(
        "INSERT INTO devices (name, id, record, added) VALUES (?, ?, ?, ?) ON CONFLICT(name, id) DO UPDATE SET record = excluded.record",
      ),
      listDevices: db.prepare<[string], { record: string }>(
        "SELECT record FROM devices WHERE name = ? ORDER BY added, id",
      ),
      putDrop: db.prepare(
        "INSERT INTO drops (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
      ),
      getDrop: db.prepare<[string, number], { value: string }>(
        "SELECT value FROM drops WHERE key = ? AND expires > ?",
      ),
      forgetDrops: db.prepare("DELETE FROM drops WHERE expires < ?"),
      insertGroup: db.prepare("INSERT OR IGNORE INTO groups (name, owner, created_at) VALUES (?, ?, ?)"),
      getGroup: db.prepare<[string], { name: string; owner: string; admins: string; title: string | null }>(
        "SELECT name, owner, admins, title FROM groups WHERE name = ?",
      ),
      updateGroup: db.prepare("UPDATE groups SET owner = ?, admins = ?, title = ? WHERE name = ?"),
      insertGroupEvent: db.prepare(
        "INSERT INTO group_events (group_name, id, at, kind, actor, target, title) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
      groupEvents: db.prepare<
        [string, number, number],
        {
          pos: number;
          id: string;
          at: string;
          kind: string;
          actor: string;
          target: string | null;
          title: string | null;
        }
      >(
        "SELECT pos, id, at, kind, actor, target, title FROM group_events WHERE group_name = ? AND pos > ? ORDER BY pos LIMIT ?",
      ),
      members: db.prepare<[string], { user_name: string; invited: number }>(
        "SELECT user_name, invited FROM members WHERE group_name = ? ORDER BY position",
      ),
      deleteMembers: db.prepare("DELETE FROM members WHERE group_name = ?"),
      insertMember: db.prepare(
        "INSERT INTO members (group_name, user_name, position, invited) VALUES (?, ?, ?, ?)",
      ),
      groupsOf: db.prepare<[string], { group_name: string }>(
        "SELECT group_name FROM members WHERE user_name = ? ORDER BY group_name",
      ),
      mailboxSize: db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM mailbox WHERE owner = ?"),
      read: db.prepare<[string, number, number], { pos: number; server_time: string; envelope: string }>(
        "SELECT pos, server_time, envelope FROM mailbox WHERE owner = ? AND pos > ? ORDER BY pos LIMIT ?",
      ),
    };
  }

  private get handle(): Database.Database {
    if (!this.db) throw new ZmqchatError("unavailable", "the SQLite store is not open");
    return this.db;
  }

  async registerUser(user: UserRecord): Promise<{ created: boolean; user: UserRecord }> {
    return this.guard(() => {
      const r = this.stmts.insertUser.run(user.name, user.keys.sign, user.keys.enc, new Date().toISOString());
      const row = this.stmts.getUser.get(user.name)!;
      return { created: r.changes === 1, user: toUser(row) };
    });
  }

  async getUsers(names: string[]): Promise<UserRecord[]> {
    return this.guard(() => {
      const out: UserRecord[] = [];
      for (const n of names) {
        const row = this.stmts.getUser.get(n);
        if (row) out.push(toUser(row));
      }
      return out;
    });
  }

  async listUsers(page?: { after?: string; limit: number }): Promise<UserRecord[]> {
    return this.guard(() =>
      (page ? this.stmts.listUsersPage.all(page.after ?? "", page.limit) : this.stmts.listUsers.all()).map(
        toUser,
      ),
    );
  }

  async rotateKeys(
    name: string,
    from: UserRecord["keys"],
    to: UserRecord["keys"],
    proof?: RotationProof,
  ): Promise<boolean> {
    return this.guard(() =>
      this.handle.transaction(() => {
        // The history starts with the keys held before the first rotation (users registered
        // before the history existed get theirs written here).
        const before = this.stmts.registered.get(name);
        if (!before) return false;
        const history = this.stmts.keyHistory.all(name);
        if (this.stmts.rotate.run(to.sign, to.enc, name, from.sign, from.enc).changes !== 1) return false;
        if (history.length === 0)
          this.stmts.insertLink.run(
            name,
            name,
            before.sign_key,
            before.enc_key,
            null,
            null,
            before.created_at,
          );
        this.stmts.insertLink.run(
          name,
          name,
          to.sign,
          to.enc,
          proof?.sig ?? null,
          proof?.sigNew ?? null,
          new Date().toISOString(),
        );
        return true;
      })(),
    );
  }

  async keyHistory(name: string): Promise<KeyLinkRecord[]> {
    return this.guard(() => {
      const rows = this.stmts.keyHistory.all(name);
      if (rows.length > 0)
        return rows.map((r) => ({
          keys: { sign: r.sign_key, enc: r.enc_key },
          sig: r.sig,
          sigNew: r.sig_new,
          at: r.at,
        }));
      const u = this.stmts.registered.get(name);
      return u
        ? [{ keys: { sign: u.sign_key, enc: u.enc_key }, sig: null, sigNew: null, at: u.created_at }]
        : [];
    });
  }

  async putBackup(name: string, blob: string): Promise<void> {
    await this.guard(() => this.stmts.putBackup.run(name, blob, new Date().toISOString()));
  }

  async getBackup(name: string): Promise<string | null> {
    return this.guard(() => this.stmts.getBackup.get(name)?.blob ?? null);
  }

  async claimOnce(token: string, expires: number): Promise<boolean> {
    return this.guard(() => {
      // A primary key decides: of concurrent servers, one insert changes a row.
      const tokens = this.tokens;
      if (!tokens) throw new ZmqchatError("unavailable", "the SQLite store is not open");
      const won = tokens.claim.run(token, expires).changes === 1;
      // Expired challenges are refused before they get here; forget them now and then (a minute's slack for clock skew).
      if (++this.claims % 256 === 0) tokens.forget.run(Date.now() - 60_000);
      this.checkpointer?.wrote();
      return won;
    });
  }

  private claims = 0;
  /** Checkpoints the write-ahead log after commits, on its own thread; none for `:memory:`. */
  private checkpointer: WalCheckpointer | null = null;
  private tokens: ReturnType<SqliteStore["openTokens"]> | null = null;

  /**
   * Used login challenges go through a second connection with synchronous=NORMAL: in WAL mode a
   * commit then waits for no fsync (one per login would cost milliseconds of event loop), and
   * only a power loss within a challenge's 30 s could forget that one was used.
   */
  private openTokens(main: Database.Database) {
    const db = this.path === ":memory:" ? main : new Database(this.path);
    if (db !== main) {
      db.pragma("busy_timeout = 0");
      db.pragma("synchronous = NORMAL");
    }
    return {
      db,
      claim: db.prepare("INSERT OR IGNORE INTO used_tokens (token, expires) VALUES (?, ?)"),
      forget: db.prepare("DELETE FROM used_tokens WHERE expires < ?"),
    };
  }

  async putDevice(name: string, device: DeviceRecord): Promise<void> {
    await this.guard(() =>
      this.stmts.putDevice.run(name, device.id, JSON.stringify(device), Math.floor(device.added)),
    );
  }

  async listDevices(name: string): Promise<DeviceRecord[]> {
    return this.guard(() =>
      this.stmts.listDevices.all(name).map((r) => JSON.parse(r.record) as DeviceRecord),
    );
  }

  async putDrop(key: string, value: string, expires: number): Promise<void> {
    await this.guard(() => {
      this.stmts.putDrop.run(key, value, Math.floor(expires));
      // Expired drops are never read again: forget them now and then.
      if (++this.drops % 64 === 0) this.stmts.forgetDrops.run(Date.now() - 60_000);
    });
  }

  private drops = 0;

  async getDrop(key: string, now: number): Promise<string | null> {
    return this.guard(() => this.stmts.getDrop.get(key, Math.floor(now))?.value ?? null);
  }

  async revokeSessions(name: string, scope: string, before: number): Promise<void> {
    await this.guard(() => this.stmts.revoke.run(name, scope, before));
  }

  async sessionRevocations(name: string): Promise<Map<string, number>> {
    return this.guard(
      () => new Map(this.stmts.revocations.all(name).map((r) => [r.scope, Number(r.before)] as const)),
    );
  }

  async createGroup(group: NewGroup): Promise<{ created: boolean; group: GroupRecord }> {
    return this.guard(() =>
      this.handle.transaction(() => {
        const r = this.stmts.insertGroup.run(group.name, group.owner, new Date().toISOString());
        if (r.changes === 1) this.writeMembers(group.name, group.members, group.invited ?? []);
        return { created: r.changes === 1, group: this.loadGroup(group.name)! };
      })(),
    );
  }

  async setMembers(name: string, members: string[], invited: string[] = []): Promise<GroupRecord> {
    return this.guard(() =>
      this.handle.transaction(() => {
        const g = this.stmts.getGroup.get(name);
        if (!g) throw new ZmqchatError("not_found", `no group named ${name}`);
        this.writeMembers(name, members, invited);
        // An admin who is no longer a member is no longer an admin (were they added again).
        const admins = parseNames(g.admins).filter((a) => members.includes(a));
        this.stmts.updateGroup.run(g.owner, JSON.stringify(admins), g.title, name);
        return this.loadGroup(name)!;
      })(),
    );
  }

  async updateGroup(name: string, change: GroupChange): Promise<GroupRecord> {
    return this.guard(() =>
      this.handle.transaction(() => {
        const g = this.stmts.getGroup.get(name);
        if (!g) throw new ZmqchatError("not_found", `no group named ${name}`);
        this.stmts.updateGroup.run(
          change.owner ?? g.owner,
          change.admins ? JSON.stringify(change.admins) : g.admins,
          change.title ?? g.title,
          name,
        );
        return this.loadGroup(name)!;
      })(),
    );
  }

  async addGroupEvent(e: GroupEventRecord): Promise<void> {
    await this.guard(() => {
      this.stmts.insertGroupEvent.run(e.group, e.id, e.at, e.kind, e.actor, e.target, e.title);
    });
  }

  async groupEvents(
    group: string,
    after: string | null,
    limit: number,
  ): Promise<{ events: Array<GroupEventRecord & { cursor: string }>; more: boolean }> {
    return this.guard(() => {
      const rows = this.stmts.groupEvents.all(group, after === null ? 0 : Number(after), limit + 1);
      const events = rows.slice(0, limit).map((r) => ({
        cursor: String(r.pos),
        id: r.id,
        group,
        at: r.at,
        kind: r.kind,
        actor: r.actor,
        target: r.target,
        title: r.title,
      }));
      return { events, more: rows.length > limit };
    });
  }

  async getGroup(name: string): Promise<GroupRecord | null> {
    return this.guard(() => this.loadGroup(name));
  }

  async groupsOf(user: string): Promise<GroupRecord[]> {
    return this.guard(() => this.stmts.groupsOf.all(user).map((r) => this.loadGroup(r.group_name)!));
  }

  async append(input: AppendInput): Promise<AppendResult> {
    return (await this.appendMany([input]))[0]!;
  }

  appendMany(inputs: readonly AppendInput[]): Promise<AppendResult[]> {
    return this.enqueue(inputs, undefined) as Promise<AppendResult[]>;
  }

  /**
   * The predecessor is looked up inside the group commit's write transaction (BEGIN IMMEDIATE):
   * what it finds was committed by this or another process before, so the new rows get larger
   * positions (AUTOINCREMENT) than every copy of the predecessor's own transaction.
   */
  appendFollowing(
    follows: { owner: string; id: string },
    inputs: readonly AppendInput[],
  ): Promise<AppendResult[] | null> {
    return this.enqueue(inputs, follows);
  }

  private enqueue(
    inputs: readonly AppendInput[],
    follows: { owner: string; id: string } | undefined,
  ): Promise<AppendResult[] | null> {
    if (inputs.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ inputs, resolve, reject, since: Date.now(), ...(follows ? { follows } : {}) });
      this.pendingAppends += inputs.length;
      if (this.pendingAppends >= this.maxBatch) {
        this.flush();
      } else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  async mailboxSize(owner: string): Promise<number> {
    return this.guard(() => this.stmts.mailboxSize.get(owner)?.n ?? 0);
  }

  async read(
    owner: string,
    after: string | null,
    limit: number,
    maxChars = Number.POSITIVE_INFINITY,
  ): Promise<{ items: StoredItem[]; more: boolean }> {
    return this.guard(() => {
      // Iterated, not fetched whole: a page of large envelopes stops at the budget without
      // reading the rest into memory.
      const items: StoredItem[] = [];
      let chars = 0;
      let more = false;
      for (const r of this.stmts.read.iterate(owner, after === null ? 0 : Number(after), limit + 1)) {
        if (items.length >= limit || (items.length > 0 && chars + r.envelope.length > maxChars)) {
          more = true;
          break;
        }
        chars += r.envelope.length;
        items.push({ cursor: String(r.pos), serverTime: r.server_time, envelope: r.envelope });
      }
      return { items, more };
    });
  }

  async close(): Promise<void> {
    if (this.writer) {
      // What was queued or is being committed is settled first (a busy retry included).
      const deadline = Date.now() + this.busyTimeoutMs + CLOSE_WAIT_MS;
      if (!this.inflight && !this.flushScheduled && this.pending.length > 0) this.flush();
      while ((this.inflight || this.pending.length > 0) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 2));
      const writer = this.writer;
      this.writer = null;
      await writer.close();
    }
    if (this.pending.length > 0) this.flush();
    const checkpointer = this.checkpointer;
    this.checkpointer = null;
    await checkpointer?.close();
    if (this.tokens && this.tokens.db !== this.db) this.tokens.db.close();
    this.tokens = null;
    this.db?.close();
    this.db = null;
  }

  /**
   * Commits every pending append in one transaction, then settles each. When another process
   * holds the write lock, the batch goes back to the front of the queue and is tried again a
   * moment later (without blocking the event loop, as SQLite's own busy wait would), growing
   * with whatever arrives meanwhile; after the busy deadline it fails as `unavailable`. With a
   * writer thread one commit is in flight at a time; its end starts the next.
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.inflight) return;
    const batch = this.pending;
    const appends = this.pendingAppends;
    this.pending = [];
    this.pendingAppends = 0;
    if (batch.length === 0) return;
    const started = performance.now();
    const requests = batch.map((p) => appendRequest(p.inputs, p.follows));
    // A writer thread that failed failed its commits (clients resend): this thread commits now.
    if (this.writer?.failed) this.writer = null;
    const writer = this.writer;
    if (writer) {
      this.inflight = true;
      writer.commit(requests).then(
        (results) => this.settle(batch, appends, started, () => results),
        (cause: unknown) =>
          this.settle(batch, appends, started, () => {
            throw cause;
          }),
      );
      return;
    }
    this.settle(batch, appends, started, () =>
      this.handle.transaction(() => appendBatch(this.appendStmts, requests)).immediate(),
    );
  }

  /** Settles a batch with what its commit gave (`commit` throws what it failed with). */
  private settle(
    batch: Pending[],
    appends: number,
    started: number,
    commit: () => Array<AppendedRow[] | null>,
  ): void {
    this.inflight = false;
    let results: Array<AppendedRow[] | null>;
    try {
      results = commit();
      this.metrics?.batch(appends, (performance.now() - started) / 1000);
      if (this.busyRetries > 0) this.metrics?.lockWait?.((started - this.busySince) / 1000, this.busyRetries);
      this.checkpointer?.wrote();
    } catch (cause) {
      const firstTry = Math.min(...batch.map((p) => p.since));
      if (isBusy(cause) && Date.now() - firstTry < this.busyTimeoutMs) {
        this.pending = batch.concat(this.pending);
        this.pendingAppends += appends;
        if (this.busyRetries === 0) this.busySince = started;
        this.busyRetries++;
        this.scheduleFlush(Math.min(1 + this.busyRetries, 10));
        return;
      }
      this.metrics?.error("append");
      this.busyRetries = 0;
      const err =
        cause instanceof ZmqchatError
          ? cause
          : new ZmqchatError("unavailable", `the store could not write: ${(cause as Error).message}`, {
              cause,
            });
      for (const p of batch) p.reject(err);
      this.next();
      return;
    }
    this.busyRetries = 0;
    for (const [i, p] of batch.entries()) p.resolve(placedOf(results[i] ?? null));
    this.next();
  }

  /** After a commit on the writer thread: what arrived meanwhile goes next, together. */
  private next(): void {
    if (this.writer && this.pending.length > 0 && !this.flushScheduled) this.flush();
  }

  private busyRetries = 0;
  /** When the current run of refused tries began (performance.now()). */
  private busySince = 0;

  private scheduleFlush(delayMs: number): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setTimeout(() => this.flush(), delayMs * (0.5 + Math.random()));
  }

  private writeMembers(name: string, members: string[], invited: string[]): void {
    this.stmts.deleteMembers.run(name);
    for (const [i, m] of members.entries()) this.stmts.insertMember.run(name, m, i, 0);
    const pending = invited.filter((m) => !members.includes(m));
    for (const [i, m] of pending.entries()) this.stmts.insertMember.run(name, m, members.length + i, 1);
  }

  private loadGroup(name: string): GroupRecord | null {
    const g = this.stmts.getGroup.get(name);
    if (!g) return null;
    const rows = this.stmts.members.all(name);
    const members = rows.filter((m) => m.invited === 0).map((m) => m.user_name);
    const admins = parseNames(g.admins).filter((a) => members.includes(a));
    return {
      name: g.name,
      owner: g.owner,
      members,
      invited: rows.filter((m) => m.invited !== 0).map((m) => m.user_name),
      ...(admins.length > 0 ? { admins } : {}),
      ...(g.title !== null ? { title: g.title } : {}),
    };
  }

  /** Runs one statement group; while another process holds the lock, tries again a moment later. */
  private async guard<T>(fn: () => T, timeoutMs = this.busyTimeoutMs): Promise<T> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return fn();
      } catch (cause) {
        if (cause instanceof ZmqchatError) throw cause;
        if (isBusy(cause) && Date.now() - started < timeoutMs) {
          await new Promise((r) => setTimeout(r, Math.min(attempt, 10) * (0.5 + Math.random())));
          continue;
        }
        throw new ZmqchatError("unavailable", `the store failed: ${(cause as Error).message}`, { cause });
      }
    }
  }
}

function toUser(row: { name: string; sign_key: string; enc_key: string }): UserRecord {
  return { name: row.name, keys: { sign: row.sign_key, enc: row.enc_key } };
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}

/** A JSON array of names as the groups table keeps admins (anything else reads as none). */
function parseNames(text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v.filter((n): n is string => typeof n === "string") : [];
  } catch {
    return [];
  }
}

/** The longest close() waits for the writer thread, beyond the busy deadline of a commit. */
const CLOSE_WAIT_MS = 5000;

/** A commit's rows as the store's callers take them. */
function placedOf(rows: AppendedRow[] | null): AppendResult[] | null {
  if (rows === null) return null;
  return rows.map((r) => ({
    placed: new Map(
      r.placed.map(([owner, cursor, serverTime, prev]) => [
        owner,
        { cursor, serverTime, prev } satisfies Placement,
      ]),
    ),
    duplicate: r.duplicate,
  }));
}

/**
 * The writer thread (sqlite-writer.ts), a promise per group commit. It keeps the process alive
 * only while a commit is on it. When it fails, every commit on it fails (`unavailable`, and the
 * clients resend) and the store commits on its own thread from then on.
 */
class SqliteWriter {
  private readonly worker: Worker;
  private next = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (r: Array<AppendedRow[] | null>) => void; reject: (e: unknown) => void }
  >();
  private failure: Error | null = null;
  private readonly exited: Promise<void>;
  /** Settles when the thread opened its connection (or could not). */
  private readonly ready: Promise<void>;

  /**
   * A writer thread with its connection open (its start, from source under tsx, takes long
   * enough to time a first append out), or null when it cannot start: commits then run on the
   * calling thread (counted as an `writer` error).
   */
  static async start(path: string, metrics: StoreMetrics | null): Promise<SqliteWriter | null> {
    const writer = new SqliteWriter(path);
    try {
      await writer.ready;
      return writer;
    } catch {
      metrics?.error("writer");
      await writer.worker.terminate();
      return null;
    }
  }

  private constructor(path: string) {
    // Compiled, this module sits next to sqlite-writer.js (bundled: dist/bin/sqlite-writer.js,
    // see scripts/bundle.mjs); run from source (tsx), next to the .ts.
    const script = new URL(
      import.meta.url.endsWith(".ts") ? "./sqlite-writer.ts" : "./sqlite-writer.js",
      import.meta.url,
    );
    this.worker = startWorker(script, {
      workerData: { path, autocheckpoint: FALLBACK_AUTOCHECKPOINT_PAGES },
    });
    let started: { resolve: () => void; reject: (e: Error) => void } | null = null;
    this.ready = new Promise((resolve, reject) => {
      started = { resolve, reject };
    });
    this.worker.on("message", (m: WriterReply) => {
      if ("ready" in m) {
        started?.resolve();
        return;
      }
      const waiter = this.waiting.get(m.id);
      if (!waiter) return;
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) this.worker.unref();
      if ("results" in m) waiter.resolve(m.results);
      else waiter.reject(Object.assign(new Error(m.error), { code: m.code ?? undefined }));
    });
    this.worker.on("error", (err) => {
      started?.reject(err);
      this.fail(err);
    });
    this.exited = new Promise((resolve) =>
      this.worker.once("exit", (code) => {
        const err = new Error(`the store's writer thread stopped (exit code ${code})`);
        started?.reject(err);
        this.fail(err);
        resolve();
      }),
    );
    // Idle, it never keeps the process alive (its start is awaited by the store's init).
    void this.ready.then(
      () => this.worker.unref(),
      () => {},
    );
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  commit(batch: AppendRequest[]): Promise<Array<AppendedRow[] | null>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const id = ++this.next;
      this.waiting.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, batch } satisfies WriterJob);
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const [, w] of this.waiting) w.reject(err);
    this.waiting.clear();
  }

  async close(): Promise<void> {
    if (!this.failure) {
      // Held open until the thread has closed its connection.
      this.worker.ref();
      this.worker.postMessage({ id: 0, close: true } satisfies WriterJob);
    }
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
    if (!this.failure) await this.worker.terminate();
  }
}
