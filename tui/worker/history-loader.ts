/** Runs `loadHistory` intents: reads a page of the open conversation from the cache. */

import type { Cache } from "../../core/client/cache.js";
import { groupOf } from "../../core/client/conv.js";
import { cachedSystemLines, refreshSystemLines, type SystemEntry } from "../../core/client/system-lines.js";
import { missingQuotes } from "../message-actions.js";
import type { Intent } from "../state.js";
import type { WorkerContext } from "./context.js";
import type { Feed } from "./feed.js";
import { markRead } from "./reads.js";

/** Replies to messages older than the loaded page: their quotes come from the cache (same conversation only). */
export function loadQuotes(ctx: Pick<WorkerContext, "dispatch" | "state">, cache: Cache, conv: string): void {
  const wanted = missingQuotes(ctx.state().history);
  if (wanted.length === 0) return;
  const found = wanted.flatMap((id) => {
    const m = cache.actions.message(id);
    return m && m.conv === conv ? cache.actions.apply([m]) : [];
  });
  if (found.length > 0) ctx.dispatch({ type: "quotes", conv, messages: found });
}

export class HistoryLoader {
  constructor(
    private readonly ctx: Pick<WorkerContext, "dispatch" | "state" | "client" | "log">,
    private readonly feed: Pick<Feed, "see">,
    /** Messages loaded when a conversation opens, and per step when scrolling back. */
    private readonly pageSize: number,
  ) {}

  /** How many of the newest messages an intent asks for. */
  limitOf(intent: Intent): number {
    if (intent.want === "newest") return this.pageSize;
    if (intent.want === "all") return Number.MAX_SAFE_INTEGER;
    return intent.have + this.pageSize;
  }

  run(intent: Intent): void {
    const limit = this.limitOf(intent);
    if (intent.want === "newest") {
      this.load(intent.conv, limit);
      return;
    }
    // A turn later, so the pane draws "loading…" before a long read.
    const t = setImmediate(() => this.load(intent.conv, limit));
    t.unref?.();
  }

  private load(conv: string, limit: number): void {
    const c = this.ctx.client();
    // The user moved on meanwhile: the page is not wanted any more.
    if (!c || this.ctx.state().history?.conv !== conv) return;
    const messages = c.cache.history(conv, limit);
    this.feed.see(messages.map((m) => m.id));
    this.ctx.dispatch({ type: "history", conv, messages, complete: messages.length < limit });
    this.showSystemLines(conv, cachedSystemLines(c.cache, groupOf(conv) ?? ""));
    if (limit === this.pageSize) this.refreshSystemLines(conv);
    loadQuotes(this.ctx, c.cache, conv);
    markRead(c.cache, this.ctx.state().history, this.ctx.log);
    // What the pane shows now counts as read (read receipts; none when turned off).
    c.markRead(messages.slice(-this.ctx.state().view.height));
  }

  /**
   * Reads a group's record of changes from the service and shows its system lines, when the
   * group is still open (opening it, and on a live group notice). Failures keep the cached lines.
   */
  refreshSystemLines(conv: string): void {
    const c = this.ctx.client();
    const group = groupOf(conv);
    if (!c || group === null) return;
    refreshSystemLines(c, group).then(
      (lines) => this.showSystemLines(conv, lines),
      (err) => this.ctx.log.warn({ err, group }, "could not read the group's changes"),
    );
  }

  private showSystemLines(conv: string, lines: SystemEntry[]): void {
    if (groupOf(conv) === null || this.ctx.state().history?.conv !== conv) return;
    this.ctx.dispatch({
      type: "systemLines",
      conv,
      lines: lines.map((l) => ({ id: l.id, at: l.at, text: l.text })),
    });
  }
}
