/**
 * The TUI's one store: a pure reducer over client events (already turned into actions by the
 * controller) and UI actions (from the keymap). Panes are views of this state.
 */

import type { ChatMessage } from "../core/client/cache.js";
import type { ConnectionState } from "../core/client/client.js";
import { type ConvKind, formatConv, groupOf, parseConv, userOf } from "../core/client/conv.js";
import { type DevicesAction, reduceDevices } from "./devices-view.js";
import { type EditOp, edit, emptyEditor } from "./editor.js";
import { type FileKeyAction, reduceFileKey } from "./file-keys.js";
import { type HistoryItem, historyWindow, revealScroll, rowsOfNewest } from "./history-layout.js";
import { mentions } from "./mentions.js";
import {
  afterLoad,
  backFromAction,
  deliveryOf,
  type MessageActionAction,
  reduceMessageAction,
  withQuotes,
} from "./message-actions.js";
import { type Presence, withTyping } from "./presence.js";
import { type SystemLineView, withSystemLines } from "./system-lines.js";

export { revealScroll };

import {
  type ConvInfo,
  type HistoryState,
  type ListPane,
  type NoticeLevel,
  type OutboxEntry,
  PANES,
  type Pane,
  type SearchState,
  type SearchTarget,
  type State,
} from "./state-types.js";

export * from "./state-types.js";

export type ScrollBy = "lineUp" | "lineDown" | "pageUp" | "pageDown" | "top" | "bottom";

export type Action =
  // sign-up screen
  | { type: "signup/show"; profiles: string[]; error?: string | null; name?: string }
  | { type: "signup/edit"; op: EditOp }
  | { type: "signup/submit" }
  | { type: "signup/busy"; text: string }
  | { type: "signup/error"; text: string }
  // session and connection
  | { type: "session"; me: string; fingerprint: string; endpoint: string; bell: boolean }
  | { type: "connection"; state: ConnectionState; endpoint: string }
  | { type: "stack"; note: string }
  | { type: "sync"; received: number; done: boolean }
  | { type: "users"; names: string[]; keyChanged: string[]; verified?: string[] }
  | { type: "verified"; name: string; verified: boolean }
  | { type: "keyChanged"; name: string }
  | { type: "trusted"; name: string }
  | { type: "groups"; names: string[]; invites?: string[] }
  /** a / x on an invitation in Groups: the controller answers it. */
  | { type: "answerInvite"; answer: "accept" | "decline" }
  | { type: "convs"; convs: Array<{ conv: string; last: string; unread: number }> }
  | { type: "arrived"; messages: ChatMessage[] }
  | { type: "history"; conv: string; messages: ChatMessage[]; complete: boolean }
  /** A group's system lines, placed among the open conversation's messages (tui/system-lines.ts). */
  | { type: "systemLines"; conv: string; lines: SystemLineView[] }
  // our sends
  | { type: "sending"; localId: string; conv: string; text: string; at: string; replyTo?: string }
  | { type: "sent"; localId: string; message: ChatMessage }
  | { type: "sendFailed"; localId: string; error: string }
  /** The service could not be reached: the message (now `id`) waits in the on-disk outbox. */
  | { type: "queued"; localId: string; id: string }
  | { type: "outbox"; items: OutboxEntry[] }
  /** Sends again what failed in the open conversation, and what waits in the outbox. */
  | { type: "retry" }
  // UI
  | { type: "layout"; width: number; height: number }
  | { type: "open"; conv: string }
  | { type: "activate"; pane: ListPane }
  | { type: "focus"; pane: Pane }
  | { type: "focusNext" }
  | { type: "focusPrev" }
  | { type: "select"; pane: ListPane; by: number | "first" | "last" }
  | { type: "scroll"; by: ScrollBy }
  /** Opens `conv` and scrolls until message `id` is in view, marked. */
  | { type: "reveal"; conv: string; id: string }
  /** A search's hits (oldest first): shows the newest. */
  | { type: "found"; query: string; hits: SearchTarget[] }
  | { type: "searchStep"; by: "older" | "newer" }
  | { type: "edit"; op: EditOp }
  | { type: "paste"; on: boolean }
  | { type: "slash" }
  | { type: "help" }
  | { type: "prompt"; purpose: "chat" | "group" }
  | { type: "close" }
  | { type: "back" }
  | { type: "submit" }
  | { type: "promptSubmit" }
  | { type: "notice"; text: string; level: NoticeLevel }
  | { type: "clearNotice"; id: number }
  | { type: "quit" }
  | { type: "typing"; conv: string; from: string; on: boolean }
  | { type: "presence"; name: string; state: Presence | null }
  | { type: "muted"; convs: string[] }
  | MessageActionAction
  | FileKeyAction
  /** `/devices`: the user's devices, over the history pane; select and revoke (tui/devices-view.ts). */
  | DevicesAction;

