import { sign } from "node:crypto";
import {
  type BackupContents,
  backupProof,
  deriveBackupKeys,
  openBackup,
  sealBackup,
} from "../crypto/backup.js";
import { Sealer, sealTag } from "../crypto/envelope.js";
import { generateIdentity, identitySecrets } from "../crypto/keys.js";
import { loginChallengeBytes, rotationBytes } from "../crypto/login.js";
import { bindingKey, loginBindingProof, x25519Private, x25519PublicRaw } from "../crypto/session-binding.js";
import { ZmqchatError } from "../errors.js";
import { type Logger, silentLogger } from "../logger.js";
import { isSubscribedFrame } from "../protocol/broker.js";
import { uuidv7 } from "../protocol/ids.js";
import {
  type GroupInfo,
  type GroupNotice,
  groupNoticeSchema,
  type MailboxItem,
  type PublicKeys,
  type ReplyBody,
  type RequestBody,
  type RequestType,
  type UserInfo,
} from "../protocol/schema.js";
import type { ClientLink, Route } from "../transport.js";
import { AckBatch } from "./ack-batch.js";
import { addExtraFields, type MessageExtra } from "./actions.js";
import type { Cache, ChatMessage } from "./cache.js";
import { type ChannelHooks, type ConnectionState, RequestChannel, type RequestOptions } from "./channel.js";
import { registerDeviceKey } from "./device-keys.js";
import type { EndpointMemory } from "./endpoints.js";
import { EphemeralSignals } from "./ephemeral.js";
import type { ContactKeyView } from "./key-history.js";
import { KeyBook, type Target } from "./keybook.js";
import { LiveDeliveries } from "./live.js";
import { messageOf, type Opened } from "./open.js";
import { Opener } from "./opener.js";
import { Outbox } from "./outbox.js";
import type { LoadedIdentity } from "./profile.js";
import { RECEIPT_CLOSE_MS, ReceiptSender } from "./receipt-sender.js";
import { SendWindow } from "./send-window.js";

export type { ConnectionState, RequestOptions } from "./channel.js";

export type ClientEvent =
  | { type: "message"; message: ChatMessage }
  | { type: "state"; state: ConnectionState; endpoint: string }
  | { type: "key_changed"; name: string }
  | { type: "sync"; received: number; done: boolean }
  | { type: "outbox"; pending: number }
  /** A group change told live: an invitation, a member who joined, declined, left or was removed. */
  | { type: "group"; notice: GroupNotice }
  /**
   * The live path or a sync found messages already in the shared cache (stored by another process
   * of this profile, e.g. `zmqchat send`, or by our own acknowledgement), so no `message` event was
   * given for them: a view showing every message reads the cache up to `cursor`.
   */
  | { type: "already_stored"; cursor: string }
  /**
   * Issue 17: a delivery or read receipt for own messages arrived (`ids`, by `from`): views showing
   * them read their `status` / `readBy` from the cache again (receipts.ts).
   */
  | { type: "receipt"; from: string; status: "delivered" | "read"; ids: string[] }
  /** Issue 19: another device of this user read these conversations: their read marks moved (read-state.ts). */
  | { type: "read"; convs: string[] }
  /**
   * Issue 17: an edit, delete or reaction (`kind`) of message `target` in `conv` was stored (live,
   * by a sync or by another process's send): views showing `target` read it from the cache again.
   */
  | { type: "action"; id: string; conv: string; target: string; kind: string; from: string }
  /** Issue 17 (ephemeral.ts): `from` is typing in `conv`; show it until `until` (ISO) or their next message. */
  | { type: "typing"; from: string; conv: string; until: string }
  /** Issue 17 (ephemeral.ts): a contact's presence changed (`presenceOf` reads it any time). */
  | { type: "presence"; name: string; state: "online" | "offline" };

export interface ChatClientOptions {
  /** Opens a link to one endpoint (the transport is picked by the caller). */
  connect: (endpoint: string) => ClientLink;
  endpoints: string[];
  identity: LoadedIdentity;
  cache: Cache;
  log?: Logger;
  /** How long one attempt waits for a reply before it is sent again (same ids). */
  attemptTimeoutMs?: number;
  /** Default deadline of a whole request, retries included. */
  requestTimeoutMs?: number;
  /** How long a listening client first waits for its subscription's confirmation (default 5 s; tests). */
  subscribeConfirmMs?: number;
  /** This device's CURVE secret key (raw X25519, 32 bytes): sessions are bound to it when the service offers binding. */
  curveSecret?: Buffer;
  /** Remembers endpoints that did not answer, so they are tried last (by this and later clients). */
  endpointMemory?: EndpointMemory;
  /**
   * How long a client that has not yet reached any balancer waits for one to answer before it
   * fails (`timeout`): with the service down, commands fail or fall back at once.
   */
  firstContactMs?: number;
  /** Worker threads that open large sync pages (default: the cores, up to 4; 0: none). */
  openerThreads?: number;
  /** False: sends no read receipts and shows none (config `readReceipts`; receipts.ts). Default true. */
  readReceipts?: boolean;
  /** False: sends no presence and shows none (config `presence`). Default true. */
  presence?: boolean;
  /** False: sends no typing signals and shows none (config `typing`). Default true. */
  typing?: boolean;
}

