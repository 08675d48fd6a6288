/**
 * The TUI's worker: the only part that calls the chat client. It turns client events and
 * cache contents into actions for the store, and runs the intents the UI dispatches (send,
 * open a conversation, slash commands) without ever blocking the UI on a reply.
 */

import type { ChatMessage } from "../core/client/cache.js";
import type { ChatClient, ClientEvent, Target } from "../core/client/client.js";
import { groupConv, groupOf, targetOfConv, userConv } from "../core/client/conv.js";
import { searchMessages } from "../core/client/search.js";
import { fingerprint } from "../core/crypto/keys.js";
import { asZmqchatError } from "../core/errors.js";
import { type Logger, silentLogger } from "../core/logger.js";
import { NAME_PATTERN, NAME_RULE } from "../core/protocol/limits.js";
import { type Command, isCommand, parseCommand, parseGroupPrompt } from "./commands.js";
import {
  type Action,
  convTitle,
  describeGroupNotice,
  initialState,
  type NoticeLevel,
  reduce,
  type State,
} from "./state.js";
import { Store } from "./store.js";

/** A signed-in profile: its client (built by bin/, with whatever transport) and how to close it. */
export interface TuiSession {
  client: ChatClient;
  close(): Promise<void>;
}

/** A profile made just now: `discard` removes it again when its name cannot be registered. */
export interface NewSession extends TuiSession {
  discard(): Promise<void>;
}

/** The profiles on this machine, as bin/ provides them (the TUI never builds transports). */
export interface ProfileAccess {
  list(): string[];
  exists(name: string): boolean;
  open(name: string): TuiSession;
  create(name: string): NewSession;
}

export interface ControllerOptions {
  profiles: ProfileAccess;
  /** Ring the terminal bell for messages in other conversations (default true). */
  bell?: boolean;
  ring?: () => void;
  /** Runs before the first network call (e.g. starts the local stack); `note` goes to the status bar. */
  prepare?: (note: (text: string) => void) => Promise<void>;
  /** How often the shared cache is checked for messages other processes of this profile fetched. */
  pollMs?: number;
  /** How often the user and group lists are fetched again. */
  refreshMs?: number;
  noticeMs?: number;
  /** Messages loaded when a conversation opens, and per step when scrolling back. */
  pageSize?: number;
  log?: Logger;
}

/** How many of the newest matches `/search` steps through. */
const SEARCH_LIMIT = 100;
const READ_MARK = (conv: string) => `tui.read.${conv}`;
const SEEN_MARK = "tui.seen";

function ordLess(a: string, b: string): boolean {
  return a.length !== b.length ? a.length < b.length : a < b;
}

function targetOf(conv: string): Target {
  const target = targetOfConv(conv);
  if (!target) throw new Error(`not a conversation id: ${conv}`);
  return target;
}

export class Controller {
  readonly store: Store;
  private readonly opts: Required<Omit<ControllerOptions, "prepare" | "log">> &
    Pick<ControllerOptions, "prepare">;
  private readonly log: Logger;
  private session: TuiSession | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly seen = new Set<string>();
  private queue: ChatMessage[] = [];
  private flushing: NodeJS.Immediate | null = null;
  private mark: string | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly exitListeners = new Set<() => void>();
  private ready: Promise<void> = Promise.resolve();
  /** Resolves once the name is known to be registered: requests that need a login wait for it. */
  private registered: Promise<void> = Promise.resolve();
  private markRegistered: () => void = () => {};
  private lastRing = 0;
  private localIds = 0;
  private stopped = false;
  /** Background work (sends, commands), awaited by `idle()` in tests and on stop. */
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(options: ControllerOptions) {
    this.opts = {
      bell: true,
      ring: () => {},
      pollMs: 750,
      refreshMs: 30_000,
      noticeMs: 8000,
      pageSize: 200,
      ...options,
    };
    this.log = options.log ?? silentLogger;
    this.store = new Store(
      reduce,
      initialState({ bell: this.opts.bell, profiles: safeList(options.profiles) }),
    );
  }

  get state(): State {
    return this.store.getState();
  }

  get client(): ChatClient | null {
    return this.session?.client ?? null;
  }

  /** The one entry point for actions: reduce, then run the effects the change asks for. */
  dispatch = (action: Action): void => {
    const prev = this.store.dispatch(action);
    this.effects(action, prev, this.store.getState());
  };

