import type { ChatMessage } from "../core/client/cache.js";
import { publicFileFields } from "../core/client/file-ref.js";
import type { SystemEntry, SystemLine } from "../core/client/system-lines.js";
import { sanitizeBody, sanitizeLine } from "../core/text/sanitize.js";

/** A message as `--json` and the daemon give it: the keys the CLI contract promises, `problem` only when there is one. */
export interface MessageFields
  extends Pick<ChatMessage, "id" | "from" | "to" | "group" | "text" | "sentAt" | "serverTime" | "verified"> {
  problem?: string;
  /** Issue 17, added after the fields above (which keep their meaning): the id replied to, or null. */
  replyTo: string | null;
  /** ISO time of the author's last edit, or null. */
  edited: string | null;
  /** Deleted by its author: `text` is then "". */
  deleted: boolean;
  /** Emoji → who reacted with it, in name order ({} when none). */
  reactions: Record<string, string[]>;
  /** Issue 18, after the fields above: the attachment's name, size, type and SHA-256, or null. */
  file: { name: string; size: number; type: string; sha256: string } | null;
  /** Own messages: "sent" (stored), "delivered" (to a device of every recipient) or "read"; null on others'. */
  status: "sent" | "delivered" | "read" | null;
  /** Own group messages: who read them, in name order; null otherwise. */
  readBy: string[] | null;
  /** Someone else's message that mentions you as `@name` (core/client/mentions.ts). */
  mention: boolean;
  /**
   * Issue 19, after the fields above: `history` tells whether someone else's message is read on
   * none of your devices yet (false for your own); null where it is not told (`listen`, `search`).
   */
  unread: boolean | null;
  /**
   * Issue 17, after the fields above: a group's system line (`{kind, actor, target, title}`, drawn
   * from the server's record of the group's changes, core/client/system-lines.ts; `text` is then
   * the sentence), or null on ordinary messages.
   */
  system: SystemLine | null;
}

export function messageFields(m: ChatMessage | MessageFields): MessageFields {
  return {
    id: m.id,
    from: m.from,
    to: m.to,
    group: m.group,
    text: m.text,
    sentAt: m.sentAt,
    serverTime: m.serverTime,
    verified: m.verified,
    ...(m.problem ? { problem: m.problem } : {}),
    replyTo: m.replyTo ?? null,
    edited: m.edited ?? null,
    deleted: m.deleted ?? false,
    reactions: m.reactions ?? {},
    file: m.file ? ("key" in m.file ? publicFileFields(m.file) : m.file) : null,
    status: m.status ?? null,
    readBy: m.readBy ?? null,
    mention: m.mention ?? false,
    unread: m.unread ?? null,
    system: "system" in m ? (m.system ?? null) : null,
  };
}

/** A group's system line as a history row: the message keys, with `system` set. */
export function systemFields(e: SystemEntry): MessageFields {
  return {
    id: e.id,
    from: e.system.actor,
    to: null,
    group: e.group,
    text: e.text,
    sentAt: e.at,
    serverTime: e.at,
    verified: true,
    replyTo: null,
    edited: null,
    deleted: false,
    reactions: {},
    file: null,
    status: null,
    readBy: null,
    mention: false,
    unread: null,
    system: e.system,
  };
}

/** The `--json` line of a message. */
export function messageJson(m: ChatMessage | MessageFields): string {
  return JSON.stringify(messageFields(m));
}

/** A message for a terminal: everything the sender controls goes through the one sanitizer. */
export function messageLine(m: ChatMessage | MessageFields): string {
  const when = sanitizeLine(m.sentAt.replace("T", " ").slice(0, 19));
  if ("system" in m && m.system) return sanitizeLine(`${when}  [${m.group ?? ""}] — ${m.text} —`);
  const where = m.group ? `[${m.group}] ${m.from}` : `${m.from} → ${m.to}`;
  const text = !m.verified
    ? `⚠ UNVERIFIED (${m.problem ?? "unknown problem"})`
    : m.deleted
      ? "(message deleted)"
      : sanitizeBody(m.text) + (m.edited ? " (edited)" : "");
  const reply = m.replyTo ? sanitizeLine(`↪ ${m.replyTo.slice(-8)} `) : "";
  const reactions = Object.entries(m.reactions ?? {})
    .map(([emoji, names]) => sanitizeLine(`${emoji} ${names.join(", ")}`))
    .join("  ");
  const file =
    m.file && m.verified
      ? sanitizeLine(` [file ${m.file.name}, ${m.file.size} bytes, ${m.file.type}: zmqchat download ${m.id}]`)
      : "";
  return sanitizeLine(`${when}  ${where}: `) + reply + text + file + (reactions ? `  [${reactions}]` : "");
}
