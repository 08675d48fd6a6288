/**
 * Optimistic sends: a message shows at once as pending, then as stored (✓), queued in the
 * on-disk outbox, or failed; the outbox (shared with `zmqchat send --queue`) is shown and sent.
 */

import type { MessageExtra } from "../../core/client/actions.js";
import type { ChatClient, Target } from "../../core/client/client.js";
import { targetOfConv } from "../../core/client/conv.js";
import { asZmqchatError } from "../../core/errors.js";
import { convTitle, type State } from "../state.js";
import type { WorkerContext } from "./context.js";
import type { Feed } from "./feed.js";

function targetOf(conv: string): Target {
  const target = targetOfConv(conv);
  if (!target) throw new Error(`not a conversation id: ${conv}`);
  return target;
}

export class Sends {
  private localIds = 0;
  private flushing: Promise<void> | null = null;
  /** The outbox as last shown (ids and errors), so that only changes are dispatched. */
  private outboxShown = "";

  constructor(
    private readonly ctx: WorkerContext,
    private readonly feed: Pick<Feed, "see">,
  ) {}

  /** Sends `text` to `conv` (a reply when `extra` says so), shown as pending until the service stores it. */
  send(conv: string, text: string, extra?: MessageExtra): void {
    const c = this.ctx.client();
    if (!c) return;
    const localId = `local-${++this.localIds}`;
    this.ctx.dispatch({
      type: "sending",
      localId,
      conv,
      text,
      at: new Date().toISOString(),
      ...(extra?.replyTo ? { replyTo: extra.replyTo } : {}),
    });
    // Kept in the on-disk outbox until stored, so a message written offline is sent on reconnect.
    // Offline, it goes there at once (sendOrQueue writes it before it tries the link); online,
    // it waits until the name is known to be registered.
    const offline = c.state !== "online";
    const sending = offline
      ? c.sendOrQueue(targetOf(conv), text, { timeoutMs: 3000 }, extra)
      : this.ctx.registered().then(() => c.sendOrQueue(targetOf(conv), text, {}, extra));
    this.ctx.track(
      sending.then(
        (r) => {
          if (r.message) {
            this.feed.see([r.message.id]);
            this.ctx.dispatch({ type: "sent", localId, message: r.message });
          } else {
            this.ctx.dispatch({ type: "queued", localId, id: r.id });
            this.showOutbox(c);
          }
        },
        (err) => {
          const e = asZmqchatError(err);
          this.ctx.dispatch({ type: "sendFailed", localId, error: e.message });
          if (e.code === "key_changed") {
            const who = /^([a-z0-9][a-z0-9_.-]*)'s keys changed/.exec(e.message)?.[1];
            if (who) this.ctx.dispatch({ type: "keyChanged", name: who });
            this.ctx.notice(
              `not sent: ${who ?? "a recipient"}'s keys changed. Compare fingerprints (/fingerprint ${who ?? "USER"}), then /trust ${who ?? "USER"}`,
              "error",
            );
          } else {
            this.ctx.notice(`not sent to ${convTitle(conv)}: ${e.message} (Ctrl-R sends it again)`, "error");
          }
        },
      ),
    );
  }

  /** Ctrl-R: sends again the failed messages of the open conversation, then the outbox. */
  retry(prev: State): void {
    const c = this.ctx.client();
    if (!c) return;
    const h = prev.history;
    const failed = h?.items.filter((i) => i.delivery === "failed") ?? [];
    for (const i of failed) this.send(h!.conv, i.text);
    if (prev.outbox.length > 0) this.ctx.track(this.flush(c));
    else if (failed.length === 0) this.ctx.notice("nothing to send again here");
  }

  /** Sends what waits in the outbox (once the name is known to be registered). */
  flush(c: ChatClient): Promise<void> {
    this.flushing ??= this.ctx
      .registered()
      .then(() => c.flushOutbox())
      .then(
        (r) => {
          if (r.sent > 0) this.ctx.notice(`sent ${r.sent} from the outbox`);
        },
        (err) => this.ctx.log.warn({ err }, "sending the outbox failed"),
      )
      .finally(() => {
        this.flushing = null;
        this.showOutbox(c);
      });
    return this.flushing;
  }

  /** Shows what waits in the on-disk outbox (this TUI's and `zmqchat send --queue`'s), when it changed. */
  showOutbox(c: ChatClient): void {
    try {
      const items = c.cache
        .outbox()
        .filter((o) => !o.extra?.action)
        .map((o) => ({
          id: o.id,
          conv: o.conv,
          text: o.text,
          at: o.sentAt,
          error: o.lastError,
        }));
      const shown = JSON.stringify(items.map((i) => [i.id, i.error]));
      if (shown === this.outboxShown) return;
      this.outboxShown = shown;
      this.ctx.dispatch({ type: "outbox", items });
    } catch (err) {
      this.ctx.log.warn({ err }, "could not read the outbox");
    }
  }
}