  /** Called once the user asked to leave (Ctrl-C, /quit). */
  onExit(listener: () => void): () => void {
    this.exitListeners.add(listener);
    return () => {
      this.exitListeners.delete(listener);
    };
  }

  /** Opens `user`'s profile, signs the user up, or shows the sign-up screen. */
  start(user?: string): void {
    const prepare = this.opts.prepare;
    this.ready = prepare
      ? prepare((note) => this.dispatch({ type: "stack", note })).catch((err) => {
          this.notice(`could not start the local stack: ${asZmqchatError(err).message}`, "error");
        })
      : Promise.resolve();
    const profiles = safeList(this.opts.profiles);
    if (user) {
      if (this.opts.profiles.exists(user)) this.enter(this.opts.profiles.open(user));
      else {
        this.dispatch({ type: "signup/show", profiles, name: user });
        this.track(this.signUp(user));
      }
      return;
    }
    if (profiles.length === 1) {
      this.enter(this.opts.profiles.open(profiles[0]!));
      return;
    }
    this.dispatch({ type: "signup/show", profiles });
  }

  /** Resolves when the background work started so far has settled (for tests). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.flushing) clearImmediate(this.flushing);
    this.unsubscribe?.();
    const s = this.session;
    this.session = null;
    if (s) {
      try {
        if (this.mark !== null) s.client.cache.setState(SEEN_MARK, this.mark);
      } catch (err) {
        this.log.warn({ err }, "could not save the seen mark");
      }
      await s.close();
    }
  }

  // ---- effects ------------------------------------------------------------------------

  private effects(a: Action, prev: State, next: State): void {
    if (next.bells > prev.bells) this.ring();
    if (next.notice && next.notice !== prev.notice) this.clearLater(next.notice.id);
    switch (a.type) {
      case "quit":
        for (const l of [...this.exitListeners]) l();
        break;
      case "submit":
        this.submit(prev);
        break;
      case "promptSubmit":
        this.promptSubmit(prev);
        break;
      case "answerInvite": {
        const name = prev.selected.groups;
        if (name && prev.invites.includes(name))
          this.track(this.run({ kind: "invite", answer: a.answer, name }));
        else this.notice("select an invitation (✉) in Groups to answer it", "warn");
        break;
      }
      case "signup/submit":
        if (!prev.signup.busy) this.track(this.signUp(prev.signup.editor.text.trim()));
        break;
      case "arrived":
        if (next.open && a.messages.some((m) => m.conv === next.open)) this.markRead(next);
        break;
      case "retry":
        this.retry(prev);
        break;
      default:
        break;
    }
    const h = next.history;
    if (h?.loading && (prev.history?.conv !== h.conv || prev.history.loading !== h.loading)) {
      if (h.loading === "newest") this.loadHistory(h.conv, this.opts.pageSize);
      else {
        const limit = h.loading === "all" ? Number.MAX_SAFE_INTEGER : h.items.length + this.opts.pageSize;
        const conv = h.conv;
        const t = setImmediate(() => this.loadHistory(conv, limit));
        t.unref?.();
      }
    }
  }

  private ring(): void {
    const now = Date.now();
    if (now - this.lastRing < 1000) return;
    this.lastRing = now;
    this.opts.ring();
  }

  private clearLater(id: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.dispatch({ type: "clearNotice", id });
    }, this.opts.noticeMs);
    t.unref();
    this.timers.add(t);
  }

  private notice(text: string, level: NoticeLevel = "info"): void {
    this.dispatch({ type: "notice", text, level });
  }

  private track<T>(p: Promise<T>): void {
    const tracked = p
      .catch((err) => {
        this.log.warn({ err }, "background work failed");
        this.notice(asZmqchatError(err).message, "error");
      })
      .finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  // ---- sign-up and session --------------------------------------------------------------

  private async signUp(name: string): Promise<void> {
    if (name === "") {
      this.dispatch({ type: "signup/error", text: "type a name first" });
      return;
    }
    if (!NAME_PATTERN.test(name)) {
      this.dispatch({ type: "signup/error", text: `"${name}" is not a valid name: ${NAME_RULE}` });
      return;
    }
    if (this.opts.profiles.exists(name)) {
      this.enter(this.opts.profiles.open(name));
      return;
    }
    this.dispatch({ type: "signup/busy", text: `making keys for ${name} and registering the name…` });
    let s: NewSession;
    try {
      s = this.opts.profiles.create(name);
    } catch (err) {
      this.dispatch({ type: "signup/error", text: asZmqchatError(err).message });
      return;
    }
    await this.ready;
    try {
      const r = await s.client.register({ timeoutMs: 20_000 });
      if (this.stopped) {
        await s.close();
        return;
      }
      this.enter(
        s,
        r.created ? `welcome, ${name}! you are registered` : `${name} was already registered with these keys`,
      );
    } catch (err) {
      await s.discard().catch(() => {});
      const e = asZmqchatError(err);
      const text =
        e.code === "conflict"
          ? `the name ${name} is taken; pick another`
          : e.code === "timeout" || e.code === "unavailable"
            ? `cannot reach the service: ${e.message}`
            : e.message;
      this.dispatch({ type: "signup/error", text });
    }
  }

  private enter(s: TuiSession, greeting?: string): void {
    this.session = s;
    const c = s.client;
    this.dispatch({
      type: "session",
      me: c.name,
      fingerprint: fingerprint(c.name, c.publicKeys),
      endpoint: c.endpoint,
      bell: this.opts.bell,
    });
    this.unsubscribe = c.on((e) => this.onClientEvent(e));
    this.dispatch({ type: "connection", state: c.state, endpoint: c.endpoint });
    this.registered = new Promise((resolve) => {
      this.markRegistered = resolve;
    });
    this.loadFromCache(c);
    this.every(this.opts.pollMs, () => this.poll());
    this.every(this.opts.refreshMs, () => {
      if (c.state === "online") this.track(this.refreshLists(c));
    });
    if (greeting) this.notice(greeting);
    this.track(this.connect(c));
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(() => {
      if (!this.stopped) fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** What the cache already knows: people, key warnings, conversations and their unread counts. */
  private loadFromCache(c: ChatClient): void {
    const cache = c.cache;
    const contacts = cache.contacts();
    this.dispatch({
      type: "users",
      names: contacts.map((x) => x.name),
      keyChanged: contacts.filter((x) => x.pending).map((x) => x.name),
      verified: contacts.filter((x) => x.verified).map((x) => x.name),
    });
    const seenMark = cache.getState(SEEN_MARK);
    const convs = cache.conversations().map(({ conv, last }) => {
      const mark = cache.getState(READ_MARK(conv)) ?? seenMark;
      let unread = 0;
      if (mark !== null) {
        for (const m of cache.history(conv, 100)) if (m.from !== c.name && ordLess(mark, m.cursor)) unread++;
      }
      return { conv, last, unread };
    });
    this.dispatch({ type: "convs", convs });
    this.showOutbox(c);
    this.mark = cache.cursor;
    for (const m of cache.after(this.mark, 10_000)) this.seen.add(m.id);
  }

