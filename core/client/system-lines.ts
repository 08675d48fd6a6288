import type Database from "better-sqlite3";
import type { ChatMessage } from "./message.js";

/**
 * System lines of a group (issue 17): "alice added carol", "bob left", ... Each is a message of
 * the group sealed and signed by whoever made the change, sent right after the service accepted
 * it (before it, for leaving: a member who left can no longer post), and stored in every member's
 * mailbox like any message, so a member offline the whole time sees it after recovery. Its kind
 * and the names it concerns are sealed beside the text (the envelope's `extra`, see actions.ts);
 * the line shown is rendered here from those signed fields and the signer's name, never taken from
 * the text, so nobody can make a line say more than "SIGNER did KIND to USERS".
 *
 * Kept beside the messages in the cache (`system_lines`), applied when messages are read.
 */

export const SYSTEM_KINDS = ["added", "removed", "joined", "left"] as const;
export type SystemKind = (typeof SYSTEM_KINDS)[number];

export interface SystemLine {
  kind: SystemKind;
  /** Whom it concerns (empty for joined and left: the signer). */
  users: string[];
}

/** The line shown for a system event signed by `from`. */
export function renderSystemLine(from: string, s: SystemLine): string {
  const who = s.users.join(", ");
  switch (s.kind) {
    case "added":
      return `${from} added ${who}`;
    case "removed":
      return `${from} removed ${who}`;
    case "joined":
      return `${from} joined`;
    case "left":
      return `${from} left`;
  }
}

export class SystemLineStore {
  private readonly stmts;

  constructor(db: Database.Database) {
    db.exec(
      "CREATE TABLE IF NOT EXISTS system_lines (id TEXT PRIMARY KEY, kind TEXT NOT NULL, users TEXT NOT NULL)",
    );
    this.stmts = {
      put: db.prepare("INSERT OR IGNORE INTO system_lines (id, kind, users) VALUES (?, ?, ?)"),
      get: db.prepare<[string], { kind: SystemKind; users: string }>(
        "SELECT kind, users FROM system_lines WHERE id = ?",
      ),
    };
  }

  /** A message just stored: keeps its system line, when it is one (of a group, verified). */
  landed(m: ChatMessage): void {
    if (m.system && m.verified && m.group !== null)
      this.stmts.put.run(m.id, m.system.kind, JSON.stringify(m.system.users));
  }

  /** Messages with their system line (and its rendered text); others get `system: null`. */
  apply(messages: ChatMessage[]): ChatMessage[] {
    return messages.map((m) => {
      const r = m.verified ? this.stmts.get.get(m.id) : undefined;
      if (!r) return { ...m, system: null };
      const system = { kind: r.kind, users: JSON.parse(r.users) as string[] };
      return { ...m, system, text: renderSystemLine(m.from, system) };
    });
  }
}
