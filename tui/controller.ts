/**
 * The TUI's worker, as iamb keeps it apart from its UI state: the only part that calls the chat
 * client. It routes client events and the intents of the UI (actions, and the `Intent`s the
 * reducer returns) to its parts in tui/worker/ — session, feed, reads, history loader, sends,
 * commands — and never blocks the UI on a reply.
 */

import type { ChatClient, ClientEvent } from "../core/client/client.js";
import { groupConv } from "../core/client/conv.js";
import { asZmqchatError } from "../core/errors.js";
import { type Logger, silentLogger } from "../core/logger.js";
import { isCommand, parseCommand, parseGroupPrompt } from "./commands.js";
import {
  type Action,
  convTitle,
  describeGroupNotice,
  type Intent,
  initialState,
  type NoticeLevel,
  type State,
  update,
} from "./state.js";
import { Store } from "./store.js";
import { type CommandDeps, runCommand } from "./worker/commands.js";
import type { WorkerContext } from "./worker/context.js";
import { Feed } from "./worker/feed.js";
import { fileKeyEffect } from "./worker/files.js";
import { HistoryLoader, loadQuotes } from "./worker/history-loader.js";
import { MessageActions } from "./worker/message-actions.js";
import { conversationsWithUnread, markRead } from "./worker/reads.js";
import { Sends } from "./worker/sends.js";
import { type ProfileAccess, Session, safeList, type TuiSession } from "./worker/session.js";
import { Signals } from "./worker/signals.js";
import { Timers } from "./worker/timers.js";

export type { NewSession, ProfileAccess, TuiSession } from "./worker/session.js";

export interface ControllerOptions {
  profiles: ProfileAccess;
  /** Ring the terminal bell for messages in other conversations (default true). */
  bell?: boolean;
  ring?: () => void;
  /** Raises a desktop notification (the terminal's OSC 9) for a mention of this user. */
  notify?: (text: string) => void;
  /** Runs before the first network call (e.g. starts the local stack); `note` goes to the status bar. */
  prepare?: (note: (text: string) => void) => Promise<void>;
  /** How often the user and group lists are fetched again. */
  refreshMs?: number;
  noticeMs?: number;
  /** Messages loaded when a conversation opens, and per step when scrolling back. */
  pageSize?: number;
  log?: Logger;
}

export class Controller {
  readonly store: Store;
  private readonly opts: Required<Omit<ControllerOptions, "prepare" | "log">> &
    Pick<ControllerOptions, "prepare">;
  private readonly log: Logger;
  private readonly timers = new Timers();
  private readonly exitListeners = new Set<() => void>();
  private readonly ctx: WorkerContext;
  private readonly session: Session;
  private readonly feed: Feed;
  private readonly history: HistoryLoader;
  private readonly sends: Sends;
  private readonly actions: MessageActions;
  private readonly signals: Signals;
  private readonly commands: CommandDeps;
  /** Stops listening to the client and to the shared cache. */
  private readonly unsubscribe: Array<() => void> = [];
  private lastRing = 0;
  private stopped = false;
  /** Background work (sends, commands), awaited by `idle()` in tests and on stop. */
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(options: ControllerOptions) {
    this.opts = {
      bell: true,
      ring: () => {},
      notify: () => {},
      refreshMs: 30_000,
      noticeMs: 8000,
      pageSize: 200,
      ...options,
    };
    this.log = options.log ?? silentLogger;
    this.store = new Store(
      update,
      initialState({ bell: this.opts.bell, profiles: safeList(options.profiles) }),
    );
    this.ctx = {
      dispatch: (a) => this.dispatch(a),
      state: () => this.store.getState(),
      client: () => this.session.client,
      notice: (text, level) => this.notice(text, level),
      track: (p) => this.track(p),
      registered: () => this.session.registered(),
      stopped: () => this.stopped,
      log: this.log,
    };
    this.feed = new Feed(this.ctx);
    this.history = new HistoryLoader(this.ctx, this.feed, this.opts.pageSize);
    this.sends = new Sends(this.ctx, this.feed);
    this.signals = new Signals(this.ctx, this.timers);
    this.actions = new MessageActions(this.ctx, (conv, text, extra) => this.sends.send(conv, text, extra));
    this.session = new Session(this.ctx, this.timers, {
      profiles: this.opts.profiles,
      bell: this.opts.bell,
      prepare: this.opts.prepare,
      onEnter: (s) => this.onEnter(s),
      onLeave: (s) => {
        for (const u of this.unsubscribe.splice(0)) u();
        this.feed.save(s.client.cache);
      },
    });
    this.commands = {
      send: (conv, text) => this.sends.send(conv, text),
      refreshLists: (c) => this.session.refreshLists(c),
    };
  }

