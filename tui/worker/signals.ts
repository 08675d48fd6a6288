/**
 * Typing and presence in the TUI (issue 17): says "typing" while the user writes in an open
 * conversation (the client throttles the signals, and so does this, to spare the promise per
 * key), shows who types until their signal runs out or their message comes, and keeps the
 * contacts' presence dots current. Signals ride the live path only; nothing here is stored.
 */

import { targetOfConv } from "../../core/client/conv.js";
import { TYPING_EVERY_MS } from "../presence.js";
import type { WorkerContext } from "./context.js";
import type { Timers } from "./timers.js";

export class Signals {
  private lastTyping = new Map<string, number>();
  /** When each shown "typing" runs out, by conv and name. */
  private until = new Map<string, number>();

  constructor(
    private readonly ctx: WorkerContext,
    private readonly timers: Timers,
    private readonly now: () => number = Date.now,
  ) {}

  /** The user typed in the composer of `conv`: a typing signal, at most one per TYPING_EVERY_MS. */
  typed(conv: string): void {
    const c = this.ctx.client();
    const target = targetOfConv(conv);
    if (!c || !target || c.state !== "online") return;
    const t = this.now();
    if (t - (this.lastTyping.get(conv) ?? 0) < TYPING_EVERY_MS) return;
    this.lastTyping.set(conv, t);
    c.typing(target).catch((err) => this.ctx.log.debug({ err }, "typing signal not sent"));
  }

  /** A message went to `conv`: the next key typed there says "typing" again at once. */
  sent(conv: string): void {
    this.lastTyping.delete(conv);
  }

  /** `from` types in `conv` until `until` (ISO): shown until then unless renewed. */
  typing(from: string, conv: string, until: string): void {
    const key = `${conv}\0${from}`;
    const end = Date.parse(until);
    if (!Number.isFinite(end) || end <= this.now()) return;
    this.until.set(key, end);
    this.ctx.dispatch({ type: "typing", conv, from, on: true });
    this.timers.after(end - this.now(), () => {
      // A newer signal moved the end: that one's timer ends it.
      if (this.until.get(key) !== end) return;
      this.until.delete(key);
      this.ctx.dispatch({ type: "typing", conv, from, on: false });
    });
  }

  presence(name: string, state: "online" | "offline"): void {
    this.ctx.dispatch({ type: "presence", name, state });
  }
}
