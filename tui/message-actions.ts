/**
 * Message actions in the history pane (issue 17), as pure functions over the TUI state: a
 * selected message (↑↓ in the history), reply and edit (the composer takes a mode), delete
 * (asked first), react (an emoji picker), the "new messages" divider and the jump to it, and
 * live updates of the items a new edit, delete or reaction changed. The worker sends what
 * these ask for (tui/worker/message-actions.ts); nothing here talks to the network.
 */

import type { ChatMessage } from "../core/client/cache.js";
import { editorOf, emptyEditor } from "./editor.js";
import { type HistoryItem, keepInView, revealScroll } from "./history-layout.js";
import type { ActionOverlay, ComposeMode, HistoryState, NoticeLevel, State } from "./state-types.js";

export type { ActionOverlay, ComposeMode };

/** The emoji the picker offers, picked with 1–8 (or ←→ and Enter). */
export const REACTIONS: readonly string[] = ["👍", "❤️", "😂", "😮", "😢", "🎉", "🙏", "👀"];

export type MessageActionAction =
  /** ↑ (older) / ↓ (newer) in the history: moves the selection; ↓ from the newest clears it. */
  | { type: "pick"; by: -1 | 1 }
  | { type: "startReply" }
  | { type: "startEdit" }
  | { type: "askDelete" }
  | { type: "confirmDelete" }
  | { type: "pickReaction" }
  | { type: "reactMove"; by: -1 | 1 }
  /** Picks emoji `emoji` for the message of the open picker (the worker toggles it). */
  | { type: "react"; emoji: string }
  /** Shift-PgUp or /unread: scrolls to the "new messages" divider. */
  | { type: "jumpUnread" }
  /** The cache's current view of messages already shown (an edit, delete or reaction landed). */
  | { type: "refresh"; conv: string; messages: ChatMessage[] }
  /** Messages replied to that are not loaded (older than the page), read from the cache for their quotes. */
  | { type: "quotes"; conv: string; messages: ChatMessage[] };

function notice(s: State, text: string, level: NoticeLevel): State {
  return { ...s, notice: { id: s.nextId, text, level }, nextId: s.nextId + 1 };
}

/** The selected message of the open conversation, if it is still there. */
export function selectedItem(s: State): HistoryItem | null {
  const h = s.history;
  if (!h?.selected) return null;
  return h.items.find((i) => i.id === h.selected) ?? null;
}

/** An item the user may act on: stored (not pending), verified, not deleted. */
function actionable(i: HistoryItem): boolean {
  return i.ord !== null && i.verified && !i.deleted && !i.system;
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? "";
}

function pick(s: State, by: -1 | 1): State {
  const h = s.history;
  if (!h || h.items.length === 0) return s;
  const cur = h.selected ? h.items.findIndex((i) => i.id === h.selected) : -1;
  let at: number;
  if (cur === -1) {
    if (by === 1) return s;
    at = h.items.length - 1;
  } else at = cur + by;
  if (at >= h.items.length) return { ...s, history: { ...h, selected: null, scroll: 0, newBelow: 0 } };
  at = Math.max(0, at);
  const scroll = keepInView(h.items, at, s.view.width, s.view.height, h.scroll);
  let loading = h.loading;
  // Selecting the oldest loaded message asks for older ones, as scrolling to it does.
  if (at === 0 && !h.complete && loading === null) loading = "older";
  return { ...s, history: { ...h, selected: h.items[at]!.id, scroll, loading } };
}

function startReply(s: State): State {
  const i = selectedItem(s);
  if (!i || !s.history) return notice(s, "select a message first (↑ in the history)", "warn");
  if (!actionable(i))
    return notice(s, "that message cannot be replied to (not stored, verified, or deleted)", "warn");
  return {
    ...s,
    compose: { kind: "reply", conv: s.history.conv, id: i.id, from: i.from, text: firstLine(i.text) },
    focus: "composer",
  };
}

