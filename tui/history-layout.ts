/**
 * How a conversation becomes screen rows, computed from the newest message upwards and only
 * as far as the visible window needs: a 10,000-message history costs what one page costs.
 */

import { sanitize, textWidth, wrapText } from "./text.js";

/**
 * `queued`: in the on-disk outbox, sent when the link returns. `stored` (✓): in every mailbox;
 * `delivered` (✓✓): a device of every recipient has it; `read` (✔✔): the recipients read it.
 */
export type Delivery = "pending" | "queued" | "stored" | "delivered" | "read" | "failed";

/** One entry of the history pane: a stored message, or one of ours still being sent. */
export interface HistoryItem {
  /** The message id; a local id while pending. */
  id: string;
  from: string;
  text: string;
  /** ISO time: the server's for stored messages, the local clock while pending. */
  time: string;
  /** The mailbox cursor (a decimal string) that orders stored messages; null while pending. */
  ord: string | null;
  verified: boolean;
  problem: string | null;
  /** Delivery state of our own messages; null for others'. */
  delivery: Delivery | null;
  error: string | null;
  /** From the message actions (core/client/actions.ts), when the cache applied them. */
  replyTo?: string | null;
  edited?: string | null;
  deleted?: boolean;
  reactions?: Record<string, string[]>;
  /** An attachment (issue 18): shown under the text; `/save ID` fetches it (tui/worker/files.ts). */
  file?: { name: string; size: number; type: string };
  /** The message replied to, as shown above the reply (tui/message-actions.ts fills it). */
  quote?: { from: string; text: string } | null;
  /** The first message that was unread when the conversation opened: the divider goes above it. */
  unreadStart?: boolean;
  /** A group's system line (tui/system-lines.ts): `text` is the sentence, shown dim. */
  system?: boolean;
}

export type Row =
  | { kind: "day"; label: string }
  | { kind: "system"; label: string }
  | { kind: "divider"; label: string }
  | {
      kind: "msg";
      id: string;
      /** Set on a message's first row only. */
      head: { time: string; mark: Mark; from: string } | null;
      indent: number;
      text: string;
      tone: "normal" | "problem" | "pending" | "failed";
    };

export type Mark = "pending" | "stored" | "delivered" | "read" | "failed" | "unverified" | "none";

/** Two columns each; read differs from delivered in shape (heavy checks), not in colour alone. */
export const MARK_CHARS: Record<Mark, string> = {
  pending: "… ",
  stored: "✓ ",
  delivered: "✓✓",
  read: "✔✔",
  failed: "✗ ",
  unverified: "⚠ ",
  none: "  ",
};

/** The label of the divider above the first message unread when the conversation opened. */
export const NEW_MESSAGES = "new messages";

const pad2 = (n: number) => String(n).padStart(2, "0");

