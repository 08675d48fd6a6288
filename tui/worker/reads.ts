/**
 * Read marks and unread counts. Each conversation's read mark (the mailbox position of the
 * newest message the user has seen in it) lives in the profile's cache, so the count survives
 * a restart and is shared with other processes of the profile.
 */

import type { Cache } from "../../core/client/cache.js";
import type { Logger } from "../../core/logger.js";
import type { HistoryState } from "../state.js";

/** Where the read mark of `conv` is kept (cache state). */
export const readMarkKey = (conv: string) => `tui.read.${conv}`;
/** The mailbox position up to which the TUI has shown messages (cache state). */
export const SEEN_MARK = "tui.seen";
/** How many of a conversation's newest messages are counted for its unread mark. */
const UNREAD_SCAN = 100;

/** Mailbox positions are decimal strings that only grow: shorter is older, then by text. */
export function ordLess(a: string, b: string): boolean {
  return a.length !== b.length ? a.length < b.length : a < b;
}

/**
 * Every conversation in the cache with its newest time and its unread count: messages of others
 * after the conversation's read mark (or, for one never opened, after the TUI's seen mark), or
 * after the newest message read on any device of the user (core/client/read-state.ts), if later.
 */
export function conversationsWithUnread(
  cache: Cache,
  me: string,
): Array<{ conv: string; last: string; unread: number }> {
  const seenMark = cache.getState(SEEN_MARK);
  return cache.conversations().map(({ conv, last }) => {
    const here = cache.getState(readMarkKey(conv)) ?? seenMark;
    const shared = cache.receipts.readMark(conv);
    const mark = here === null ? shared : shared === null || ordLess(shared, here) ? here : shared;
    let unread = 0;
    if (mark !== null) {
      for (const m of cache.history(conv, UNREAD_SCAN))
        if (m.from !== me && ordLess(mark, m.cursor)) unread++;
    }
    return { conv, last, unread };
  });
}

/** The mailbox position of the newest stored message shown in `h`, or null when none is stored yet. */
export function newestShown(h: HistoryState): string | null {
  let newest: string | null = null;
  for (const i of h.items) if (i.ord !== null && (newest === null || ordLess(newest, i.ord))) newest = i.ord;
  return newest;
}

/** Marks the open conversation read up to its newest shown message. */
export function markRead(cache: Cache, h: HistoryState | null, log: Logger): void {
  if (!h) return;
  const newest = newestShown(h);
  if (newest === null) return;
  try {
    const key = readMarkKey(h.conv);
    if (cache.getState(key) !== newest) cache.setState(key, newest);
  } catch (err) {
    log.warn({ err }, "could not save a read mark");
  }
}