export function initialState(opts: { bell?: boolean; profiles?: string[] } = {}): State {
  return {
    phase: "signup",
    signup: { editor: emptyEditor, busy: null, error: null, profiles: opts.profiles ?? [] },
    me: null,
    fingerprint: null,
    connection: "offline",
    endpoint: "",
    stackNote: null,
    syncing: null,
    users: [],
    keyChanged: [],
    verified: [],
    groups: [],
    invites: [],
    convs: {},
    selected: { contacts: null, groups: null },
    open: null,
    history: null,
    search: null,
    view: { width: 60, height: 20 },
    focus: "composer",
    overlay: null,
    composer: emptyEditor,
    compose: null,
    pasting: false,
    notice: null,
    outbox: [],
    bells: 0,
    mention: null,
    muted: [],
    typing: {},
    presence: {},
    bellEnabled: opts.bell ?? true,
    nextId: 1,
    quitting: false,
  };
}

// ---- derived lists (shared by the reducer and the panes) -------------------------------------

/** People in the Contacts pane: known users and anyone we have a conversation with, by name. */
type Lists = Pick<State, "users" | "groups" | "convs"> & { invites?: string[] };

export function contactList(s: Lists): string[] {
  const names = new Set(s.users);
  for (const c of Object.keys(s.convs)) {
    const user = userOf(c);
    if (user !== null) names.add(user);
  }
  return [...names].sort();
}

export function groupList(s: Lists): string[] {
  const names = new Set([...s.groups, ...(s.invites ?? [])]);
  for (const c of Object.keys(s.convs)) {
    const group = groupOf(c);
    if (group !== null) names.add(group);
  }
  return [...names].sort();
}

export function listOf(s: Lists, pane: ListPane): string[] {
  return pane === "contacts" ? contactList(s) : groupList(s);
}

/** The list pane that shows conversations of `kind`. */
export function paneOf(kind: ConvKind): ListPane {
  return kind === "group" ? "groups" : "contacts";
}

export function convOf(pane: ListPane, name: string): string {
  return formatConv(pane === "contacts" ? "user" : "group", name);
}

/** The title of a conversation: "alice" or "#team". */
export function convTitle(conv: string): string {
  const ref = parseConv(conv);
  if (!ref) return conv;
  return ref.kind === "group" ? `#${ref.name}` : ref.name;
}

export function unreadTotal(s: State): number {
  let n = 0;
  for (const c of Object.values(s.convs)) n += c.unread;
  return n;
}

// ---- helpers -----------------------------------------------------------------------------

function itemOf(m: ChatMessage, me: string | null): HistoryItem {
  return {
    id: m.id,
    from: m.from,
    text: m.text,
    time: m.serverTime || m.sentAt,
    ord: m.cursor,
    verified: m.verified,
    problem: m.problem,
    delivery: m.from === me ? deliveryOf(m.status) : null,
    error: null,
    replyTo: m.replyTo ?? null,
    edited: m.edited ?? null,
    deleted: m.deleted ?? false,
    reactions: m.reactions ?? {},
    ...(m.file ? { file: { name: m.file.name, size: m.file.size, type: m.file.type } } : {}),
  };
}

function ordLess(a: string, b: string): boolean {
  return a.length !== b.length ? a.length < b.length : a < b;
}

