import type Database from "better-sqlite3";
import { z } from "zod";
import { ZmqchatError } from "../errors.js";
import { UUID_PATTERN } from "../protocol/ids.js";
import { nameSchema } from "../protocol/schema.js";
import { type FileRef, FileRefStore, fileRefSchema } from "./file-ref.js";
import { type ChatMessage, type MessageAction, type MessageRow, messageFromRow } from "./message.js";
import { MAX_RECEIPT_IDS, type ReceiptExtra } from "./receipts.js";

/**
 * Replies, edits, deletes and reactions (issue 17). Each is a message like any other on the
 * wire: sealed for the conversation, signed by its sender, stored in every mailbox, numbered in
 * the sender's sequence, recovered by sync. What makes it a reply or an action is sealed beside
 * the text (the envelope's `extra`), so the service never sees it and older clients, which read
 * only `text`, still open every message. The cache keeps actions apart from messages and applies
 * them when it reads (so order of arrival does not matter and a replay changes nothing); only the
 * author's own edit or delete of a message in the same conversation counts.
 */

/** What a client seals beside the text: a reply reference, or an action on another message. */
export interface MessageExtra {
  replyTo?: string;
  action?: MessageAction;
  /** A delivery or read receipt (receipts.ts). */
  receipt?: ReceiptExtra;
  /** An attachment (issue 18, core/client/file-ref.ts). */
  file?: FileRef;
}

/** Most bytes of a reaction (one emoji, possibly with modifiers and joiners). */
export const MAX_EMOJI_BYTES = 32;
/** Most code points of a reaction (a family emoji with joiners is 7 to 11). */
export const MAX_EMOJI_CODE_POINTS = 12;

const id = z.string().regex(UUID_PATTERN);
const emoji = z.string().refine((e) => emojiProblem(e) === null, "not one short emoji");
const extraSchema = z
  .object({
    replyTo: id.optional(),
    action: z
      .discriminatedUnion("kind", [
        z.object({ kind: z.literal("edit"), target: id }).strict(),
        z.object({ kind: z.literal("delete"), target: id }).strict(),
        z.object({ kind: z.literal("react"), target: id, emoji, remove: z.boolean() }).strict(),
      ])
      .optional(),
    receipt: z
      .object({
        status: z.enum(["delivered", "read"]),
        group: nameSchema.nullable(),
        ids: z.array(id).min(1).max(MAX_RECEIPT_IDS),
      })
      .strict()
      .optional(),
    file: fileRefSchema.optional(),
  })
  .strict()
  .refine(
    (x) => [x.replyTo, x.action, x.receipt].filter(Boolean).length <= 1,
    "one of reply, action, receipt",
  );

/** Why `e` is not an acceptable reaction, or null when it is. */
export function emojiProblem(e: string): string | null {
  if (e.length === 0) return "the reaction is empty";
  if (Buffer.byteLength(e) > MAX_EMOJI_BYTES || [...e].length > MAX_EMOJI_CODE_POINTS)
    return `a reaction is one emoji (at most ${MAX_EMOJI_BYTES} bytes)`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\s\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u.test(e))
    return "a reaction has no spaces or control characters";
  return null;
}

/**
 * Reads the sealed `extra` of an opened message: what it adds, or the problem that makes the
 * message unverifiable (a signed but malformed action is shown flagged, never applied).
 */
export function readExtra(
  extra: unknown,
): { ok: true; extra: MessageExtra } | { ok: false; problem: string } {
  if (extra === undefined) return { ok: true, extra: {} };
  const r = extraSchema.safeParse(extra);
  if (!r.success) return { ok: false, problem: "malformed reply or action in the sealed content" };
  const out: MessageExtra = {};
  if (r.data.replyTo) out.replyTo = r.data.replyTo;
  if (r.data.action) out.action = r.data.action;
  if (r.data.receipt) out.receipt = r.data.receipt;
  if (r.data.file) out.file = r.data.file;
  return { ok: true, extra: out };
}

/** The fields of a message that its extra gives (for the opened message and the acknowledged copy). */
export function extraFields(
  extra: MessageExtra | undefined,
): Pick<ChatMessage, "replyTo" | "action" | "receipt" | "file"> {
  return addExtraFields({}, extra);
}