export type { Target } from "./keybook.js";

const SYNC_PAGE = 1000;
/** How long after a first login's `settleMs` a listening client syncs (scheduleSettleSync). */
const SETTLE_MARGIN_MS = 250;
/** How long a listening client waits for the balancer to confirm its subscription, at first and at most. */
const SUBSCRIBE_CONFIRM_MS = 5000;
const SUBSCRIBE_CONFIRM_MAX_MS = 300_000;

/**
 * The headless chat client shared by the CLI and the TUI: the only code that talks to the
 * service. Requests are retried with the same ids until their deadline (Lazy Pirate), moving
 * to the next balancer endpoint after repeated silence; messages are sealed before they leave
 * and opened (verified, decrypted) before anyone sees them.
 */
export class ChatClient {
  readonly name: string;
  private readonly sealer: Sealer;
  /** Sealers of keys this user held before a rotation: old messages were sealed for them. */
  private readonly previousSealers: Sealer[];
  /** Pinned keys, key histories, recipients of a send. */
  private readonly keys: KeyBook;
  /** Composes, seals and sends; keeps what the service could not take on disk. */
  private readonly outbox: Outbox;
  /** Sends in composition order, batched into `send.many`, as many in flight as the service offers. */
  private readonly window: SendWindow;
  /** Verifies and decrypts batches of mailbox items (large ones on worker threads). */
  private readonly opener: Opener;
  /** Live deliveries, applied directly when they follow the cursor. */
  private readonly live: LiveDeliveries;
  /** Acknowledged sends, stored in one transaction per burst. */
  private readonly acks: AckBatch;
  private readonly listeners = new Set<(e: ClientEvent) => void>();
  /** Link, retries, failover and connection state. */
  private readonly channel: RequestChannel;
  private session: { token: string; topic: string } | null = null;
  private loggingIn: Promise<void> | null = null;
  /** The deadline the log-in in progress gives up at (that of the caller that started it). */
  private loginDeadline = 0;
  private syncing: Promise<number> | null = null;
  private syncAgain = false;
  private closed = false;
  private readonly log: Logger;
  private readonly requestMs: number;

  constructor(private readonly options: ChatClientOptions) {
    this.channel = new RequestChannel(options, this.channelHooks());
    this.name = options.identity.identity.name;
    this.acks = new AckBatch(options.cache);
    this.live = new LiveDeliveries(this.name, {
      cache: this.cache,
      open: (items) => this.openAll(items),
      sync: () => this.sync(),
      running: () => this.syncing,
      fetch: (after, limit) => this.request("sync", { after, limit }),
      emit: (message) => this.emit({ type: "message", message }),
      alreadyStored: (cursor) => this.emit({ type: "already_stored", cursor }),
      warn: (err, what) => this.log.warn({ err }, what),
    });
    this.sealer = new Sealer(options.identity.identity);
    this.previousSealers = (options.identity.previous ?? []).map((i) => new Sealer(i));
    this.opener = new Opener({
      me: this.name,
      sealers: [this.sealer, ...this.previousSealers],
      threads: options.openerThreads,
    });
    this.log = options.log ?? silentLogger;
    this.requestMs = this.channel.requestMs;
    this.keys = new KeyBook({
      name: this.name,
      publicKeys: this.publicKeys,
      cache: this.cache,
      log: this.log,
      lookupUsers: async (names, timeoutMs) =>
        (await this.request("users", { names }, timeoutMs === undefined ? {} : { timeoutMs })).users,
      groupInfo: async (name, timeoutMs) => (await this.request("group.info", { name }, { timeoutMs })).group,
      keyHistory: async (name) => (await this.request("keys.history", { name })).chain,
      openOne: (item) => this.open(item),
      keyChanged: (name) => this.emit({ type: "key_changed", name }),
      shown: (message) => this.emit({ type: "message", message }),
    });
    this.window = new SendWindow({
      one: (envelope, timeoutMs) => this.request("send", { envelope }, { timeoutMs }),
      many: async (envelopes, timeoutMs, follows, quiet) =>
        (
          await this.request(
            "send.many",
            { envelopes, ...(follows === undefined ? {} : { follows }), ...(quiet ? { quiet } : {}) },
            { timeoutMs },
          )
        ).results,
      alone: () => this.cache.alone(),
      sign: (envelopes) => this.sealer.signBatch(envelopes),
    });
    this.outbox = new Outbox({
      name: this.name,
      device: options.identity.device,
      cache: this.cache,
      log: this.log,
      sealer: this.sealer,
      keys: this.keys,
      requestMs: this.requestMs,
      login: (timeoutMs) => this.login({ timeoutMs }),
      reserve: () => this.window.reserve(),
      acks: this.acks,
      shown: (message) => this.emit({ type: "message", message }),
      pending: (count) => this.emit({ type: "outbox", pending: count }),
    });
    this.receipts = new ReceiptSender(this, options.cache.receipts, this.log);
    options.cache.receipts.owner = this.name;
    options.cache.receipts.readReceipts = options.readReceipts !== false;
    options.cache.receipts.onReceived = (r) => this.emit({ type: "receipt", ...r });
    options.cache.receipts.onReadElsewhere = (convs) => this.emit({ type: "read", convs });
    options.cache.actions.onAction = (a) => this.emit({ type: "action", ...a });
    this.signals = new EphemeralSignals(
      {
        me: this.name,
        online: () => this.online,
        seal: (target, text) => this.sealSignal(target, text),
        open: (item) => {
          const o = this.open(item);
          return o.held ? null : o.message;
        },
        request: (body, timeoutMs) => this.request("signal", body, { timeoutMs }),
        learn: async (name) => {
          await this.users([name]);
        },
        known: (name) => this.cache.contact(name) !== null,
        emit: (e) => this.emit(e),
        conversations: () => this.cache.conversations().map((c) => c.conv),
        log: this.log,
      },
      options.cache.presence,
      { typing: options.typing !== false, presence: options.presence !== false },
    );
  }