  get state(): State {
    return this.store.getState();
  }

  get client(): ChatClient | null {
    return this.session.client;
  }

  /** The one entry point for actions: reduce, then run what the action and the reducer's intents ask for. */
  dispatch = (action: Action): void => {
    const { prev, intents } = this.store.dispatch(action);
    this.effects(action, prev, this.store.getState());
    for (const intent of intents) this.perform(intent);
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
    this.session.start(user);
  }

  /** Resolves when the background work started so far has settled (for tests). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.clear();
    this.feed.stop();
    this.actions.stop();
    for (const u of this.unsubscribe.splice(0)) u();
    await this.session.close((c) => this.feed.save(c.cache));
  }

  // ---- routing ------------------------------------------------------------------------

  private perform(intent: Intent): void {
    switch (intent.kind) {
      case "loadHistory":
        this.history.run(intent);
        break;
    }
  }

  private effects(a: Action, prev: State, next: State): void {
    if (next.bells > prev.bells) this.ring();
    const m = next.mention;
    // Names only, as `listen` does: a desktop notification may show where others can see it, and
    // nothing the sender wrote reaches the terminal's control sequences.
    if (m && m !== prev.mention) this.opts.notify(`zmqchat: ${m.from} mentioned you in ${convTitle(m.conv)}`);
    if (next.notice && next.notice !== prev.notice) {
      const id = next.notice.id;
      this.timers.after(this.opts.noticeMs, () => this.dispatch({ type: "clearNotice", id }));
    }
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
          this.track(runCommand(this.ctx, this.commands, { kind: "invite", answer: a.answer, name }));
        else this.notice("select an invitation (✉) in Groups to answer it", "warn");
        break;
      }
      case "signup/submit":
        if (!prev.signup.busy) this.track(this.session.signUp(prev.signup.editor.text.trim()));
        break;
      case "arrived": {
        const c = this.session.client;
        if (c && next.open && a.messages.some((m) => m.conv === next.open)) {
          markRead(c.cache, next.history, this.log);
          loadQuotes(this.ctx, c.cache, next.open);
          // Shown: read receipts follow (none when the user turned them off).
          c.markRead(a.messages.filter((m) => m.conv === next.open));
        }
        break;
      }
      case "retry":
        this.sends.retry(prev);
        break;
      case "edit":
        // Writing a message (not a command) in an open conversation tells the others "typing…".
        if (a.op.kind === "insert" && next.focus === "composer" && !next.overlay && next.open) {
          const t = next.composer.text;
          if (!t.startsWith("/") || t.startsWith("//")) this.signals.typed(next.open);
        }
        break;
      case "devicesConfirm":
        if (prev.overlay?.kind === "devices" && prev.overlay.confirm)
          this.track(this.session.revokeDevice(prev.overlay.confirm));
        break;
      case "confirmDelete":
        if (prev.overlay?.kind === "confirm") this.actions.delete(prev.overlay.id);
        break;
      case "react":
        if (prev.overlay?.kind === "react") this.actions.react(prev.overlay.id, a.emoji);
        break;
      case "saveSelected":
      case "completePath":
        fileKeyEffect(this.ctx, a, prev);
        break;
      default:
        break;
    }
  }

  private onClientEvent(e: ClientEvent): void {
    const c = this.session.client;
    switch (e.type) {
      case "message":
        // An edit, delete or reaction is no message of its own: it changes one already shown.
        if (e.message.action) this.actions.changed(e.message.conv);
        else this.feed.accept([e.message]);
        break;
      case "state":
        this.dispatch({ type: "connection", state: e.state, endpoint: e.endpoint });
        if (e.state === "online" && c) {
          // Other processes of this profile may have fetched messages while this client was away.
          this.feed.catchUp(c.cache);
          this.actions.changed(null);
          // Back online: what waits in the outbox goes now.
          if (this.state.outbox.length > 0) this.track(this.sends.flush(c));
        }
        break;
      case "action":
        this.actions.changed(e.conv);
        break;
      case "receipt":
        // Marks of own messages changed (✓✓ delivered, ✔✔ read).
        this.actions.changed(null);
        break;
      case "read":
        // Read on another device of this user: the unread counts follow.
        if (c) this.dispatch({ type: "convs", convs: conversationsWithUnread(c.cache, c.name) });
        break;
      case "typing":
        this.signals.typing(e.from, e.conv, e.until);
        break;
      case "presence":
        this.signals.presence(e.name, e.state);
        break;
      case "already_stored":
        // Another process stored it first, or it was an action (the cache keeps those apart).
        if (c) this.feed.catchUp(c.cache);
        this.actions.changed(null);
        break;
      case "outbox":
        if (c) this.sends.showOutbox(c);
        break;
      case "key_changed":
        this.dispatch({ type: "keyChanged", name: e.name });
        break;
      case "sync":
        this.dispatch({ type: "sync", received: e.received, done: e.done });
        break;
      case "group": {
        if (!c) break;
        // The echo of this user's own change may come after the command's own, fuller notice
        // (the live path and the reply race): it does not replace a notice being shown.
        if (e.notice.by !== c.name || this.state.notice === null) {
          const { text, level } = describeGroupNotice(e.notice, c.name);
          this.notice(text, level);
        }
        this.track(this.session.refreshLists(c));
        // The open group's system lines follow its changes live (issue 17).
        if (this.state.history?.conv === groupConv(e.notice.group))
          this.history.refreshSystemLines(groupConv(e.notice.group));
        break;
      }
    }
  }

  // ---- the session's start --------------------------------------------------------------

  /**
   * A profile is signed in: show what its cache knows, then follow its client's events (and,
   * for the outbox other processes share, changes of the cache file); no polling.
   */
  private onEnter(s: TuiSession): void {
    const c = s.client;
    this.unsubscribe.push(c.on((e) => this.onClientEvent(e)));
    this.dispatch({ type: "connection", state: c.state, endpoint: c.endpoint });
    this.loadFromCache(c);
    // `zmqchat send --queue` on this profile adds to the same outbox while the service is away.
    const unwatch = s.watchShared?.(() => {
      if (!this.stopped) this.sends.showOutbox(c);
    });
    if (unwatch) this.unsubscribe.push(unwatch);
    // Users who register have no event: the user and group lists are fetched again now and then.
    this.unsubscribe.push(
      this.timers.every(this.opts.refreshMs, () => {
        if (!this.stopped && c.state === "online") this.track(this.session.refreshLists(c));
      }),
    );
  }