/** Puts a stored item in mailbox order, before any pending ones; ignores ids already present. */
function insertItem(items: HistoryItem[], item: HistoryItem): HistoryItem[] {
  const same = items.find((i) => i.id === item.id);
  if (same && (same.ord !== null || item.ord === null)) return items;
  // A message of ours that waited (outbox) is now stored: it takes its place in mailbox order.
  if (same) items = items.filter((i) => i !== same);
  let at = items.length;
  while (at > 0 && (items[at - 1]!.ord === null || ordLess(item.ord!, items[at - 1]!.ord!))) at--;
  return [...items.slice(0, at), item, ...items.slice(at)];
}

function bump(
  convs: Record<string, ConvInfo>,
  conv: string,
  last: string,
  unread: number,
): Record<string, ConvInfo> {
  const c = convs[conv] ?? { unread: 0, last: "" };
  return { ...convs, [conv]: { unread: c.unread + unread, last: last > c.last ? last : c.last } };
}

function outboxItem(e: OutboxEntry, me: string | null): HistoryItem {
  return {
    id: e.id,
    from: me ?? "",
    text: e.text,
    time: e.at,
    ord: null,
    verified: true,
    problem: null,
    delivery: "queued",
    error: e.error,
  };
}

/** Shows the outbox entries of the open conversation as pending items at its end. */
function withOutbox(
  h: HistoryState | null,
  outbox: readonly OutboxEntry[],
  me: string | null,
): HistoryState | null {
  if (!h) return h;
  const here = outbox.filter((e) => e.conv === h.conv);
  if (here.length === 0) return h;
  let items = h.items;
  for (const e of here) {
    const at = items.findIndex((i) => i.id === e.id);
    if (at === -1) items = [...items, outboxItem(e, me)];
    else if (items[at]!.delivery === "queued" && items[at]!.error !== e.error)
      items = items.map((i, k) => (k === at ? { ...i, error: e.error } : i));
  }
  return items === h.items ? h : { ...h, items };
}

function notice(s: State, text: string, level: NoticeLevel): State {
  return { ...s, notice: { id: s.nextId, text, level }, nextId: s.nextId + 1 };
}

function withEditor(s: State, op: EditOp): State {
  if (s.overlay?.kind === "prompt") {
    return { ...s, overlay: { ...s.overlay, editor: edit(s.overlay.editor, op, { multiline: false }) } };
  }
  if (s.overlay) return s;
  return { ...s, composer: edit(s.composer, op) };
}

function openConv(s: State, conv: string): State {
  const ref = parseConv(conv) ?? { kind: "user", name: conv };
  const pane: ListPane = paneOf(ref.kind);
  const name = ref.name;
  const same = s.history?.conv === conv;
  return {
    ...s,
    open: conv,
    history: same
      ? { ...s.history!, scroll: 0, newBelow: 0 }
      : {
          conv,
          items: [],
          complete: false,
          loading: "newest",
          scroll: 0,
          newBelow: 0,
          mark: null,
          selected: null,
          unreadAtOpen: s.convs[conv]?.unread ?? 0,
        },
    compose: s.compose?.conv === conv ? s.compose : null,
    convs: { ...s.convs, [conv]: { unread: 0, last: s.convs[conv]?.last ?? "" } },
    selected: { ...s.selected, [pane]: name },
    users: pane === "contacts" && !s.users.includes(name) && name !== s.me ? [...s.users, name] : s.users,
    groups: pane === "groups" && !s.groups.includes(name) ? [...s.groups, name] : s.groups,
    focus: "composer",
    overlay: null,
  };
}

function scrollHistory(s: State, by: ScrollBy): State {
  const h = s.history;
  if (!h) return s;
  const { width, height } = s.view;
  const page = Math.max(1, height - 2);
  let target = h.scroll;
  if (by === "lineUp") target += 1;
  if (by === "lineDown") target -= 1;
  if (by === "pageUp") target += page;
  if (by === "pageDown") target -= page;
  if (by === "bottom") target = 0;
  if (by === "top") target = Number.MAX_SAFE_INTEGER;
  target = Math.max(0, target);
  const win = historyWindow(h.items, width, height, target === Number.MAX_SAFE_INTEGER ? 1e9 : target);
  const scroll = win.scroll;
  let loading = h.loading;
  // Reaching the oldest loaded message asks the controller for older ones.
  if (win.atTop && !h.complete && loading === null && target >= win.scroll)
    loading = by === "top" ? "all" : "older";
  return { ...s, history: { ...h, scroll, loading, newBelow: scroll === 0 ? 0 : h.newBelow } };
}