  /** Typing and presence signals (ephemeral.ts). */
  private readonly signals: EphemeralSignals;

  /** Tells a conversation this user is typing (throttled; live only, never stored). */
  typing(target: Target): Promise<void> {
    return this.signals.typing(target);
  }

  /** Shares this user's presence while this client runs (TUI, listen, daemon); "offline" on close. */
  startPresence(): Promise<void> {
    return this.signals.startPresence();
  }

  /** A contact's presence as last signalled: "online", "offline", or null when they shared none. */
  presenceOf(name: string): "online" | "offline" | null {
    return this.signals.presenceOf(name);
  }

  /** A never-stored envelope for a signal, sealed for the target's recipients like a message. */
  private async sealSignal(target: Target, text: string) {
    await this.login();
    const recipients = await this.keys.recipientsOf(target, false, Date.now() + this.requestMs);
    return this.sealer.seal({
      id: uuidv7(),
      device: this.options.identity.device,
      to: "user" in target ? target.user : null,
      group: "group" in target ? target.group : null,
      seq: 0,
      sentAt: new Date().toISOString(),
      text,
      recipients,
    });
  }

  /** Sends the receipts the cache queues, one event per author and conversation per burst. */
  private readonly receipts: ReceiptSender;

  /** The user was shown these messages (TUI, `history` on a terminal): read receipts follow (receipts.ts). */
  markRead(messages: ChatMessage[]): void {
    this.cache.transaction(() => this.cache.receipts.markRead(messages));
  }

  /** Sends the receipts waiting in the cache now (a command about to exit). */
  flushReceipts(timeoutMs = 3000): Promise<void> {
    return this.receipts.flush(timeoutMs);
  }

  /** True while logged in (receipts go out only then: a command working offline leaves them queued). */
  get online(): boolean {
    return this.session !== null && !this.closed;
  }

  get cache(): Cache {
    return this.options.cache;
  }

  get endpoint(): string {
    return this.channel.endpoint;
  }

  get state(): ConnectionState {
    return this.channel.state;
  }

  get publicKeys(): PublicKeys {
    return this.options.identity.identity.publicKeys;
  }

