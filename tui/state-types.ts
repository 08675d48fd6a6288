/**
 * The TUI state's types (State and the types it is made of), a leaf below tui/state.ts (the
 * reducer) and tui/message-actions.ts, so the two can share them without an import cycle.
 */

import type { ConnectionState } from "../core/client/client.js";
import type { DevicesOverlay } from "./devices-view.js";
import type { Editor } from "./editor.js";
import type { HistoryItem } from "./history-layout.js";
import type { Presence } from "./presence.js";

/** What Enter in the composer does besides sending a message: reply to, or replace, message `id`. */
export interface ComposeMode {
  kind: "reply" | "edit";
  conv: string;
  id: string;
  /** The author and first line of the message, shown above the composer. */
  from: string;
  text: string;
}

export type ActionOverlay =
  | { kind: "react"; id: string; at: number }
  | { kind: "confirm"; id: string; preview: string };

export type Pane = "contacts" | "groups" | "history" | "composer";
export const PANES: readonly Pane[] = ["contacts", "groups", "history", "composer"];
export type ListPane = "contacts" | "groups";

export type NoticeLevel = "info" | "warn" | "error";

export type Overlay =
  | { kind: "help" }
  | { kind: "prompt"; purpose: "chat" | "group"; editor: Editor }
  | ActionOverlay
  | DevicesOverlay;

export interface ConvInfo {
  unread: number;
  /** Time of the newest message (ISO), "" when unknown. */
  last: string;
}

export interface HistoryState {
  conv: string;
  items: HistoryItem[];
  /** Every older message is loaded. */
  complete: boolean;
  /** The page being loaded from the cache, if any (asked for by a `loadHistory` intent). */
  loading: "newest" | "older" | "all" | null;
  /** Rows above the newest row; 0 follows new messages. */
  scroll: number;
  /** Messages that arrived below the window while scrolled up. */
  newBelow: number;
  /** The message marked by a search; `pending` until it is loaded and scrolled into view. */
  mark: { id: string; pending: boolean } | null;
  /** The message selected with ↑↓ for an action (reply, edit, delete, react). */
  selected?: string | null;
  /** Unread messages when the conversation opened: the "new messages" divider goes above them. */
  unreadAtOpen?: number;
}

/** Where a search hit lives. */
export interface SearchTarget {
  conv: string;
  id: string;
}

export interface SearchState {
  query: string;
  /** Oldest first, as `searchMessages` returns them. */
  hits: SearchTarget[];
  /** The hit shown now (an index into `hits`). */
  at: number;
}

/** A message in the on-disk outbox (shared with `zmqchat send --queue`): written, not yet stored by the service. */
export interface OutboxEntry {
  id: string;
  conv: string;
  text: string;
  /** ISO time it was written. */
  at: string;
  /** Why the last attempt did not go through, if one was made. */
  error: string | null;
}

export interface State {
  phase: "signup" | "main";
  signup: { editor: Editor; busy: string | null; error: string | null; profiles: string[] };
  me: string | null;
  fingerprint: string | null;
  connection: ConnectionState;
  endpoint: string;
  /** What the TUI did about the local stack (started it, found it), shown in the status bar. */
  stackNote: string | null;
  /** Messages received by a sync in progress, or null. */
  syncing: number | null;
  users: string[];
  /** Users whose keys changed and are not yet trusted: messages to them are held. */
  keyChanged: string[];
  /** Contacts whose pinned keys the user verified (compared safety numbers); the others are marked unverified. */
  verified: string[];
  groups: string[];
  /** Groups this user is invited to and has not answered: listed in Groups, marked. */
  invites: string[];
  convs: Record<string, ConvInfo>;
  selected: Record<ListPane, string | null>;
  open: string | null;
  history: HistoryState | null;
  /** The last search with results, stepped through with n/N or by repeating it. */
  search: SearchState | null;
  /** Size of the history pane's message area, set by the root from the terminal size. */
  view: { width: number; height: number };
  focus: Pane;
  overlay: Overlay | null;
  composer: Editor;
  /** The composer replies to, or edits, a message (Esc ends it). */
  compose: ComposeMode | null;
  /** Inside a bracketed paste: Enter inserts a newline instead of sending. */
  pasting: boolean;
  notice: { id: number; text: string; level: NoticeLevel } | null;
  /** What waits in the on-disk outbox, shown as pending in its conversation. */
  outbox: OutboxEntry[];
  /** Counts bell-worthy arrivals; the controller rings when it grows. */
  bells: number;
  /** The newest message that mentions this user (`@me`), for the desktop notification; `n` counts them. */
  mention: { n: number; conv: string; from: string; text: string } | null;
  /** Conversations muted (`zmqchat mute`): no bell, no notification. */
  muted: string[];
  /** Who is typing, by conversation (live signals, never stored). */
  typing: Record<string, string[]>;
  /** Contacts who share their presence. */
  presence: Record<string, Presence>;
  bellEnabled: boolean;
  nextId: number;
  quitting: boolean;
}
