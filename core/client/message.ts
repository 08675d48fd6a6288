import type { FileRef } from "./file-ref.js";

/**
 * The message as the user sees it and as the cache stores it. A module of its own so that the
 * cache and its search index both read rows without importing each other.
 */

/** A message as the user sees it: opened, verified (or flagged), placed in its conversation. */
export interface ChatMessage {
  id: string;
  /** `u:NAME` for a 1:1 conversation with NAME, `g:NAME` for a group. */
  conv: string;
  from: string;
  to: string | null;
  group: string | null;
  text: string;
  sentAt: string;
  serverTime: string;
  cursor: string;
  verified: boolean;
  /** Why a message is not verified (bad signature, not for this user, undecryptable). */
  problem: string | null;
  seq: number;
  device: string;
  /** The id of the message this one replies to (sealed inside the content), or null. */
  replyTo?: string | null;
  /** Set on an action event (edit, delete, reaction): what it does to which message; see actions.ts. */
  action?: MessageAction;
  /** An attachment sealed with the message (core/client/file-ref.ts), or null. */
  file?: FileRef | null;
  /** Filled when read from the cache (actions.ts applies the actions to their targets). */
  edited?: string | null;
  deleted?: boolean;
  /** Emoji → the names of who reacted with it, in name order. */
  reactions?: Record<string, string[]>;
  /** Set on a receipt event: which messages its sender got or read (receipts.ts). */
  receipt?: ReceiptExtra;
  /** Filled when read from the cache, on own messages (null on others'): "sent", "delivered" or "read" (receipts.ts). */
  status?: "sent" | "delivered" | "read" | null;
  /** Own group messages: who read them, in name order (null otherwise). */
  readBy?: string[] | null;
  /** Filled when read from the cache: someone else's message that mentions this user as `@name` (mentions.ts). */
  mention?: boolean;
  /** Set by this device on its own group sends, not stored: who it sealed them for (receipts.ts). */
  sealedFor?: string[];
  /** Set by `history`: someone else's message read on none of the user's devices yet (read-state.ts). */
  unread?: boolean;
}

/** What a receipt event seals beside its text (receipts.ts). `group` null: the 1:1 conversation it travels in. */
export interface ReceiptExtra {
  status: "delivered" | "read";
  group: string | null;
  ids: string[];
}

/** What an action event does, sealed and signed inside its content. Only the author may edit or delete. */
export type MessageAction =
  | { kind: "edit"; target: string }
  | { kind: "delete"; target: string }
  | { kind: "react"; target: string; emoji: string; remove: boolean };

/** A `messages` row as SQLite returns it. */
export interface MessageRow {
  id: string;
  conv: string;
  sender: string;
  recipient: string | null;
  grp: string | null;
  text: string;
  sent_at: string;
  server_time: string;
  cursor: string;
  verified: number;
  problem: string | null;
  seq: number;
  device: string;
}

/** A `messages` row as the message the user sees. */
export function messageFromRow(r: MessageRow): ChatMessage {
  return {
    id: r.id,
    conv: r.conv,
    from: r.sender,
    to: r.recipient,
    group: r.grp,
    text: r.text,
    sentAt: r.sent_at,
    serverTime: r.server_time,
    cursor: r.cursor,
    verified: r.verified === 1,
    problem: r.problem,
    seq: r.seq,
    device: r.device,
  };
}
