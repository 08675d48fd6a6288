import type Database from "better-sqlite3";
import type { ChatMessage } from "./message.js";

/**
 * Mentions and mute (issue 17).
 *
 * A mention is `@name` in a message's text, where the name is a user's (letters, digits, `_`,
 * `.`, `-`), not part of a longer word or address (`bob@example.org` mentions nobody); a trailing
 * `.` ends the sentence, not the name. It is read from the signed text, so only what the sender
 * wrote counts. A message from someone else that mentions the reader has `mention: true` (history
 * `--json`); `listen` (and the TUI) notify for it — the terminal bell and an OSC 9 desktop
 * notification — unless the conversation is muted.
 *
 * Mute is this profile's own choice, kept in its cache (`mutes` table): a muted conversation
 * notifies nothing; its messages are still fetched, stored and shown.
 */

const MENTION = /(?<![\w@.-])@([a-z0-9][a-z0-9_.-]{0,31})/g;

/** The names a text mentions, in order of first mention. */
export function mentionsIn(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(MENTION)) out.add(m[1]!.replace(/[.]+$/, ""));
  return [...out].filter(Boolean);
}

/** Marks the messages (by others) that mention `me`. */
export function markMentions(messages: ChatMessage[], me: string | null): ChatMessage[] {
  return messages.map((m) => ({
    ...m,
    mention: me !== null && m.from !== me && m.verified && !m.deleted && mentionsIn(m.text).includes(me),
  }));
}

/** Whether a message should ring the bell / raise a desktop notification. */
export function notifies(m: ChatMessage, muted: (conv: string) => boolean): boolean {
  return m.mention === true && !muted(m.conv);
}

/**
 * The bell and an OSC 9 desktop notification (iTerm2, kitty, WezTerm, Windows Terminal; others
 * ignore it) for a mention. Only names and the group name go in: both match NAME_PATTERN, so
 * nothing the sender wrote in the text reaches the terminal's control sequences.
 */
export function mentionAlert(m: ChatMessage): string {
  const where = m.group ? ` in ${m.group}` : "";
  return `\u0007\u001b]9;zmqchat: ${m.from} mentioned you${where}\u0007`;
}

/** The conversations this profile muted (see the file header). */
export class MuteList {
  private readonly stmts;

  constructor(db: Database.Database) {
    db.exec("CREATE TABLE IF NOT EXISTS mutes (conv TEXT PRIMARY KEY, at TEXT NOT NULL)");
    this.stmts = {
      add: db.prepare("INSERT OR IGNORE INTO mutes (conv, at) VALUES (?, ?)"),
      remove: db.prepare("DELETE FROM mutes WHERE conv = ?"),
      has: db.prepare<[string], { conv: string }>("SELECT conv FROM mutes WHERE conv = ?"),
      all: db.prepare<[], { conv: string }>("SELECT conv FROM mutes ORDER BY conv"),
    };
  }

  /** Mutes (or, with `on` false, unmutes) a conversation; true when that changed something. */
  set(conv: string, on: boolean): boolean {
    return (
      (on ? this.stmts.add.run(conv, new Date().toISOString()) : this.stmts.remove.run(conv)).changes > 0
    );
  }

  muted(conv: string): boolean {
    return this.stmts.has.get(conv) !== undefined;
  }

  list(): string[] {
    return this.stmts.all.all().map((r) => r.conv);
  }
}
