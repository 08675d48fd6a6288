import type Database from "better-sqlite3";
import { ZmqchatError } from "../errors.js";
import { groupConv } from "./conv.js";
import { type ChatMessage, type MessageRow, messageFromRow } from "./message.js";

/**
 * Full-text index over the decrypted messages of the local cache (SQLite FTS5). The server
 * holds only ciphertext, so this is the only place a user's messages can be searched.
 *
 * The index is an FTS5 table of its own (text and message id), kept in step with `messages` by
 * triggers — inserts in batches: a new message's id is only queued (`messages_fts_todo`, a plain
 * b-tree insert), and the queue is indexed in one transaction before a search and soon after a
 * burst of writes (`catchUp`), so a delivery does not pay for tokenizing and FTS segment writes. It does not borrow the rowid of `messages` (external content): that table has no
 * INTEGER PRIMARY KEY, and VACUUM may renumber such rowids, which would silently point the
 * index at the wrong messages. `unicode61 remove_diacritics 2` folds case and accents, so
 * "koln" finds "Köln" and "CAFE" finds "café".
 */
const INDEX_SCHEMA = `
CREATE VIRTUAL TABLE messages_fts USING fts5(
  text, id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages WHEN new.text <> '' BEGIN
  INSERT INTO messages_fts (text, id) VALUES (new.text, new.id);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
  DELETE FROM messages_fts WHERE id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF text ON messages BEGIN
  DELETE FROM messages_fts WHERE id = old.id;
  INSERT INTO messages_fts (text, id) SELECT new.text, new.id WHERE new.text <> '';
END;
`;

/**
 * Inserts go through the queue: the insert trigger only queues the id, an edit of the text takes
 * the old text out of the index and queues the id again, a deleted message leaves the queue.
 */
const QUEUE_SCHEMA = `
CREATE TABLE IF NOT EXISTS messages_fts_todo (id TEXT PRIMARY KEY) WITHOUT ROWID;
DROP TRIGGER IF EXISTS messages_fts_insert;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.text <> '' BEGIN
  INSERT OR IGNORE INTO messages_fts_todo (id) VALUES (new.id);
END;
DROP TRIGGER IF EXISTS messages_fts_update;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
  DELETE FROM messages_fts WHERE id = old.id;
  INSERT OR IGNORE INTO messages_fts_todo (id) SELECT new.id WHERE new.text <> '';
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_todo_delete AFTER DELETE ON messages BEGIN
  DELETE FROM messages_fts_todo WHERE id = old.id;
END;
`;

/**
 * Creates the index and its triggers when the cache has none yet, and fills it from the
 * messages already cached (a cache made before search existed); moves an index of an older
 * release to queued inserts. Safe when several processes open one profile at once: each check
 * and change happens in one write transaction.
 */
export function ensureSearchIndex(db: Database.Database): void {
  const exists = () =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'").get() !==
    undefined;
  const queued = () =>
    (
      db
        .prepare<[], { sql: string }>(
          "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'messages_fts_insert'",
        )
        .get()?.sql ?? ""
    ).includes("messages_fts_todo");
  if (exists() && queued()) return;
  db.transaction(() => {
    if (!exists()) {
      db.exec(INDEX_SCHEMA);
      db.exec("INSERT INTO messages_fts (text, id) SELECT text, id FROM messages WHERE text <> ''");
      // Everything is indexed now: a queue left from before would index some twice.
      db.exec("DROP TABLE IF EXISTS messages_fts_todo");
    }
    if (!queued()) db.exec(QUEUE_SCHEMA);
  }).immediate();
}

export interface SearchOptions {
  /** Only messages this user sent. */
  from?: string;
  /** Only messages of this group. */
  group?: string;
  /** Only this conversation (`u:NAME` or `g:NAME`, as in `ChatMessage.conv`). */
  conv?: string;
  /** How many of the newest matches to return (default 100). */
  limit?: number;
  /** Marks put around matched words in `snippet` (default `[` and `]`). */
  highlight?: [open: string, close: string];
}

export interface SearchHit {
  /** The whole message; `message.conv` and `message.id` locate it in its conversation. */
  message: ChatMessage;
  /** A short excerpt of the text around the matches, with the matched words marked. */
  snippet: string;
}

/**
 * Turns what a user typed into an FTS5 query that cannot be a syntax error: every word must
 * appear (as a word or the start of one), a "double-quoted phrase" must appear as written.
 * FTS5 operators (AND, OR, NOT, NEAR, column filters, `*`, `^`) are taken as plain words.
 * Returns null when the text holds no word at all (only punctuation or emoji).
 */
export function toMatchQuery(text: string): string | null {
  const parts: string[] = [];
  const re = /"([^"]*)"|([^\s"]+)/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const phrase = m[1];
    const word = m[2];
    if (phrase !== undefined) {
      if (hasWordChar(phrase)) parts.push(`"${phrase}"`);
    } else if (word !== undefined && hasWordChar(word)) {
      parts.push(`"${word}"*`);
    }
  }
  return parts.length > 0 ? parts.join(" ") : null;
}