  on(listener: (e: ClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Binds this profile's keys to its name on the service. Harmless when already registered. */
  async register(opts: RequestOptions = {}): Promise<{ created: boolean }> {
    return this.request("register", { name: this.name, keys: this.publicKeys }, opts);
  }

  /**
   * Proves the identity (signed challenge) and subscribes to live deliveries. Concurrent callers
   * share one log-in, which gives up at the deadline of the caller that started it; a caller
   * whose own deadline is later then starts another instead of failing with that timeout.
   */
  async login(opts: RequestOptions = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? this.channel.requestMs);
    for (;;) {
      if (this.session) return;
      if (!this.loggingIn) {
        this.loginDeadline = deadline;
        this.loggingIn = this.doLogin({ ...opts, timeoutMs: deadline - Date.now() }).finally(() => {
          this.loggingIn = null;
        });
      }
      const shared = this.loginDeadline;
      try {
        return await this.loggingIn;
      } catch (err) {
        const theirs = err instanceof ZmqchatError && err.code === "timeout" && shared < deadline;
        if (!theirs || this.closed || Date.now() >= deadline) throw err;
      }
    }
  }

  private async doLogin(opts: RequestOptions): Promise<void> {
    // A challenge is good once. A server that used ours up and died before answering (or an
    // answer lost to a timeout) makes the retry of the same login "already used": ask for a
    // fresh challenge and sign again. A login refused for any other reason is refused again.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.loginOnce(opts);
      } catch (err) {
        if (!(err instanceof ZmqchatError && err.code === "unauthorized") || attempt >= 3) throw err;
      }
    }
  }

  private async loginOnce(opts: RequestOptions): Promise<void> {
    const { bind, ...ch } = await this.request("challenge", { name: this.name }, opts);
    const sig = sign(
      null,
      loginChallengeBytes(this.name, ch.nonce, ch.expires),
      this.options.identity.identity.signPrivate,
    );
    const binding = this.bindTo(bind);
    const r = await this.request(
      "login",
      {
        name: this.name,
        ...ch,
        sig: sig.toString("base64url"),
        device: this.options.identity.device,
        ...(binding ? { curve: binding.curve, curveProof: loginBindingProof(binding.key, ch.nonce) } : {}),
      },
      opts,
    );
    const previous = this.session?.topic ?? this.staleTopic;
    // A server that offers a batch topic publishes deliveries there several to a frame (and
    // group notices and signals too); one that does not, one a frame on the plain topic.
    this.session = { token: r.session, topic: r.batchTopic ?? r.topic };
    this.bindKey = r.bound ? (binding?.key ?? null) : null;
    this.scheduleRenewal(r.lifetimeMs ?? Date.parse(r.expires) - Date.now());
    // Several sends in flight only where the service says it keeps their order.
    // And, where it takes `quiet`, not ringing this device for what it sent (its acks store it).
    this.window.offer(r.pipeline, r.quiet === true);
    // Known to the profile's other processes as one that takes live deliveries (Cache.alone).
    try {
      this.cache.registerLive();
    } catch (err) {
      this.log.warn({ err }, "could not note this client among the profile's live clients");
    }
    // Logging in again because the subscription went unconfirmed: subscribe afresh even to the same topic.
    if (this.resubscribe && previous) this.channel.unsubscribe(previous);
    this.resubscribe = false;
    this.channel.subscribe(this.session.topic);
    this.expectConfirmation();
    if (previous && previous !== this.session.topic) this.channel.unsubscribe(previous);
    this.staleTopic = null;
    this.scheduleTopicRefresh(r.topicExpires);
    if (r.settleMs) this.scheduleSettleSync(r.settleMs);
    // Issue #19: every device registers its own key, so it gets the keys pushed after a revocation.
    const secret = this.options.curveSecret;
    if (secret)
      registerDeviceKey(this, this.options.identity, secret, (err) =>
        this.log.debug({ err }, "registering this device's key failed"),
      );
  }

  private renewTimer: NodeJS.Timeout | null = null;
  /** The key this session's requests prove the device's CURVE key with (null: not bound). */
  private bindKey: Buffer | null = null;

  /** The device's CURVE key and the key it shares with the cluster, when both sides can bind. */
  private bindTo(cluster: string | undefined): { curve: string; key: Buffer } | null {
    const secret = this.options.curveSecret;
    if (!secret || !cluster) return null;
    const own = x25519Private(secret);
    const device = x25519PublicRaw(own);
    const clusterRaw = Buffer.from(cluster, "base64url");
    return { curve: device.toString("base64url"), key: bindingKey(own, clusterRaw, device, clusterRaw) };
  }

  /**
   * Renews the session token over the live link halfway through its life, so a long `listen`
   * or TUI keeps its session without signing a new login. A renewal that is refused (the session
   * was ended) drops the session; the next request logs in again.
   */
  private scheduleRenewal(lifetimeMs: number): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (!Number.isFinite(lifetimeMs) || lifetimeMs <= 0) return;
    const renew = () => {
      const token = this.session?.token;
      if (this.closed || !token) return;
      this.request("session.renew", {}, { timeoutMs: Math.max(1000, lifetimeMs / 4) })
        .then((r) => {
          if (this.session?.token !== token) return;
          this.session = { ...this.session, token: r.session };
          this.scheduleRenewal(r.lifetimeMs ?? lifetimeMs);
        })
        .catch((err) => {
          this.log.warn({ err }, "renewing the session failed");
          // Not answered: try again soon while the token is still good; refused: log in next time.
          if (err instanceof ZmqchatError && err.code === "timeout") this.scheduleRenewal(lifetimeMs / 2);
          else if (this.session?.token === token) this.session = null;
        });
    };
    this.renewTimer = setTimeout(renew, Math.max(250, lifetimeMs / 2));
    this.renewTimer.unref();
  }

  /** Ends this device's sessions on the service (every session of the user with `all`). */
  async logout(opts: RequestOptions & { all?: boolean } = {}): Promise<void> {
    await this.login(opts);
    await this.request("logout", opts.all ? { all: true } : {}, opts);
    this.session = null;
    if (this.renewTimer) clearTimeout(this.renewTimer);
  }

  private staleTopic: string | null = null;
  private topicTimer: NodeJS.Timeout | null = null;
  /** goLive was called: this client takes live deliveries (listen, the TUI, the daemon). */
  private listening = false;
  private settleTimer: NodeJS.Timeout | null = null;

  /**
   * A device's first login is answered before every server's device list holds it (`settleMs`,
   * server/devices.ts): a message stored meanwhile by a server with an older list was not rung
   * on this device's topic. A listening client syncs once when every list holds it, so such a
   * message shows then rather than at the next message or reconnect. SETTLE_MARGIN_MS covers a
   * store write that began, from a stale list, just before.
   */
  private scheduleSettleSync(settleMs: number): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      if (this.closed || !this.listening) return;
      void this.sync().catch((err) => this.log.warn({ err }, "sync after the first login failed"));
    }, settleMs + SETTLE_MARGIN_MS);
    this.settleTimer.unref();
  }

  private confirmTimer: NodeJS.Timeout | null = null;
  private confirmMs = 0;
  private resubscribe = false;

  /**
   * A listening client whose balancer confirms subscriptions (channel.confirmsSubscriptions)
   * expects SUBSCRIBED_FRAME after subscribing. None within the wait: the balancer refused the
   * topic (one from a login before the balancers checked topics' tags, core/protocol/topics.ts)
   * or lost it, and no live delivery would come; the client logs in again for a topic the
   * servers issue now, waiting twice as long each time it goes on missing (up to 5 minutes).
   */
  private expectConfirmation(): void {
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    this.confirmTimer = null;
    if (!this.listening || !this.channel.confirmsSubscriptions) return;
    this.confirmMs ||= this.options.subscribeConfirmMs ?? SUBSCRIBE_CONFIRM_MS;
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = null;
      if (this.closed || !this.session) return;
      this.log.warn(
        { waitedMs: this.confirmMs },
        "the balancer did not confirm the subscription to live deliveries; logging in again",
      );
      this.confirmMs = Math.min(this.confirmMs * 2, SUBSCRIBE_CONFIRM_MAX_MS);
      this.resubscribe = true;
      this.session = null;
      void this.login().catch((err) => this.log.warn({ err }, "logging in again for live deliveries failed"));
    }, this.confirmMs);
    this.confirmTimer.unref();
  }

  private confirmed(): void {
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    this.confirmTimer = null;
    this.confirmMs = this.options.subscribeConfirmMs ?? SUBSCRIBE_CONFIRM_MS;
  }

  /** Logs in again shortly before the delivery topic expires, moves to the new topic, and syncs the gap. */
  private scheduleTopicRefresh(expires: string | undefined): void {
    if (this.topicTimer) clearTimeout(this.topicTimer);
    if (!expires) return;
    const at = Date.parse(expires) - 60_000 - Math.random() * 60_000;
    this.topicTimer = setTimeout(
      () => {
        if (this.closed || !this.session) return;
        this.staleTopic = this.session.topic;
        this.session = null;
        this.login()
          .then(() => this.sync())
          .catch((err) => this.log.warn({ err }, "moving to the new delivery topic failed"));
      },
      Math.max(1000, at - Date.now()),
    );
    this.topicTimer.unref();
  }

  /** Sends one message; resolves once the service stored it durably in every mailbox. */
  send(
    target: Target,
    text: string,
    opts: RequestOptions & { id?: string } = {},
    extra?: MessageExtra,
  ): Promise<ChatMessage> {
    // A message (not a receipt) ends "typing" at the other side: the next key announces it again.
    if (!extra?.receipt) this.signals.sent(target);
    return this.outbox.send(target, text, opts, extra);
  }

  /**
   * Sends, or, when the service cannot be reached in time, keeps the message in the on-disk
   * outbox; `flushOutbox` (run on every reconnect) sends it later with the same id.
   */
  sendOrQueue(
    target: Target,
    text: string,
    opts: RequestOptions = {},
    extra?: MessageExtra,
  ): Promise<{ id: string; queued: boolean; message?: ChatMessage }> {
    if (!extra?.receipt) this.signals.sent(target);
    return this.outbox.sendOrQueue(target, text, opts, extra);
  }

  /** Sends what waits in the outbox, oldest first; stops at the first sign the service is still away. */
  flushOutbox(opts: RequestOptions = {}): Promise<{ sent: number; left: number }> {
    return this.outbox.flush(opts);
  }

  /** Fetches everything new in this user's mailbox into the cache. Returns how many messages were new. */
  async sync(onProgress?: (received: number) => void): Promise<number> {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      let total = 0;
      try {
        do {
          this.syncAgain = false;
          total += await this.syncOnce((n) => {
            onProgress?.(total + n);
          });
        } while (this.syncAgain && !this.closed);
      } finally {
        this.syncing = null;
      }
      return total;
    })();
    return this.syncing;
  }

  private async syncOnce(onProgress: (received: number) => void): Promise<number> {
    await this.login();
    // The sync reads on from the profile's shared cursor: what another process of the profile
    // stored meanwhile (a second `listen`, the TUI), which this client missed live (its
    // subscription was not in place yet, or its link was down), it would never see. Views are
    // told it is stored, as the live path tells them.
    const at = this.cache.cursor;
    if (at !== null && at !== this.announced) this.emit({ type: "already_stored", cursor: at });
    let received = 0;
    // A page is opened as soon as it arrives (on the opener's threads), while the page before it
    // is written on this thread, and the page after it is read as soon as its start is known:
    // reading, opening and writing overlap. Pages are still stored in order, each with the cursor
    // of its last item, so a failure leaves the cursor at a stored item. At most two pages are
    // held at once.
    const start = (after: string | null) => {
      const page = this.request("sync", { after, limit: SYNC_PAGE });
      const opened = page.then((p) => this.openAll(p.items));
      page.catch(() => {});
      opened.catch(() => {});
      return { page, opened };
    };
    let current = start(this.cache.cursor);
    // A sync of more than one page (a recovery) has the cache's search index and the receipts
    // it queues wait until its last page is stored: both then run once, not between its pages.
    let release: (() => void) | null = null;
    try {
      for (;;) {
        const page = await current.page;
        if (page.items.length === 0) break;
        const last = page.items.at(-1)!.cursor;
        const next = page.more ? start(last) : null;
        if (next && !release) {
          release = this.cache.holdIndexing();
          this.bulkSyncing = true;
        }
        const messages = await current.opened;
        const fresh = this.cache.addMessages(messages, last);
        received += fresh.length;
        for (const m of fresh) this.emit({ type: "message", message: m });
        if (fresh.length < messages.length) this.emit({ type: "already_stored", cursor: last });
        onProgress(received);
        this.emit({ type: "sync", received, done: !page.more });
        if (!next) break;
        current = next;
      }
    } finally {
      this.bulkSyncing = false;
      release?.();
    }
    return received;
  }

  private bulkSyncing = false;

  /** A sync of more than one page (a recovery) is running: receipts wait for it (receipt-sender.ts). */
  get recovering(): boolean {
    return this.bulkSyncing;
  }

  /** Subscribes to live deliveries: each one triggers a sync from the cursor, so order and completeness come from the mailbox. */
  async goLive(): Promise<void> {
    this.listening = true;
    await this.login();
    await this.sync();
    await this.flushOutbox();
  }

  /** The named users, or every registered user (following the service's pages until the last). */
  async users(names?: string[]): Promise<UserInfo[]> {
    await this.login();
    if (names) {
      const r = await this.request("users", { names });
      for (const u of r.users) this.keys.pin(u);
      return r.users;
    }
    return this.allPages(async (after) => {
      const r = await this.request("users", after === undefined ? {} : { after });
      for (const u of r.users) this.keys.pin(u);
      return { entries: r.users, more: r.more === true };
    });
  }

  /** This user's groups, every page of them. */
  async groups(): Promise<GroupInfo[]> {
    await this.login();
    return this.allPages(async (after) => {
      const r = await this.request("groups", after === undefined ? {} : { after });
      return { entries: r.groups, more: r.more === true };
    });
  }

  /** Follows a name-ordered listing page after page (`after` = the last name seen) until no more. */
  private async allPages<T extends { name: string }>(
    page: (after: string | undefined) => Promise<{ entries: T[]; more: boolean }>,
  ): Promise<T[]> {
    const all: T[] = [];
    let after: string | undefined;
    for (;;) {
      const r = await page(after);
      all.push(...r.entries);
      const last = r.entries.at(-1)?.name;
      // A page that did not move past `after` would loop for ever: stop instead.
      if (!r.more || last === undefined || (after !== undefined && last <= after)) return all;
      after = last;
    }
  }

  async groupInfo(name: string): Promise<GroupInfo> {
    await this.login();
    return (await this.request("group.info", { name })).group;
  }

  async groupCreate(name: string, members: string[]): Promise<{ group: GroupInfo; created: boolean }> {
    await this.login();
    return this.request("group.create", { name, members });
  }

  async groupChange(op: "add" | "remove", name: string, members: string[]): Promise<GroupInfo> {
    await this.login();
    return (await this.request(op === "add" ? "group.add" : "group.remove", { name, members })).group;
  }

  /** Accepts an invitation (and becomes a member) or declines it. */
  async groupAnswer(name: string, answer: "accept" | "decline"): Promise<void> {
    await this.login();
    if (answer === "accept") await this.request("group.accept", { name });
    else await this.request("group.decline", { name });
  }

  /** Leaves a group: nothing sent to it reaches this user any more. */
  async groupLeave(name: string): Promise<void> {
    await this.login();
    await this.request("group.leave", { name });
  }

  /**
   * Makes new keys and has the service bind them to this name, signed by the current keys.
   * Returns the new identity (with the old keys kept to open old messages) for the caller to save.
   */
  async rotateKeys(opts: RequestOptions = {}): Promise<LoadedIdentity> {
    await this.login(opts);
    const current = this.options.identity;
    const next = generateIdentity(this.name);
    const sig = sign(
      null,
      rotationBytes(this.name, current.identity.publicKeys, next.publicKeys),
      current.identity.signPrivate,
    );
    // Signed by the new keys as well, so that a contact who pins the new keys can trust the old ones for old messages.
    const sigNew = sign(
      null,
      rotationBytes(this.name, current.identity.publicKeys, next.publicKeys),
      next.signPrivate,
    );
    try {
      await this.request(
        "keys.rotate",
        { keys: next.publicKeys, sig: sig.toString("base64url"), sigNew: sigNew.toString("base64url") },
        opts,
      );
    } catch (err) {
      // The acknowledgement can come after a retry, which then finds the old keys' session
      // ended and fails: the rotation happened exactly when the name is bound to the new keys
      // (registering them again is then harmless). Losing the new keys would lock the user out.
      if (!(await this.boundTo(next.publicKeys, opts))) throw err;
      this.session = null;
    }
    return {
      identity: next,
      device: current.device,
      previous: [current.identity, ...(current.previous ?? [])],
    };
  }

  /** True when the service binds this name to `keys` now. */
  private async boundTo(keys: PublicKeys, opts: RequestOptions): Promise<boolean> {
    try {
      await this.request("register", { name: this.name, keys }, opts);
      return true;
    } catch {
      return false;
    }
  }

  /** Uploads this identity encrypted under a passphrase (scrypt), for `restore` on another machine. */
  async backup(passphrase: string, opts: RequestOptions = {}): Promise<void> {
    const { identity, previous } = this.options.identity;
    const { blob, verifier } = sealBackup(
      {
        name: this.name,
        secrets: identitySecrets(identity),
        previous: (previous ?? []).map(identitySecrets),
      },
      passphrase,
    );
    await this.login(opts);
    await this.request("backup.put", { blob, verifier }, opts);
  }

  /**
   * Fetches and opens a user's key backup on a machine without the keys: derives the proof from
   * the passphrase and the backup's public salt, shows it, and decrypts what comes back.
   */
  async restoreBackup(name: string, passphrase: string, opts: RequestOptions = {}): Promise<BackupContents> {
    const params = await this.request("backup.params", { name }, opts);
    if (!params.proof)
      throw new ZmqchatError(
        "unauthorized",
        `${name}'s backup was made by an older zmqchat and can be fetched only with ${name}'s session, not with a passphrase`,
        { hint: "on a device that still has the keys, run `zmqchat keys backup` again, then restore" },
      );
    const keys = deriveBackupKeys(passphrase, params);
    const { blob } = await this.request("backup.get", { name, proof: backupProof(keys) }, opts);
    return openBackup(blob, name, passphrase, keys);
  }

  /**
   * Which keys verify `name`'s messages, and whether a pending change is a signed rotation.
   * With `fetch`, the key history is fetched first (offline: what the cache holds).
   */
  keyView(name: string, fetch = true): Promise<ContactKeyView | null> {
    return this.keys.keyView(name, fetch);
  }

  /**
   * Marks a contact's pinned keys verified after the user compared safety numbers (fetches
   * and pins them first when unknown). Refuses while a key change waits for `trust`.
   */
  async verifyContact(name: string): Promise<{ keys: PublicKeys; already: boolean }> {
    if (!this.cache.contact(name)) await this.login();
    return this.keys.verifyContact(name);
  }

  /** Accepts a contact's changed keys after the user compared fingerprints. */
  trust(name: string): boolean {
    return this.keys.trust(name);
  }

  async ping(opts: RequestOptions = {}): Promise<void> {
    await this.request("ping", {}, opts, "broker");
  }

  /**
   * Pings the balancer every `intervalMs` so a dead link is noticed within seconds (the
   * request layer then fails over); after the link comes back, a sync fills the gap.
   */
  keepAlive(intervalMs = 2000): void {
    if (this.heartbeat) return;
    let busy = false;
    let lost = false;
    this.heartbeat = setInterval(() => {
      if (busy || this.closed) return;
      busy = true;
      this.ping({ timeoutMs: intervalMs * 2 })
        .then(() => {
          if (lost && this.session)
            void this.sync().catch((err) => this.log.warn({ err }, "sync after reconnect failed"));
          lost = false;
        })
        .catch(() => {
          lost = true;
        })
        .finally(() => {
          busy = false;
        });
    }, intervalMs);
    this.heartbeat.unref();
  }

  private heartbeat: NodeJS.Timeout | null = null;

  async close(): Promise<void> {
    // Receipts queued by what this client stored go out before it goes (queued on when offline).
    // Bounded: a command never waits more than RECEIPT_CLOSE_MS for them (the rest goes next time).
    if (this.online && this.cache.receipts.waiting())
      await Promise.race([
        this.receipts.flush(RECEIPT_CLOSE_MS).catch(() => {}),
        new Promise((r) => setTimeout(r, RECEIPT_CLOSE_MS).unref()),
      ]);
    await this.signals.stopPresence();
    this.receipts.stop();
    this.closed = true;
    this.cache.unregisterLive();
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.topicTimer) clearTimeout(this.topicTimer);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    if (this.renewTimer) clearTimeout(this.renewTimer);
    await this.channel.close();
    await this.opener.close();
  }

  // ---- opening -------------------------------------------------------------------------

  private async openAll(items: MailboxItem[]): Promise<ChatMessage[]> {
    const unknown = [...new Set(items.map((i) => i.envelope.from))].filter(
      (n) => n !== this.name && !this.cache.contact(n),
    );
    if (unknown.length > 0) await this.users(unknown);
    // This device's own sends, delivered before their acknowledgement: the envelope is the one
    // this device sealed (same signature or key commitment), so its text is known here.
    const local: Array<Opened | undefined> = items.map((item) => {
      const env = item.envelope;
      const mine = env.from === this.name && env.device === this.options.identity.device;
      const sent = mine ? this.outbox.sending.get(env.id) : undefined;
      if (!sent || sent.tag !== sealTag(env)) return undefined;
      const message: ChatMessage = addExtraFields(
        messageOf(item, this.name, sent.text, true, null),
        sent.extra,
      );
      if (sent.sealedFor) message.sealedFor = sent.sealedFor;
      return { message, held: false, unexplained: false };
    });
    const rest = items.filter((_, k) => local[k] === undefined);
    const fromOpener = rest.length > 0 ? await this.opener.open(rest, this.keys.lookup) : [];
    let j = 0;
    const opened: Opened[] = local.map((o) => o ?? fromOpener[j++]!);
    // A signature no known key explains: the sender may have rotated; fetch their key history once and look again.
    const unexplained = [
      ...new Set(
        opened
          .filter((o) => o.unexplained || o.ownHistory)
          .map((o) => (o.ownHistory ? this.name : o.message.from)),
      ),
    ];
    if (unexplained.length > 0) {
      try {
        await this.keys.refresh(unexplained);
      } catch (err) {
        // Unreachable now: stop here, so these messages are judged on the next sync, not marked forged.
        if (err instanceof ZmqchatError && (err.code === "timeout" || err.code === "unavailable")) throw err;
        this.log.warn({ err }, "could not fetch a key history");
      }
      for (let k = 0; k < items.length; k++)
        if (opened[k]!.unexplained || opened[k]!.ownHistory) opened[k] = this.open(items[k]!);
    }
    const shown: ChatMessage[] = [];
    for (let k = 0; k < items.length; k++) {
      const o = opened[k]!;
      if (o.held) this.cache.hold(o.message.from, items[k]!);
      else shown.push(o.message);
    }
    return shown;
  }

  private open(item: MailboxItem): Opened {
    return this.opener.openOne(item, this.keys.lookup);
  }

  // ---- requests ------------------------------------------------------------------------

  /**
   * One request with retries until its deadline (see RequestChannel): the same request id and
   * body go out on every attempt, so a resent `send` is recognised by the service and stored once.
   */
  request<T extends RequestType>(
    type: T,
    body: RequestBody<T>,
    opts: RequestOptions = {},
    route: Route = "service",
  ): Promise<ReplyBody<T>> {
    return this.channel.request(type, body, opts, route);
  }

  /** The channel's hooks: the session it sends with, and what happens on a new link or a delivery. */
  private channelHooks(): ChannelHooks {
    return {
      session: () => (this.session ? { token: this.session.token, bindKey: this.bindKey } : null),
      relogin: async (timeoutMs) => {
        if (!this.session) return false;
        this.session = null;
        await this.login({ timeoutMs });
        return true;
      },
      linkOpened: () => {
        if (!this.session) return;
        this.channel.subscribe(this.session.topic);
        this.expectConfirmation();
        // Anything published while we were away is in the mailbox.
        void this.sync().catch((err) => this.log.warn({ err }, "sync after reconnect failed"));
      },
      delivery: (frame) => this.onDelivery(frame),
      state: (state, endpoint) => this.emit({ type: "state", state, endpoint }),
    };
  }

  private onDelivery(frame: Buffer): void {
    if (!this.session || this.closed) return;
    // Anything on our topic (the balancer's confirmation, or a delivery when that was dropped)
    // shows the subscription is in place.
    if (this.confirmTimer) this.confirmed();
    // The balancer took our subscription: what was published before it may have passed us by.
    if (isSubscribedFrame(frame)) {
      if (this.listening)
        void this.sync().catch((err) => this.log.warn({ err }, "sync after subscribing failed"));
      return;
    }
    // Typing and presence (ephemeral.ts): the relay writes the type first.
    if (frame.subarray(0, 32).includes('"type":"signal"')) {
      this.signals.receive(safeJson(frame));
      return;
    }
    // Group notices are small and start with their type; messages go to the live path (live.ts).
    if (frame.length < 512 && frame.includes('"type":"group"')) {
      const notice = groupNoticeSchema.safeParse(safeJson(frame));
      if (notice.success) this.emit({ type: "group", notice: notice.data });
      return;
    }
    // Parsed when its run is applied (live.ts: a frame waiting parsed outlived the young generation).
    this.live.push(frame);
  }

  /** The cache position this client last told its listeners about (a message, or already_stored). */
  private announced: string | null = null;

  private emit(e: ClientEvent): void {
    if (e.type === "message") this.announced = e.message.cursor;
    else if (e.type === "already_stored") this.announced = e.cursor;
    for (const l of this.listeners) l(e);
  }
}

function safeJson(frame: Buffer): unknown {
  try {
    return JSON.parse(frame.toString("utf8"));
  } catch {
    return null;
  }
}
