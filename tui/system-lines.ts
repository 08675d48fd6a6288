/**
 * A group's system lines in the history pane (issue 17): "— alice added dave —", dim, among
 * the messages by time. Drawn from the server's record of the group's changes that the client
 * keeps (core/client/system-lines.ts); never a message, so never selected for an action, never
 * counted as read. Pure functions over the pane's items.
 */

import type { HistoryItem } from "./history-layout.js";

/** A system line as the worker hands it to the reducer. */
export interface SystemLineView {
  id: string;
  /** ISO time the server made the change. */
  at: string;
  /** The sentence ("alice added dave"); the pane sanitizes it. */
  text: string;
}

/**
 * The items with the group's system lines placed among them by time (replacing those placed
 * before). Each line goes before the first stored message after it and takes the mailbox
 * position of the message before it, so later messages still land after it. While older
 * messages are not loaded (`complete` false), lines older than the first loaded message wait.
 */
export function withSystemLines(
  items: readonly HistoryItem[],
  lines: readonly SystemLineView[],
  complete: boolean,
): HistoryItem[] {
  const out = items.filter((i) => !i.system);
  const firstStored = out.find((i) => i.ord !== null);
  const from = !complete && firstStored ? firstStored.time : "";
  for (const l of [...lines].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))) {
    if (l.at < from) continue;
    let at = out.findIndex((i) => i.ord === null || (!i.system && i.time > l.at));
    if (at === -1) at = out.length;
    const before = out
      .slice(0, at)
      .reverse()
      .find((i) => i.ord !== null);
    out.splice(at, 0, {
      id: l.id,
      from: "",
      text: l.text,
      time: l.at,
      ord: before?.ord ?? "0",
      verified: true,
      problem: null,
      delivery: null,
      error: null,
      system: true,
    });
  }
  return out;
}