/**
 * Adds `extraFields(extra)` to `m` in place and returns it: what `{ ...m, ...extraFields(extra) }`
 * makes (the same keys in the same order), without the copy. Object spread costs microseconds
 * per message on this V8 (the profile of the 1:1 bench: the opened message's literal was the
 * costliest line of openItem); plain assignments cost next to nothing.
 */
export function addExtraFields<T extends object>(
  m: T,
  extra: MessageExtra | undefined,
): T & Pick<ChatMessage, "replyTo" | "action" | "receipt" | "file"> {
  const out = m as T & Pick<ChatMessage, "replyTo" | "action" | "receipt" | "file">;
  out.replyTo = extra?.replyTo ?? null;
  if (extra?.file) out.file = extra.file;
  if (extra?.action) out.action = extra.action;
  if (extra?.receipt) out.receipt = extra.receipt;
  return out;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS actions (
  id TEXT PRIMARY KEY,
  conv TEXT NOT NULL,
  target TEXT NOT NULL,
  kind TEXT NOT NULL,
  sender TEXT NOT NULL,
  text TEXT NOT NULL,
  emoji TEXT,
  remove INTEGER NOT NULL,
  sent_at TEXT NOT NULL,
  server_time TEXT NOT NULL,
  cursor TEXT NOT NULL,
  seq INTEGER NOT NULL,
  device TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_conv ON actions(conv);
CREATE INDEX IF NOT EXISTS actions_by_target ON actions(target);
CREATE TABLE IF NOT EXISTS replies (id TEXT PRIMARY KEY, conv TEXT NOT NULL, reply_to TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS replies_by_conv ON replies(conv);
`;

interface ActionRow {
  id: string;
  conv: string;
  target: string;
  /** "receipt": a receipt event, kept here only so verify-history sees it in its sender's numbering. */
  kind: "edit" | "delete" | "react" | "receipt";
  sender: string;
  text: string;
  emoji: string | null;
  remove: number;
  sent_at: string;
  server_time: string;
  cursor: string;
  seq: number;
  device: string;
}

/** Later action first: by the sender's time, then by id (UUIDv7, so by creation). */
const later = (a: ActionRow, b: ActionRow) =>
  a.sent_at === b.sent_at ? (a.id > b.id ? a : b) : Date.parse(a.sent_at) > Date.parse(b.sent_at) ? a : b;

/** The cache's actions and reply references, in the cache's own database (see Cache.actions). */
export class ActionStore {
  private readonly stmts;
  /** File messages' references (file-ref.ts). */
  readonly files: FileRefStore;

  constructor(db: Database.Database) {
    db.exec(SCHEMA);
    this.files = new FileRefStore(db);
    this.stmts = {
      insert: db.prepare(
        "INSERT OR IGNORE INTO actions (id, conv, target, kind, sender, text, emoji, remove, sent_at, server_time, cursor, seq, device) VALUES (@id, @conv, @target, @kind, @sender, @text, @emoji, @remove, @sentAt, @serverTime, @cursor, @seq, @device)",
      ),
      place: db.prepare("UPDATE actions SET server_time = ?, cursor = ? WHERE id = ? AND cursor != ?"),
      reply: db.prepare("INSERT OR IGNORE INTO replies (id, conv, reply_to) VALUES (?, ?, ?)"),
      byConv: db.prepare<[string], ActionRow>("SELECT * FROM actions WHERE conv = ?"),
      repliesOf: db.prepare<[string], { id: string; reply_to: string }>(
        "SELECT id, reply_to FROM replies WHERE conv = ?",
      ),
      deletedBy: db.prepare<[string, string, string], { id: string }>(
        "SELECT id FROM actions WHERE target = ? AND kind = 'delete' AND sender = ? AND conv = ? LIMIT 1",
      ),
      editsOf: db.prepare<[string, string, string], ActionRow>(
        "SELECT * FROM actions WHERE target = ? AND kind = 'edit' AND sender = ? AND conv = ?",
      ),
      setText: db.prepare(
        "UPDATE messages SET text = ? WHERE id = ? AND sender = ? AND conv = ? AND text != ? AND text != ''",
      ),
      wipe: db.prepare(
        "UPDATE messages SET text = '' WHERE id = ? AND sender = ? AND conv = ? AND text != ''",
      ),
      message: db.prepare<[string], MessageRow>(
        "SELECT id, conv, sender, recipient, grp, text, sent_at, server_time, cursor, verified, problem, seq, device FROM messages WHERE id = ?",
      ),
    };
  }

  /**
   * Stores an action event (idempotent: its id is its key). A delete by the author also wipes the
   * target's text from the cache (and so from the search index) once the target is here.
   */
  record(m: ChatMessage & { action: MessageAction }, fromMailbox: boolean): void {
    const a = m.action;
    this.insertEvent(m, a.kind, a.target, fromMailbox, a.kind === "react" ? a : null);
    if (a.kind === "delete") this.wipe(a.target, m.from, m.conv);
    if (a.kind === "edit") this.latestEdit(a.target, m.from, m.conv);
  }

  /** Stores a receipt event (receipts.ts keeps what it says): numbered like the messages, so verify-history sees no gap. */
  recordReceipt(m: ChatMessage & { receipt: { ids: string[] } }, fromMailbox: boolean): void {
    this.insertEvent(m, "receipt", m.receipt.ids[0]!, fromMailbox, null);
  }

  private insertEvent(
    m: ChatMessage,
    kind: ActionRow["kind"],
    target: string,
    fromMailbox: boolean,
    react: { emoji: string; remove: boolean } | null,
  ): void {
    const r = this.stmts.insert.run({
      id: m.id,
      conv: m.conv,
      target,
      kind,
      sender: m.from,
      text: kind === "edit" ? m.text : "",
      emoji: react ? react.emoji : null,
      remove: react?.remove ? 1 : 0,
      sentAt: m.sentAt,
      serverTime: m.serverTime,
      cursor: m.cursor,
      seq: m.seq,
      device: m.device,
    });
    // Cached from its acknowledgement first: the mailbox copy gives its place.
    if (r.changes === 0 && fromMailbox) this.stmts.place.run(m.serverTime, m.cursor, m.id, m.cursor);
    // A new edit, delete or reaction: views showing its target read it again (ClientEvent "action").
    if (r.changes === 1 && kind !== "receipt") {
      const e = { id: m.id, conv: m.conv, target, kind, from: m.from };
      queueMicrotask(() => this.onAction?.(e));
    }
  }

  /** Called after the writing transaction when a new edit, delete or reaction was stored (views re-read its target). */
  onAction: ((e: { id: string; conv: string; target: string; kind: string; from: string }) => void) | null =
    null;

  /**
   * Keeps the cached text of a message at its author's latest edit, so the search index (which
   * follows the messages table) finds what history shows, not the words the author replaced.
   */
  private latestEdit(id: string, author: string, conv: string): void {
    let edit: ActionRow | null = null;
    for (const a of this.stmts.editsOf.all(id, author, conv)) edit = edit ? later(edit, a) : a;
    if (edit) this.stmts.setText.run(edit.text, id, author, conv, edit.text);
  }

  /**
   * A message just stored: keeps its reply reference, and applies a delete or edit that arrived
   * before it (`acted` false: the caller knows none did, so nothing is looked up).
   */
  landed(m: ChatMessage, acted = true): void {
    if (m.replyTo) this.stmts.reply.run(m.id, m.conv, m.replyTo);
    this.files.landed(m);
    if (!acted) return;
    if (this.stmts.deletedBy.get(m.id, m.from, m.conv)) this.wipe(m.id, m.from, m.conv);
    else this.latestEdit(m.id, m.from, m.conv);
  }

  /** The author deleted `id`: its text and its file reference (key, name, digest) leave the cache. */
  private wipe(id: string, author: string, conv: string): void {
    this.stmts.wipe.run(id, author, conv);
    const target = this.stmts.message.get(id);
    if (target && target.sender === author && target.conv === conv) this.files.forget(id, conv);
  }

  /** One cached message by id (any conversation), as stored (actions not applied). */
  message(messageId: string): ChatMessage | null {
    const r = this.stmts.message.get(messageId);
    return r ? messageFromRow(r) : null;
  }

  /**
   * The messages as the user sees them: reply reference, latest edit by the author, deleted by
   * the author, reactions (each person's latest per emoji). Actions by anyone else than the
   * author, or from another conversation, change nothing (verify-history flags them).
   */
  apply(messages: ChatMessage[]): ChatMessage[] {
    const convs = new Map<
      string,
      { actions: Map<string, ActionRow[]>; replies: Map<string, string>; files: Map<string, FileRef> }
    >();
    const load = (conv: string) => {
      let c = convs.get(conv);
      if (!c) {
        const actions = new Map<string, ActionRow[]>();
        for (const a of this.stmts.byConv.all(conv)) {
          const list = actions.get(a.target);
          if (list) list.push(a);
          else actions.set(a.target, [a]);
        }
        const replies = new Map(this.stmts.repliesOf.all(conv).map((r) => [r.id, r.reply_to]));
        c = { actions, replies, files: this.files.ofConv(conv) };
        convs.set(conv, c);
      }
      return c;
    };
    return messages.map((m) => {
      const c = load(m.conv);
      const out: ChatMessage = {
        ...m,
        replyTo: c.replies.get(m.id) ?? m.replyTo ?? null,
        ...(c.files.has(m.id) || m.file ? { file: c.files.get(m.id) ?? m.file } : {}),
        edited: null,
        deleted: false,
        reactions: {},
      };
      const acts = m.verified ? (c.actions.get(m.id) ?? []) : [];
      if (acts.length === 0) return out;
      let edit: ActionRow | null = null;
      const reacts = new Map<string, ActionRow>();
      for (const a of acts) {
        if (a.kind === "delete" && a.sender === m.from) out.deleted = true;
        else if (a.kind === "edit" && a.sender === m.from) edit = edit ? later(edit, a) : a;
        else if (a.kind === "react" && a.emoji !== null) {
          const key = `${a.sender}\0${a.emoji}`;
          const prev = reacts.get(key);
          reacts.set(key, prev ? later(prev, a) : a);
        }
      }
      if (out.deleted) {
        out.text = "";
        if (out.file) out.file = null;
      } else if (edit) {
        out.text = edit.text;
        out.edited = edit.sent_at;
      }
      const reactions: Record<string, string[]> = {};
      for (const a of reacts.values()) {
        if (a.remove) continue;
        const names = reactions[a.emoji!];
        if (names) names.push(a.sender);
        else reactions[a.emoji!] = [a.sender];
      }
      for (const names of Object.values(reactions)) names.sort();
      out.reactions = reactions;
      return out;
    });
  }

  /**
   * A conversation's action events as messages (for verify-history: they are numbered in their
   * senders' sequences), each unverified with the reason when it does not count: an edit or delete
   * by someone else than the author, or an action on a message of another conversation.
   */
  asMessages(conv: string): ChatMessage[] {
    return this.stmts.byConv.all(conv).map((a) => {
      const target = this.stmts.message.get(a.target);
      let problem: string | null = null;
      if (target && target.conv !== conv)
        problem = `a ${a.kind} of ${a.target}, a message of another conversation`;
      else if (target && (a.kind === "edit" || a.kind === "delete") && target.sender !== a.sender)
        problem = `${a.sender} signed a ${a.kind} of ${a.target}, a message by ${target.sender}: only its author may`;
      return {
        id: a.id,
        conv: a.conv,
        from: a.sender,
        to: null,
        group: null,
        text: a.text,
        sentAt: a.sent_at,
        serverTime: a.server_time,
        cursor: a.cursor,
        verified: problem === null,
        problem,
        seq: a.seq,
        device: a.device,
      };
    });
  }
}

/** A message and its actions in mailbox order (by cursor), for verify-history. */
export function inMailboxOrder(messages: ChatMessage[], actions: ChatMessage[]): ChatMessage[] {
  return [...messages, ...actions].sort((a, b) => {
    const x = BigInt(a.cursor);
    const y = BigInt(b.cursor);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** What a user may do to a cached message; throws the CLI's error when not. */
export function checkActionTarget(
  store: ActionStore,
  me: string,
  targetId: string,
  kind: MessageAction["kind"] | "reply",
  conv?: string,
): ChatMessage {
  const m = UUID_PATTERN.test(targetId) ? store.message(targetId) : null;
  if (!m || (conv !== undefined && m.conv !== conv))
    throw new ZmqchatError(
      "not_found",
      `no message ${targetId}${conv !== undefined ? " in this conversation" : ""} here`,
      { hint: "message ids are in `zmqchat history … --json` (sync first if it is new)" },
    );
  if (!m.verified) throw new ZmqchatError("bad_request", `message ${targetId} is not verified`);
  if ((kind === "edit" || kind === "delete") && m.from !== me)
    throw new ZmqchatError("forbidden", `message ${targetId} is ${m.from}'s: only its author may ${kind} it`);
  if (kind !== "reply" && store.apply([m])[0]!.deleted)
    throw new ZmqchatError("conflict", `message ${targetId} was deleted`);
  return m;
}