/** Scrolls to the marked message once it is loaded; asks the controller for the whole history until then. */
function settleMark(s: State): State {
  const h = s.history;
  if (!h?.mark?.pending) return s;
  const index = h.items.findIndex((i) => i.id === h.mark!.id);
  if (index >= 0) {
    const scroll = revealScroll(h.items, index, s.view.width, s.view.height);
    return { ...s, history: { ...h, scroll, newBelow: 0, mark: { id: h.mark.id, pending: false } } };
  }
  if (h.complete)
    return notice({ ...s, history: { ...h, mark: null } }, "that message is not here any more", "warn");
  return h.loading === "all" ? s : { ...s, history: { ...h, loading: "all" } };
}

function reveal(s: State, target: SearchTarget): State {
  const opened = s.open === target.conv && s.history?.conv === target.conv ? s : openConv(s, target.conv);
  const h = opened.history!;
  return settleMark({
    ...opened,
    focus: "history",
    overlay: null,
    history: { ...h, mark: { id: target.id, pending: true } },
  });
}

function showHit(s: State, search: SearchState, note: string): State {
  const n = search.hits.length;
  const pos = n - search.at;
  const where = pos === 1 ? "the newest" : pos === n ? "the oldest" : "match";
  const text =
    n === 1
      ? `1 match for "${search.query}"`
      : `${n} matches for "${search.query}"; showing ${where} (${pos}/${n})${note} — n older, N newer, or /search again`;
  return notice(reveal({ ...s, search }, search.hits[search.at]!), text, "info");
}

function focusStep(s: State, step: 1 | -1): State {
  const i = PANES.indexOf(s.focus);
  return { ...s, focus: PANES[(i + step + PANES.length) % PANES.length]! };
}

// ---- intents: what a change asks the worker to do -------------------------------------------

/**
 * A request from the pure state to the worker (tui/worker/), returned beside the new state by
 * `update`: the worker acts on these values and never infers work from how the state changed.
 */
export type Intent = {
  kind: "loadHistory";
  conv: string;
  /** The newest page (a conversation just opened), one page more, or everything (Home, a search hit). */
  want: "newest" | "older" | "all";
  /** Messages of `conv` loaded so far. */
  have: number;
};

/** The history page a change asks for: `loading` is set where a page is wanted (opening, scrolling to the top, revealing). */
function historyIntent(prev: State, next: State): Intent | null {
  const h = next.history;
  if (!h?.loading) return null;
  if (prev.history?.conv === h.conv && prev.history.loading === h.loading) return null;
  return { kind: "loadHistory", conv: h.conv, want: h.loading, have: h.items.length };
}

/** Applies an action, and says what the change asks the worker for (the one way work leaves the state). */
export function update(s: State, a: Action): { state: State; intents: Intent[] } {
  const state = reduce(s, a);
  const load = state === s ? null : historyIntent(s, state);
  return { state, intents: load ? [load] : [] };
}

// ---- the reducer -------------------------------------------------------------------------