  /** What the cache already knows: people, key warnings, conversations and their unread counts. */
  private loadFromCache(c: ChatClient): void {
    const contacts = c.cache.contacts();
    this.dispatch({
      type: "users",
      names: contacts.map((x) => x.name),
      keyChanged: contacts.filter((x) => x.pending).map((x) => x.name),
      verified: contacts.filter((x) => x.verified).map((x) => x.name),
    });
    this.dispatch({ type: "convs", convs: conversationsWithUnread(c.cache, c.name) });
    this.dispatch({ type: "muted", convs: c.cache.mutes.list() });
    this.sends.showOutbox(c);
    this.feed.seed(c.cache);
  }

  // ---- intents of the UI ----------------------------------------------------------------

  private submit(prev: State): void {
    const text = prev.composer.text;
    if (text.trim() === "") return;
    if (isCommand(text)) {
      this.track(runCommand(this.ctx, this.commands, parseCommand(text)));
      return;
    }
    const body = text.startsWith("//") ? text.slice(1) : text;
    if (prev.open) this.signals.sent(prev.open);
    if (prev.compose) {
      this.actions.submit(prev.compose, body);
      return;
    }
    if (!prev.open) {
      this.notice("open a conversation first: Ctrl-N, /msg USER, or Enter on a contact", "warn");
      this.dispatch({ type: "edit", op: { kind: "insert", text } });
      return;
    }
    this.sends.send(prev.open, body);
  }

  private promptSubmit(prev: State): void {
    if (prev.overlay?.kind !== "prompt") return;
    const text = prev.overlay.editor.text.trim();
    if (text === "") return;
    const cmd = prev.overlay.purpose === "chat" ? parseCommand(`/msg ${text}`) : parseGroupPrompt(text);
    this.track(runCommand(this.ctx, this.commands, cmd));
  }

  // ---- helpers --------------------------------------------------------------------------

  private ring(): void {
    const now = Date.now();
    if (now - this.lastRing < 1000) return;
    this.lastRing = now;
    this.opts.ring();
  }

  private notice(text: string, level: NoticeLevel = "info"): void {
    this.dispatch({ type: "notice", text, level });
  }

  private track(p: Promise<unknown>): void {
    const tracked = p
      .catch((err) => {
        this.log.warn({ err }, "background work failed");
        this.notice(asZmqchatError(err).message, "error");
      })
      .finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }
}