  private async connect(c: ChatClient): Promise<void> {
    await this.ready;
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        // Harmless when registered; makes a profile whose stack was reset usable again.
        await c.register();
        this.markRegistered();
        await c.goLive();
        c.keepAlive();
        await this.refreshLists(c);
        return;
      } catch (err) {
        const e = asZmqchatError(err);
        if (this.stopped) return;
        if (e.code !== "timeout" && e.code !== "unavailable") {
          this.notice(
            e.code === "conflict"
              ? `the name ${c.name} is registered with other keys on ${c.endpoint}`
              : e.message,
            "error",
          );
          return;
        }
        this.notice(`cannot reach ${c.endpoint}; trying again`, "warn");
        await new Promise<void>((resolve) => {
          const t = setTimeout(
            () => {
              this.timers.delete(t);
              resolve();
            },
            Math.min(5000, 500 * 2 ** attempt),
          );
          t.unref();
          this.timers.add(t);
        });
      }
    }
  }

  private async refreshLists(c: ChatClient): Promise<void> {
    const [users, groups] = await Promise.all([c.users(), c.groups()]);
    if (this.stopped) return;
    this.dispatch({
      type: "users",
      names: users.map((u) => u.name),
      keyChanged: c.cache
        .contacts()
        .filter((x) => x.pending)
        .map((x) => x.name),
      verified: c.cache
        .contacts()
        .filter((x) => x.verified)
        .map((x) => x.name),
    });
    this.dispatch({
      type: "groups",
      names: groups.filter((g) => g.members.some((m) => m.name === c.name)).map((g) => g.name),
      invites: groups.filter((g) => !g.members.some((m) => m.name === c.name)).map((g) => g.name),
    });
  }

  private onClientEvent(e: ClientEvent): void {
    switch (e.type) {
      case "message":
        this.accept([e.message]);
        break;
      case "state": {
        this.dispatch({ type: "connection", state: e.state, endpoint: e.endpoint });
        const c = this.session?.client;
        // Back online: what waits in the outbox goes now.
        if (e.state === "online" && c && this.state.outbox.length > 0) this.track(this.flush(c));
        break;
      }
      case "outbox": {
        const c = this.session?.client;
        if (c) this.showOutbox(c);
        break;
      }
      case "key_changed":
        this.dispatch({ type: "keyChanged", name: e.name });
        break;
      case "sync":
        this.dispatch({ type: "sync", received: e.received, done: e.done });
        break;
      case "group": {
        const c = this.session?.client;
        if (!c) break;
        const { text, level } = describeGroupNotice(e.notice, c.name);
        this.notice(text, level);
        this.track(this.refreshLists(c));
        break;
      }
    }
  }

  /** Queues new messages; one `arrived` action per tick keeps a big sync from re-rendering per message. */
  private accept(messages: ChatMessage[]): void {
    for (const m of messages) {
      if (this.seen.has(m.id)) continue;
      this.seen.add(m.id);
      this.queue.push(m);
    }
    if (this.queue.length > 0 && !this.flushing) {
      this.flushing = setImmediate(() => {
        this.flushing = null;
        const batch = this.queue;
        this.queue = [];
        if (!this.stopped && batch.length > 0) this.dispatch({ type: "arrived", messages: batch });
      });
    }
  }

  /**
   * Reads what other processes of this profile (zmqchat send, history, listen) put in the
   * shared cache: their syncs insert messages this client then never reports as new.
   */
  private poll(): void {
    const c = this.session?.client;
    if (!c) return;
    try {
      const fence = c.cache.cursor;
      let from = this.mark;
      for (let page = 0; page < 20; page++) {
        const batch = c.cache.after(from, 500);
        this.accept(batch);
        if (batch.length < 500) break;
        from = batch.at(-1)!.cursor;
      }
      // `zmqchat send --queue` on this profile adds to the same outbox.
      this.showOutbox(c);
      if (fence !== null && (this.mark === null || ordLess(this.mark, fence))) {
        this.mark = fence;
        c.cache.setState(SEEN_MARK, fence);
      }
    } catch (err) {
      this.log.warn({ err }, "reading the shared cache failed");
    }
  }

  private loadHistory(conv: string, limit: number): void {
    const c = this.session?.client;
    if (!c || this.state.history?.conv !== conv) return;
    const messages = c.cache.history(conv, limit);
    for (const m of messages) this.seen.add(m.id);
    this.dispatch({ type: "history", conv, messages, complete: messages.length < limit });
    this.markRead(this.state);
  }

  private markRead(s: State): void {
    const c = this.session?.client;
    const h = s.history;
    if (!c || !h) return;
    let newest: string | null = null;
    for (const i of h.items)
      if (i.ord !== null && (newest === null || ordLess(newest, i.ord))) newest = i.ord;
    if (newest === null) return;
    try {
      const key = READ_MARK(h.conv);
      if (c.cache.getState(key) !== newest) c.cache.setState(key, newest);
    } catch (err) {
      this.log.warn({ err }, "could not save a read mark");
    }
  }

  // ---- intents -------------------------------------------------------------------------

  private submit(prev: State): void {
    const text = prev.composer.text;
    if (text.trim() === "") return;
    if (isCommand(text)) {
      this.track(this.run(parseCommand(text)));
      return;
    }
    const body = text.startsWith("//") ? text.slice(1) : text;
    if (!prev.open) {
      this.notice("open a conversation first: Ctrl-N, /msg USER, or Enter on a contact", "warn");
      this.dispatch({ type: "edit", op: { kind: "insert", text } });
      return;
    }
    this.send(prev.open, body);
  }

  private promptSubmit(prev: State): void {
    if (prev.overlay?.kind !== "prompt") return;
    const text = prev.overlay.editor.text.trim();
    if (text === "") return;
    if (prev.overlay.purpose === "chat") this.track(this.run(parseCommand(`/msg ${text}`)));
    else this.track(this.run(parseGroupPrompt(text)));
  }

  /** What waits in the on-disk outbox (this TUI's and `zmqchat send --queue`'s). */
  private showOutbox(c: ChatClient): void {
    try {
      const items = c.cache.outbox().map((o) => ({
        id: o.id,
        conv: o.conv,
        text: o.text,
        at: o.sentAt,
        error: o.lastError,
      }));
      const shown = JSON.stringify(items.map((i) => [i.id, i.error]));
      if (shown === this.outboxShown) return;
      this.outboxShown = shown;
      this.dispatch({ type: "outbox", items });
    } catch (err) {
      this.log.warn({ err }, "could not read the outbox");
    }
  }

  private flushing_: Promise<void> | null = null;
  /** The outbox as last shown (ids and errors), so the poll dispatches only changes. */
  private outboxShown = "";

  private flush(c: ChatClient): Promise<void> {
    this.flushing_ ??= this.registered
      .then(() => c.flushOutbox())
      .then(
        (r) => {
          if (r.sent > 0) this.notice(`sent ${r.sent} from the outbox`);
        },
        (err) => this.log.warn({ err }, "sending the outbox failed"),
      )
      .finally(() => {
        this.flushing_ = null;
        this.showOutbox(c);
      });
    return this.flushing_;
  }

  /** Ctrl-R: sends again the failed messages of the open conversation, then the outbox. */
  private retry(prev: State): void {
    const c = this.session?.client;
    if (!c) return;
    const failed = prev.history?.items.filter((i) => i.delivery === "failed") ?? [];
    for (const i of failed) this.send(prev.history!.conv, i.text);
    if (prev.outbox.length > 0) this.track(this.flush(c));
    else if (failed.length === 0) this.notice("nothing to send again here");
  }

  private send(conv: string, text: string): void {
    const c = this.session?.client;
    if (!c) return;
    const localId = `local-${++this.localIds}`;
    this.dispatch({ type: "sending", localId, conv, text, at: new Date().toISOString() });
    // Kept in the on-disk outbox until stored, so a message written offline is sent on reconnect.
    // Offline, it goes there at once (sendOrQueue writes it before it tries the link); online,
    // it waits until the name is known to be registered.
    const offline = c.state !== "online";
    const sending = offline
      ? c.sendOrQueue(targetOf(conv), text, { timeoutMs: 3000 })
      : this.registered.then(() => c.sendOrQueue(targetOf(conv), text));
    this.track(
      sending.then(
        (r) => {
          if (r.message) {
            this.seen.add(r.message.id);
            this.dispatch({ type: "sent", localId, message: r.message });
          } else {
            this.dispatch({ type: "queued", localId, id: r.id });
            this.showOutbox(c);
          }
        },
        (err) => {
          const e = asZmqchatError(err);
          this.dispatch({ type: "sendFailed", localId, error: e.message });
          if (e.code === "key_changed") {
            const who = /^([a-z0-9][a-z0-9_.-]*)'s keys changed/.exec(e.message)?.[1];
            if (who) this.dispatch({ type: "keyChanged", name: who });
            this.notice(
              `not sent: ${who ?? "a recipient"}'s keys changed. Compare fingerprints (/fingerprint ${who ?? "USER"}), then /trust ${who ?? "USER"}`,
              "error",
            );
          } else {
            this.notice(`not sent to ${convTitle(conv)}: ${e.message} (Ctrl-R sends it again)`, "error");
          }
        },
      ),
    );
  }

  private async run(cmd: Command): Promise<void> {
    const c = this.session?.client;
    if (!c) return;
    // Local work (help, search) does not wait for the name to be registered.
    if (cmd.kind !== "help" && cmd.kind !== "quit" && cmd.kind !== "invalid" && cmd.kind !== "search")
      await this.registered;
    switch (cmd.kind) {
      case "invalid":
        this.notice(cmd.message, "error");
        return;
      case "help":
        this.dispatch({ type: "help" });
        return;
      case "quit":
        this.dispatch({ type: "quit" });
        return;
      case "msg": {
        if (cmd.user !== c.name && !this.state.users.includes(cmd.user)) {
          const found = await c.users([cmd.user]);
          if (found.length === 0) {
            this.notice(`no user named ${cmd.user}`, "error");
            return;
          }
        }
        this.dispatch({ type: "open", conv: userConv(cmd.user) });
        if (cmd.text) this.send(userConv(cmd.user), cmd.text);
        return;
      }
      case "group": {
        if (cmd.op === "create") {
          const r = await c.groupCreate(cmd.name, cmd.members);
          const invited = r.group.invited ?? [];
          const members = `${r.group.members.map((m) => m.name).join(", ")}${invited.length ? `; invited ${invited.join(", ")}` : ""}`;
          this.notice(
            r.created ? `created #${cmd.name}: ${members}` : `#${cmd.name} already exists: ${members}`,
          );
          this.dispatch({ type: "groups", names: [...new Set([...this.state.groups, cmd.name])] });
          this.dispatch({ type: "open", conv: groupConv(cmd.name) });
        } else {
          const g = await c.groupChange(cmd.op, cmd.name, cmd.members);
          const invited = g.invited ?? [];
          this.notice(
            `#${cmd.name} ${cmd.op === "add" ? "now has" : "is left with"}: ${g.members.map((m) => m.name).join(", ")}${invited.length ? `; invited ${invited.join(", ")}` : ""}`,
          );
        }
        return;
      }
      case "invite": {
        const name = cmd.name ?? groupOf(this.state.open);
        if (!name) {
          this.notice(`which group? /${cmd.answer} GROUP`, "error");
          return;
        }
        if (cmd.answer === "leave") await c.groupLeave(name);
        else await c.groupAnswer(name, cmd.answer);
        this.notice(
          { accept: `you joined #${name}`, decline: `you declined #${name}`, leave: `you left #${name}` }[
            cmd.answer
          ],
        );
        await this.refreshLists(c);
        return;
      }
      case "members": {
        const name = cmd.name ?? groupOf(this.state.open);
        if (!name) {
          this.notice("which group? /members GROUP", "error");
          return;
        }
        const g = await c.groupInfo(name);
        const list = g.members.map((m) => (m.name === g.owner ? `${m.name} (owner)` : m.name)).join(", ");
        this.notice(`#${name}: ${list}`);
        return;
      }
      case "trust": {
        if (!c.cache.contact(cmd.user)) await c.users([cmd.user]);
        const contact = c.cache.contact(cmd.user);
        if (!contact) {
          this.notice(`no user named ${cmd.user}`, "error");
          return;
        }
        if (c.trust(cmd.user)) {
          const now = c.cache.contact(cmd.user)!;
          this.dispatch({ type: "trusted", name: cmd.user });
          this.dispatch({ type: "verified", name: cmd.user, verified: now.verified });
          this.notice(`trusted ${cmd.user}'s new keys; fingerprint ${fingerprint(cmd.user, now.keys)}`);
        } else {
          this.dispatch({ type: "trusted", name: cmd.user });
          this.notice(`${cmd.user}'s keys have not changed; nothing to trust`);
        }
        return;
      }
      case "verify": {
        try {
          const r = await c.verifyContact(cmd.user);
          this.dispatch({ type: "verified", name: cmd.user, verified: true });
          this.notice(
            `${r.already ? "already verified" : "verified"} ${cmd.user}: ${fingerprint(cmd.user, r.keys)}`,
          );
        } catch (err) {
          this.notice(err instanceof Error ? err.message : String(err), "error");
        }
        return;
      }
      case "search": {
        const last = this.state.search;
        if (last && last.query === cmd.query) {
          this.dispatch({ type: "searchStep", by: "older" });
          return;
        }
        // The local cache only: it holds every decrypted message, kept current by the live sync.
        const hits = searchMessages(c.cache, cmd.query, { limit: SEARCH_LIMIT });
        if (hits.length === 0) {
          this.dispatch({ type: "found", query: cmd.query, hits: [] });
          this.notice(`no messages match "${cmd.query}"`, "warn");
          return;
        }
        this.dispatch({
          type: "found",
          query: cmd.query,
          hits: hits.map((h) => ({ conv: h.message.conv, id: h.message.id })),
        });
        return;
      }
      case "fingerprint": {
        if (cmd.user === null || cmd.user === c.name) {
          this.notice(`your fingerprint: ${fingerprint(c.name, c.publicKeys)}`);
          return;
        }
        if (!c.cache.contact(cmd.user)) await c.users([cmd.user]);
        const contact = c.cache.contact(cmd.user);
        if (!contact) {
          this.notice(`no user named ${cmd.user}`, "error");
          return;
        }
        const pinned = fingerprint(cmd.user, contact.keys);
        this.notice(
          contact.pending
            ? `${cmd.user}'s new keys (untrusted): ${fingerprint(cmd.user, contact.pending)}; pinned: ${pinned}`
            : `${cmd.user}: ${pinned}`,
          contact.pending ? "warn" : "info",
        );
        return;
      }
    }
  }
}

function safeList(p: ProfileAccess): string[] {
  try {
    return p.list();
  } catch {
    return [];
  }
}