export function reduce(s: State, a: Action): State {
  switch (a.type) {
    case "signup/show":
      return {
        ...s,
        phase: "signup",
        signup: {
          editor: a.name ? { text: a.name, cursor: a.name.length } : s.signup.editor,
          busy: null,
          error: a.error ?? null,
          profiles: a.profiles,
        },
      };
    case "signup/edit":
      return {
        ...s,
        signup: { ...s.signup, editor: edit(s.signup.editor, a.op, { multiline: false }), error: null },
      };
    case "signup/submit":
      return s;
    case "signup/busy":
      return { ...s, signup: { ...s.signup, busy: a.text, error: null } };
    case "signup/error":
      return { ...s, signup: { ...s.signup, busy: null, error: a.text } };

    case "session":
      return {
        ...s,
        phase: "main",
        me: a.me,
        fingerprint: a.fingerprint,
        endpoint: a.endpoint,
        bellEnabled: a.bell,
        // Start where keys are not text (so ? shows help); opening a conversation goes to the composer.
        focus: s.open ? "composer" : "contacts",
      };
    case "connection":
      return { ...s, connection: a.state, endpoint: a.endpoint };
    case "stack":
      return { ...s, stackNote: a.note };
    case "sync":
      return { ...s, syncing: a.done ? null : a.received };
    case "users": {
      const names = a.names.filter((n) => n !== s.me);
      return { ...s, users: names, keyChanged: a.keyChanged, verified: a.verified ?? s.verified };
    }
    case "verified": {
      const others = s.verified.filter((n) => n !== a.name);
      return { ...s, verified: a.verified ? [...others, a.name].sort() : others };
    }
    case "keyChanged":
      if (s.keyChanged.includes(a.name)) return s;
      return notice(
        { ...s, keyChanged: [...s.keyChanged, a.name].sort() },
        `⚠ ${a.name}'s keys changed! Messages to ${a.name} are held. Compare fingerprints (/fingerprint ${a.name}), then /trust ${a.name}`,
        "warn",
      );
    case "trusted":
      return { ...s, keyChanged: s.keyChanged.filter((n) => n !== a.name) };
    case "answerInvite":
      return s;
    case "groups": {
      const invites = a.invites ?? s.invites.filter((n) => !a.names.includes(n));
      return { ...s, groups: [...a.names].sort(), invites: [...invites].sort() };
    }
    case "convs": {
      const convs = { ...s.convs };
      for (const c of a.convs) convs[c.conv] = { unread: c.conv === s.open ? 0 : c.unread, last: c.last };
      return { ...s, convs };
    }
    case "arrived": {
      let convs = s.convs;
      let history = s.history;
      let users = s.users;
      let groups = s.groups;
      let bells = s.bells;
      let mention = s.mention;
      let typing = s.typing;
      let belowRows = 0;
      for (const m of a.messages) {
        const mine = m.from === s.me;
        const here = m.conv === s.open;
        const muted = s.muted.includes(m.conv);
        const named = !mine && s.me !== null && m.verified && mentions(m.text, s.me);
        convs = bump(convs, m.conv, m.serverTime, !mine && !here ? 1 : 0);
        if (!mine && (!here || named) && s.bellEnabled && !muted) bells++;
        if (named && !muted && s.bellEnabled)
          mention = { n: (mention?.n ?? 0) + 1, conv: m.conv, from: m.from, text: m.text };
        // A message from someone ends their "typing…".
        if (!mine && typing[m.conv]?.includes(m.from))
          typing = { ...typing, [m.conv]: withTyping(typing[m.conv], m.from, false) };
        const ref = parseConv(m.conv);
        if (ref?.kind === "user") {
          if (ref.name !== s.me && !users.includes(ref.name)) users = [...users, ref.name];
        } else if (ref?.kind === "group" && !groups.includes(ref.name)) {
          groups = [...groups, ref.name];
        }
        if (history && history.conv === m.conv && history.loading !== "newest") {
          const items = insertItem(history.items, itemOf(m, s.me));
          if (items !== history.items) {
            if (history.scroll > 0) belowRows += rowsOfNewest(items, 1, s.view.width);
            history = {
              ...history,
              items,
              newBelow: history.scroll > 0 && !mine ? history.newBelow + 1 : history.newBelow,
            };
          }
        }
      }
      if (history && belowRows > 0) history = { ...history, scroll: history.scroll + belowRows };
      if (history && history !== s.history) history = { ...history, items: withQuotes(history.items) };
      return { ...s, convs, history, users, groups, bells, mention, typing };
    }
    case "history": {
      const h = s.history;
      if (!h || h.conv !== a.conv) return s;
      let items = a.messages.map((m) => itemOf(m, s.me));
      // Keep what arrived or was sent meanwhile (pending sends stay at the end).
      const known = new Set(items.map((i) => i.id));
      for (const i of h.items) {
        if (!known.has(i.id)) items = i.ord === null ? [...items, i] : insertItem(items, i);
      }
      // Home asked for the very top: show it once everything is loaded.
      const scroll =
        h.loading === "all" ? historyWindow(items, s.view.width, s.view.height, 1e9).scroll : h.scroll;
      const loaded = afterLoad(
        { ...h, items, complete: a.complete, loading: null, scroll },
        s.me,
        h.loading === "newest",
      );
      return settleMark({ ...s, history: withOutbox(loaded, s.outbox, s.me) });
    }

    case "systemLines": {
      const h = s.history;
      if (!h || h.conv !== a.conv) return s;
      return { ...s, history: { ...h, items: withSystemLines(h.items, a.lines, h.complete) } };
    }

    case "sending": {
      const h = s.history;
      const item: HistoryItem = {
        id: a.localId,
        from: s.me ?? "",
        text: a.text,
        time: a.at,
        ord: null,
        verified: true,
        problem: null,
        delivery: "pending",
        error: null,
        replyTo: a.replyTo ?? null,
      };
      if (!h || h.conv !== a.conv) return s;
      return { ...s, history: { ...h, items: withQuotes([...h.items, item]), scroll: 0, newBelow: 0 } };
    }
    case "sent": {
      const convs = bump(s.convs, a.message.conv, a.message.serverTime, 0);
      const h = s.history;
      if (!h || h.conv !== a.message.conv) return { ...s, convs };
      const rest = h.items.filter((i) => i.id !== a.localId);
      return { ...s, convs, history: { ...h, items: withQuotes(insertItem(rest, itemOf(a.message, s.me))) } };
    }
    case "queued": {
      const h = s.history;
      if (!h) return s;
      const items = h.items.some((i) => i.id === a.id)
        ? h.items.filter((i) => i.id !== a.localId)
        : h.items.map((i) => (i.id === a.localId ? { ...i, id: a.id, delivery: "queued" as const } : i));
      return { ...s, history: { ...h, items } };
    }
    case "outbox":
      return { ...s, outbox: a.items, history: withOutbox(s.history, a.items, s.me) };
    case "retry": {
      const h = s.history;
      if (!h) return s;
      // The controller sends the failed ones again (as new pending items).
      return { ...s, history: { ...h, items: h.items.filter((i) => i.delivery !== "failed") } };
    }
    case "sendFailed": {
      const h = s.history;
      if (!h) return s;
      return {
        ...s,
        history: {
          ...h,
          items: h.items.map((i) =>
            i.id === a.localId ? { ...i, delivery: "failed" as const, error: a.error } : i,
          ),
        },
      };
    }

    case "layout":
      if (s.view.width === a.width && s.view.height === a.height) return s;
      return { ...s, view: { width: a.width, height: a.height } };
    case "open":
      return openConv(s, a.conv);
    case "activate": {
      const name = s.selected[a.pane] ?? listOf(s, a.pane)[0];
      return name === undefined ? s : openConv(s, convOf(a.pane, name));
    }
    case "focus":
      return { ...s, focus: a.pane };
    case "focusNext":
      return focusStep(s, 1);
    case "focusPrev":
      return focusStep(s, -1);
    case "select": {
      const list = listOf(s, a.pane);
      if (list.length === 0) return s;
      const cur = s.selected[a.pane];
      const i = cur === null ? -1 : list.indexOf(cur);
      let next: number;
      if (a.by === "first") next = 0;
      else if (a.by === "last") next = list.length - 1;
      else
        next = i === -1 ? (a.by > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, i + a.by));
      return { ...s, selected: { ...s.selected, [a.pane]: list[next]! } };
    }
    case "scroll":
      return scrollHistory(s, a.by);
    case "reveal":
      return reveal(s, { conv: a.conv, id: a.id });
    case "found":
      if (a.hits.length === 0) return { ...s, search: null };
      return showHit(s, { query: a.query, hits: a.hits, at: a.hits.length - 1 }, "");
    case "searchStep": {
      const q = s.search;
      if (!q) return notice(s, "no search to step through: /search WORDS…", "warn");
      const n = q.hits.length;
      const at = a.by === "older" ? q.at - 1 : q.at + 1;
      const wrapped = (at + n) % n;
      const note = at < 0 ? ", back at the newest" : at >= n ? ", back at the oldest" : "";
      return showHit(s, { ...q, at: wrapped }, note);
    }
    case "edit":
      return withEditor(s, a.op);
    case "paste":
      return { ...s, pasting: a.on };
    case "slash":
      return {
        ...s,
        focus: "composer",
        composer: s.composer.text === "" ? { text: "/", cursor: 1 } : s.composer,
      };
    case "help":
      return { ...s, overlay: { kind: "help" } };
    case "devices":
    case "devicesSelect":
    case "devicesRevoke":
    case "devicesConfirm":
    case "devicesCancel":
      return reduceDevices(s, a);
    case "prompt":
      return { ...s, overlay: { kind: "prompt", purpose: a.purpose, editor: emptyEditor } };
    case "close":
      return { ...s, overlay: null };
    case "back": {
      if (s.overlay) return { ...s, overlay: null };
      const ended = backFromAction(s);
      if (ended) return ended;
      if (s.focus === "contacts" || s.focus === "groups") return { ...s, focus: "composer" };
      return { ...s, focus: groupOf(s.open) !== null ? "groups" : "contacts" };
    }
    case "submit":
      if (s.composer.text.trim() === "") return s;
      return {
        ...s,
        composer: emptyEditor,
        compose: null,
        history: s.history ? { ...s.history, scroll: 0, newBelow: 0, mark: null, selected: null } : null,
      };
    case "promptSubmit":
      return { ...s, overlay: null };
    case "notice":
      return notice(s, a.text, a.level);
    case "clearNotice":
      return s.notice?.id === a.id ? { ...s, notice: null } : s;
    case "quit":
      return { ...s, quitting: true };
    case "typing": {
      if ((s.typing[a.conv]?.includes(a.from) ?? false) === a.on) return s;
      return { ...s, typing: { ...s.typing, [a.conv]: withTyping(s.typing[a.conv], a.from, a.on) } };
    }
    case "presence": {
      if ((s.presence[a.name] ?? null) === a.state) return s;
      const presence = { ...s.presence };
      if (a.state === null) delete presence[a.name];
      else presence[a.name] = a.state;
      return { ...s, presence };
    }
    case "muted":
      return { ...s, muted: [...a.convs].sort() };
    case "saveSelected":
    case "completePath":
      return reduceFileKey(s, a);
    default:
      return reduceMessageAction(s, a);
  }
}