function startEdit(s: State): State {
  const i = selectedItem(s);
  if (!i || !s.history) return notice(s, "select a message first (↑ in the history)", "warn");
  if (i.from !== s.me)
    return notice(s, `only its author may edit a message: this one is ${i.from}'s`, "error");
  if (!actionable(i))
    return notice(s, "that message cannot be edited (not stored, verified, or deleted)", "warn");
  return {
    ...s,
    compose: { kind: "edit", conv: s.history.conv, id: i.id, from: i.from, text: firstLine(i.text) },
    composer: editorOf(i.text),
    focus: "composer",
  };
}

function askDelete(s: State): State {
  const i = selectedItem(s);
  if (!i) return notice(s, "select a message first (↑ in the history)", "warn");
  if (i.from !== s.me)
    return notice(s, `only its author may delete a message: this one is ${i.from}'s`, "error");
  if (!actionable(i))
    return notice(s, "that message cannot be deleted (not stored, verified, or deleted)", "warn");
  return { ...s, overlay: { kind: "confirm", id: i.id, preview: firstLine(i.text) } };
}

function pickReaction(s: State): State {
  const i = selectedItem(s);
  if (!i) return notice(s, "select a message first (↑ in the history)", "warn");
  if (!actionable(i))
    return notice(s, "that message cannot take a reaction (not stored, verified, or deleted)", "warn");
  return { ...s, overlay: { kind: "react", id: i.id, at: 0 } };
}

function jumpUnread(s: State): State {
  const h = s.history;
  const at = h ? h.items.findIndex((i) => i.unreadStart) : -1;
  if (!h || at === -1) return notice(s, "nothing unread here", "info");
  const scroll = revealScroll(h.items, at, s.view.width, s.view.height);
  return { ...s, history: { ...h, scroll, newBelow: 0 } };
}

/** Fills the quote of every reply whose message is loaded; returns `items` itself when nothing changed. */
export function withQuotes(items: HistoryItem[]): HistoryItem[] {
  if (!items.some((i) => i.replyTo)) return items;
  const byId = new Map(items.map((i) => [i.id, i]));
  let changed = false;
  const out = items.map((i) => {
    if (!i.replyTo) return i;
    const t = byId.get(i.replyTo);
    // Not loaded: a quote read from the cache (`quotes`) stays.
    if (!t) return i;
    const quote = quoteOf(t);
    if (i.quote?.from === quote.from && i.quote?.text === quote.text) return i;
    changed = true;
    return { ...i, quote };
  });
  return changed ? out : items;
}

/**
 * Marks the first of the newest `unread` messages of others as where the divider goes (the
 * count the conversation had when it opened); clears any other mark.
 */
export function markUnreadStart(items: HistoryItem[], unread: number, me: string | null): HistoryItem[] {
  let start = -1;
  if (unread > 0) {
    let n = 0;
    for (let k = items.length - 1; k >= 0; k--) {
      const i = items[k]!;
      if (i.ord === null || i.from === me) continue;
      n++;
      start = k;
      if (n === unread) break;
    }
  }
  if (start === -1 && !items.some((i) => i.unreadStart)) return items;
  return items.map((i, k) => {
    const want = k === start;
    if (Boolean(i.unreadStart) === want) return i;
    return { ...i, unreadStart: want };
  });
}

/** The fields an action changes, taken from the cache's view of the message. */
function refreshed(i: HistoryItem, m: ChatMessage): HistoryItem {
  const same =
    i.text === m.text &&
    (i.edited ?? null) === (m.edited ?? null) &&
    Boolean(i.deleted) === Boolean(m.deleted) &&
    JSON.stringify(i.reactions ?? {}) === JSON.stringify(m.reactions ?? {});
  // Own stored messages: the mark follows their receipts (✓ → ✓✓ → ✔✔).
  const own = i.delivery === "stored" || i.delivery === "delivered" || i.delivery === "read";
  const delivery = own ? deliveryOf(m.status) : i.delivery;
  if (same && delivery === i.delivery) return i;
  return {
    ...i,
    text: m.text,
    edited: m.edited ?? null,
    deleted: m.deleted ?? false,
    reactions: m.reactions ?? {},
    delivery,
  };
}