function hasWordChar(s: string): boolean {
  return /[\p{L}\p{N}]/u.test(s);
}

type HitRow = MessageRow & { snippet: string };

/**
 * The index of one cache, with its statement prepared once. `Cache` makes one when it opens
 * (creating and filling the index if needed); callers use `searchMessages`.
 */
export class SearchIndex {
  private readonly stmt: Database.Statement<Record<string, unknown>, HitRow>;

  private readonly pending: Database.Statement<[], unknown>;
  private readonly index: Database.Statement;
  private readonly clear: Database.Statement;
  private readonly indexSome: Database.Statement<[number]>;
  private readonly clearSome: Database.Statement<[number]>;

  constructor(private readonly db: Database.Database) {
    ensureSearchIndex(db);
    this.pending = db.prepare("SELECT 1 FROM messages_fts_todo LIMIT 1");
    this.index = db.prepare(
      "INSERT INTO messages_fts (text, id) SELECT m.text, m.id FROM messages_fts_todo t JOIN messages m ON m.id = t.id WHERE m.text <> ''",
    );
    this.clear = db.prepare("DELETE FROM messages_fts_todo");
    // The first `n` queued ids in key order, the same in both statements of one transaction.
    this.indexSome = db.prepare<[number]>(
      "INSERT INTO messages_fts (text, id) SELECT m.text, m.id FROM (SELECT id FROM messages_fts_todo ORDER BY id LIMIT ?) t JOIN messages m ON m.id = t.id WHERE m.text <> ''",
    );
    this.clearSome = db.prepare<[number]>(
      "DELETE FROM messages_fts_todo WHERE id IN (SELECT id FROM messages_fts_todo ORDER BY id LIMIT ?)",
    );
    this.stmt = db.prepare<Record<string, unknown>, HitRow>(
      `SELECT m.id, m.conv, m.sender, m.recipient, m.grp, m.text, m.sent_at, m.server_time, m.cursor,
              m.verified, m.problem, m.seq, m.device,
              snippet(messages_fts, 0, @open, @close, '…', 16) AS snippet
         FROM messages_fts f JOIN messages m ON m.id = f.id
        WHERE messages_fts MATCH @match
          AND (@from IS NULL OR m.sender = @from)
          AND (@conv IS NULL OR m.conv = @conv)
          AND (@groupConv IS NULL OR m.conv = @groupConv)
        ORDER BY m.ord DESC LIMIT @limit`,
    );
  }

  /**
   * Indexes the queued messages in one transaction (nothing when none wait). Returns how many
   * were waiting.
   */
  catchUp(): number {
    if (this.pending.get() === undefined) return 0;
    return this.db
      .transaction(() => {
        const n = this.index.run().changes;
        this.clear.run();
        return n;
      })
      .immediate();
  }

  /**
   * Indexes at most `limit` of the queued messages in one transaction; returns whether any are
   * left. The background catch-up goes a slice at a time with turns of the event loop between:
   * indexing 1,000 messages of 200 B at once holds the event loop for 4–8 ms here (measured on
   * a quiet machine), so a client receiving 1,000 a second stalled that long once a second, and
   * the catch-up after a recovery of 100,000 (indexing is held during it) for half a second.
   */
  catchUpSome(limit: number): boolean {
    if (this.pending.get() === undefined) return false;
    this.db
      .transaction(() => {
        this.indexSome.run(limit);
        this.clearSome.run(limit);
      })
      .immediate();
    return this.pending.get() !== undefined;
  }

  /** See `searchMessages`. */
  search(query: string, options: SearchOptions = {}): SearchHit[] {
    this.catchUp();
    const match = toMatchQuery(query);
    if (match === null) {
      throw new ZmqchatError("usage", "search for what? give at least one word (letters or digits)");
    }
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1)
      throw new ZmqchatError("usage", "the limit must be at least 1");
    const [open, close] = options.highlight ?? ["[", "]"];
    const rows = this.stmt.all({
      match,
      from: options.from ?? null,
      conv: options.conv ?? null,
      groupConv: options.group !== undefined ? groupConv(options.group) : null,
      open,
      close,
      limit,
    });
    return rows.reverse().map((r) => ({
      message: messageFromRow(r),
      snippet: r.snippet,
    }));
  }
}

/**
 * Searches the decrypted messages in a profile's local cache. Matches are whole words or word
 * beginnings, case and accents ignored; several words must all appear; a "quoted phrase" must
 * appear as written. Returns the newest `limit` matches, oldest first (like a history).
 * Searches only what is cached: sync first to include what is new on the server.
 *
 * @throws ZmqchatError `usage` when `query` holds no word to search for.
 */
export function searchMessages(
  cache: { readonly searchIndex: SearchIndex },
  query: string,
  options: SearchOptions = {},
): SearchHit[] {
  return cache.searchIndex.search(query, options);
}
