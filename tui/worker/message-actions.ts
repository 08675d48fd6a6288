/**
 * Sends what the history pane's actions ask for (reply, edit, delete, react) and keeps the open
 * conversation current when an action lands, from this TUI, another process of the profile or
 * another user: the cache applies actions when it reads (core/client/actions.ts), so the items
 * shown are read again from it and their changed fields replace the old ones.
 */

import { checkActionTarget } from "../../core/client/actions.js";
import { targetOfConv } from "../../core/client/conv.js";
import { removeFromService } from "../../core/client/files.js";
import type { MessageAction } from "../../core/client/message.js";
import { asZmqchatError } from "../../core/errors.js";
import type { ComposeMode } from "../message-actions.js";
import type { WorkerContext } from "./context.js";

/** Fewest messages read again for a refresh (more when more are loaded). */
const REFRESH_MIN = 200;

export class MessageActions {
  private dirty = new Set<string>();
  private pending: NodeJS.Immediate | null = null;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly send: (conv: string, text: string, extra: { replyTo: string }) => void,
  ) {}

  /** Enter in the composer while replying or editing. */
  submit(mode: ComposeMode, text: string): void {
    if (mode.kind === "reply") {
      this.send(mode.conv, text, { replyTo: mode.id });
      return;
    }
    this.act(mode.id, text, { kind: "edit", target: mode.id }, "edited");
  }

  delete(id: string): void {
    // The text is what clients that predate actions show.
    this.act(id, "(deleted a message)", { kind: "delete", target: id }, "deleted");
  }

  /** Adds `emoji` to the message, or takes it back when this user had given it. */
  react(id: string, emoji: string): void {
    const me = this.ctx.state().me;
    const item = this.ctx.state().history?.items.find((i) => i.id === id);
    const remove = me !== null && (item?.reactions?.[emoji]?.includes(me) ?? false);
    this.act(
      id,
      remove ? `(took back ${emoji})` : emoji,
      { kind: "react", target: id, emoji, remove },
      remove ? `took back ${emoji}` : `reacted ${emoji}`,
    );
  }

  private act(id: string, text: string, action: MessageAction, done: string): void {
    const c = this.ctx.client();
    if (!c) return;
    this.ctx.track(
      (async () => {
        try {
          await this.ctx.registered();
          // The same checks as `zmqchat edit|delete|react`: only the author edits or deletes.
          const m = checkActionTarget(c.cache.actions, c.name, id, action.kind);
          const target = targetOfConv(m.conv);
          if (!target) throw new Error(`message ${id} has no conversation`);
          const file = action.kind === "delete" ? c.cache.actions.files.get(id) : null;
          await c.send(target, text, {}, { action });
          // A deleted file message's file leaves the service too (as `zmqchat delete` does).
          if (file) await removeFromService(c, file);
          this.changed(m.conv);
          this.ctx.notice(done);
        } catch (err) {
          this.ctx.notice(`not ${done}: ${asZmqchatError(err).message}`, "error");
        }
      })(),
    );
  }

  /** Something in `conv` may have changed (an action landed): the open conversation is read again, once per turn. */
  changed(conv: string | null): void {
    const open = this.ctx.state().history?.conv;
    if (!open || (conv !== null && conv !== open)) return;
    this.dirty.add(open);
    if (this.pending) return;
    this.pending = setImmediate(() => {
      this.pending = null;
      const convs = [...this.dirty];
      this.dirty.clear();
      for (const conv of convs) this.refresh(conv);
    });
  }

  private refresh(conv: string): void {
    const c = this.ctx.client();
    const h = this.ctx.state().history;
    if (!c || this.ctx.stopped() || h?.conv !== conv) return;
    try {
      const stored = h.items.filter((i) => i.ord !== null).length;
      const messages = c.cache.history(conv, Math.max(REFRESH_MIN, stored));
      this.ctx.dispatch({ type: "refresh", conv, messages });
    } catch (err) {
      this.ctx.log.warn({ err }, "reading the conversation again failed");
    }
  }

  stop(): void {
    if (this.pending) clearImmediate(this.pending);
    this.pending = null;
  }
}