/** The mark of an own stored message from its receipts (core/client/receipts.ts). */
export function deliveryOf(status: ChatMessage["status"]): "stored" | "delivered" | "read" {
  return status === "delivered" || status === "read" ? status : "stored";
}

function refresh(s: State, conv: string, messages: ChatMessage[]): State {
  const h = s.history;
  if (!h || h.conv !== conv) return s;
  const byId = new Map(messages.map((m) => [m.id, m]));
  let changed = false;
  let items = h.items.map((i) => {
    const m = byId.get(i.id);
    if (!m) return i;
    const r = refreshed(i, m);
    if (r !== i) changed = true;
    return r;
  });
  if (!changed) return s;
  items = withQuotes(items);
  // A message being replied to or edited that is now deleted: the mode ends.
  const gone = s.compose && items.find((i) => i.id === s.compose!.id)?.deleted;
  const next: State = { ...s, history: { ...h, items } };
  if (!gone) return next;
  return notice(
    { ...next, compose: null, composer: s.compose!.kind === "edit" ? emptyEditor : s.composer },
    "the message was deleted meanwhile",
    "warn",
  );
}

function quoteOf(m: Pick<ChatMessage, "from" | "text" | "deleted">): { from: string; text: string } {
  return { from: m.from, text: m.deleted ? "(message deleted)" : firstLine(m.text) };
}

function quotes(s: State, conv: string, messages: ChatMessage[]): State {
  const h = s.history;
  if (!h || h.conv !== conv || messages.length === 0) return s;
  const byId = new Map(messages.filter((m) => m.conv === conv).map((m) => [m.id, m]));
  let changed = false;
  const items = h.items.map((i) => {
    const m = i.replyTo && !i.quote ? byId.get(i.replyTo) : undefined;
    if (!m) return i;
    changed = true;
    return { ...i, quote: quoteOf(m) };
  });
  return changed ? { ...s, history: { ...h, items } } : s;
}

/** Replies whose quoted message is not among the loaded items (the worker reads those from the cache). */
export function missingQuotes(h: HistoryState | null): string[] {
  if (!h) return [];
  return [...new Set(h.items.filter((i) => i.replyTo && !i.quote).map((i) => i.replyTo!))];
}

/** The reducer's part for message actions. */
export function reduceMessageAction(s: State, a: MessageActionAction): State {
  switch (a.type) {
    case "pick":
      return pick(s, a.by);
    case "startReply":
      return startReply(s);
    case "startEdit":
      return startEdit(s);
    case "askDelete":
      return askDelete(s);
    case "confirmDelete":
      return s.overlay?.kind === "confirm" ? { ...s, overlay: null } : s;
    case "pickReaction":
      return pickReaction(s);
    case "reactMove": {
      const o = s.overlay;
      if (o?.kind !== "react") return s;
      const at = (o.at + a.by + REACTIONS.length) % REACTIONS.length;
      return { ...s, overlay: { ...o, at } };
    }
    case "react":
      return s.overlay?.kind === "react" ? { ...s, overlay: null } : s;
    case "jumpUnread":
      return jumpUnread(s);
    case "refresh":
      return refresh(s, a.conv, a.messages);
    case "quotes":
      return quotes(s, a.conv, a.messages);
  }
}

/** Esc: ends a reply or edit (an edit's text goes), then clears the selection. Null: not ours to handle. */
export function backFromAction(s: State): State | null {
  if (s.compose && s.focus === "composer")
    return { ...s, compose: null, composer: s.compose.kind === "edit" ? emptyEditor : s.composer };
  if (s.focus === "history" && s.history?.selected)
    return { ...s, history: { ...s.history, selected: null } };
  return null;
}

/** The history state a newly opened conversation starts with: its unread count, for the divider. */
export function openedUnread(s: State, conv: string): number {
  return s.convs[conv]?.unread ?? 0;
}

/** After a page is loaded: quotes filled, the divider placed (on the first, newest page only). */
export function afterLoad(h: HistoryState, me: string | null, first: boolean): HistoryState {
  let items = withQuotes(h.items);
  if (first) items = markUnreadStart(items, h.unreadAtOpen ?? 0, me);
  return items === h.items ? h : { ...h, items };
}