export function clock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "--:--" : `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

export function dayKey(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? "?"
    : `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function dayLabel(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "unknown day";
  const key = dayKey(iso);
  if (key === dayKey(now.toISOString()))
    return `Today, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`;
  const y = new Date(now);
  y.setDate(y.getDate() - 1);
  if (key === dayKey(y.toISOString()))
    return `Yesterday, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`;
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`;
}

export function markOf(item: HistoryItem): Mark {
  if (!item.verified) return "unverified";
  if (item.delivery === "pending" || item.delivery === "queued") return "pending";
  if (item.delivery === "failed") return "failed";
  if (item.delivery === "stored" || item.delivery === "delivered" || item.delivery === "read")
    return item.delivery;
  return "none";
}

/** The rows of one item, with a day separator above it when its day differs from the item before. */
export function itemRows(item: HistoryItem, prev: HistoryItem | undefined, width: number, now?: Date): Row[] {
  const rows: Row[] = [];
  if (!prev || dayKey(prev.time) !== dayKey(item.time))
    rows.push({ kind: "day", label: dayLabel(item.time, now) });
  if (item.unreadStart) rows.push({ kind: "divider", label: NEW_MESSAGES });
  if (item.system) {
    for (const label of wrapText(sanitize(`— ${item.text} —`), Math.max(1, width - 2)))
      rows.push({ kind: "system", label });
    return rows;
  }
  const from = sanitize(item.from);
  // "HH:MM ✓✓ name  text": continuation rows are indented under the text, unless the pane is too narrow.
  const indentFull = 5 + 1 + 2 + 1 + textWidth(from) + 2;
  const indent = indentFull <= Math.floor(width / 2) ? indentFull : 2;
  let body: string;
  let tone: "normal" | "problem" | "pending" | "failed" = "normal";
  if (!item.verified) {
    body = sanitize(`[not verified: ${item.problem ?? "unknown problem"}]`);
    tone = "problem";
  } else {
    body = item.deleted ? "(message deleted)" : sanitize(item.text) + (item.edited ? " (edited)" : "");
    if (item.replyTo) body = `${quoteLine(item)}\n${body}`;
    if (item.file && !item.deleted)
      body = `${body}\n${sanitize(`📎 ${item.file.name} (${item.file.size} bytes, ${item.file.type}): /save ${item.id}`)}`;
    const reactions = Object.entries(item.reactions ?? {})
      .map(([emoji, names]) => sanitize(`${emoji} ${names.join(", ")}`))
      .join("  ");
    if (reactions) body = `${body}\n${reactions}`;
    if (item.delivery === "pending") tone = "pending";
    if (item.delivery === "queued") {
      tone = "pending";
      const why = item.error ? ` (${item.error})` : "";
      body = `${body}\n${sanitize(`[in the outbox: sent when the service answers${why}; Ctrl-R retries now]`)}`;
    }
    if (item.delivery === "failed") {
      tone = "failed";
      body = `${body}\n${sanitize(`[not sent: ${item.error ?? "failed"}]`)}`;
    }
  }
  const head = { time: clock(item.time), mark: markOf(item), from };
  if (indent === indentFull) {
    const lines = wrapText(body, width - indent);
    lines.forEach((text, i) => {
      rows.push({ kind: "msg", id: item.id, head: i === 0 ? head : null, indent, text, tone });
    });
  } else {
    // Narrow: the header on its own row, the text below it.
    rows.push({ kind: "msg", id: item.id, head, indent: indentFull, text: "", tone });
    for (const text of wrapText(body, width - indent)) {
      rows.push({ kind: "msg", id: item.id, head: null, indent, text, tone });
    }
  }
  return rows;
}

/** The line above a reply: who wrote the message replied to and its first line, or where it is. */
export function quoteLine(item: Pick<HistoryItem, "replyTo" | "quote">): string {
  const q = item.quote;
  if (!q) return sanitize(`↪ reply to an older message (…${(item.replyTo ?? "").slice(-8)})`);
  const first = [...(q.text.split("\n")[0] ?? "")];
  const text = first.length > 60 ? `${first.slice(0, 59).join("")}…` : first.join("");
  return sanitize(`↪ ${q.from}: ${text}`);
}

export interface HistoryWindow {
  /** The rows to draw, top to bottom: exactly `height` or fewer when the history is short. */
  rows: Row[];
  /** The scroll offset actually used (rows above the bottom), clamped to what exists. */
  scroll: number;
  /** True when the window reaches the oldest loaded item. */
  atTop: boolean;
}

/**
 * The visible window of a history, `scroll` rows above the newest row. Walks items from
 * the newest backwards and stops as soon as the window is full.
 */
export function historyWindow(
  items: readonly HistoryItem[],
  width: number,
  height: number,
  scroll: number,
  now?: Date,
): HistoryWindow {
  const need = Math.max(0, scroll) + Math.max(0, height);
  const collected: Row[][] = [];
  let count = 0;
  let i = items.length - 1;
  for (; i >= 0 && count < need; i--) {
    const rows = itemRows(items[i]!, items[i - 1], width, now);
    collected.push(rows);
    count += rows.length;
  }
  const atTop = i < 0;
  const all: Row[] = [];
  for (let k = collected.length - 1; k >= 0; k--) all.push(...collected[k]!);
  let used = Math.max(0, scroll);
  if (atTop) used = Math.min(used, Math.max(0, all.length - height));
  const end = all.length - used;
  return { rows: all.slice(Math.max(0, end - height), end), scroll: used, atTop };
}

/** How many rows the newest `n` items take (used to keep a scrolled-up view steady when messages arrive). */
export function rowsOfNewest(items: readonly HistoryItem[], n: number, width: number, now?: Date): number {
  let total = 0;
  for (let i = items.length - 1; i >= Math.max(0, items.length - n); i--) {
    total += itemRows(items[i]!, items[i - 1], width, now).length;
  }
  return total;
}

/** Rows to scroll so that item `index` sits about the middle of the window (clamped at the top). */
export function revealScroll(
  items: readonly HistoryItem[],
  index: number,
  width: number,
  height: number,
): number {
  const below = rowsOfNewest(items, items.length - 1 - index, width);
  const own = itemRows(items[index]!, items[index - 1], width).length;
  const wanted = Math.max(0, below - Math.max(0, Math.floor((height - own) / 2)));
  return historyWindow(items, width, height, wanted).scroll;
}

/** Rows to scroll so that item `index` is wholly in view, moving as little as possible from `scroll`. */
export function keepInView(
  items: readonly HistoryItem[],
  index: number,
  width: number,
  height: number,
  scroll: number,
): number {
  const below = rowsOfNewest(items, items.length - 1 - index, width);
  const own = itemRows(items[index]!, items[index - 1], width).length;
  // The item spans rows [below, below + own) counted up from the bottom; the window shows [scroll, scroll + height).
  let next = scroll;
  if (below < next) next = below;
  if (below + own > next + height) next = below + own - height;
  return historyWindow(items, width, height, Math.max(0, next)).scroll;
}