/** The line a live group change shows in the status bar, from where `me` stands. */
export function describeGroupNotice(
  n: {
    group: string;
    change:
      | "invited"
      | "joined"
      | "declined"
      | "left"
      | "removed"
      | "renamed"
      | "owner"
      | "admin"
      | "unadmin";
    user: string;
    by: string;
  },
  me: string,
): { text: string; level: NoticeLevel } {
  const who = n.user === me ? "you" : n.user;
  switch (n.change) {
    case "invited":
      return n.user === me
        ? {
            text: `${n.by} invites you to #${n.group}: /accept ${n.group} or /decline ${n.group} (a / x in Groups)`,
            level: "warn",
          }
        : { text: `${n.by} invited ${n.user} to #${n.group}`, level: "info" };
    case "joined":
      return { text: `${who} joined #${n.group}`, level: "info" };
    case "declined":
      return { text: `${who} declined to join #${n.group}`, level: "info" };
    case "left":
      return { text: `${who} left #${n.group}`, level: "info" };
    case "removed":
      return { text: `${n.by} removed ${who} from #${n.group}`, level: n.user === me ? "warn" : "info" };
    case "renamed":
      return { text: `${n.by} renamed #${n.group}`, level: "info" };
    case "owner":
      return { text: `${n.by} made ${who} the owner of #${n.group}`, level: "info" };
    case "admin":
      return { text: `${n.by} made ${who} an admin of #${n.group}`, level: "info" };
    case "unadmin":
      return { text: `${n.by} removed ${who} as an admin of #${n.group}`, level: "info" };
  }
}
