import { requestBindingProof } from "../crypto/session-binding.js";
import { rateLimited, ZmqchatError } from "../errors.js";
import { type Logger, silentLogger } from "../logger.js";
import { decodeJson } from "../protocol/codec.js";
import { uuidv7 } from "../protocol/ids.js";
import {
  type ReplyBody,
  type RequestBody,
  type RequestType,
  replyBodies,
  replyFrameSchema,
} from "../protocol/schema.js";
import { checkSyncBody } from "../protocol/sync-check.js";
import type { ClientLink, Route } from "../transport.js";
import type { EndpointMemory } from "./endpoints.js";

export type ConnectionState = "connecting" | "online" | "offline" | "closed";

export interface RequestOptions {
  timeoutMs?: number;
}

type Reply =
  | { ok: true; body: unknown }
  | { ok: false; error: { code: string; message: string; retryAfterMs?: number } };

/** What the channel needs from the client around it (the session lives there, not here). */
export interface ChannelHooks {
  /** The session token requests carry, and the key that binds them to this device (null: not bound). */
  session(): { token: string; bindKey: Buffer | null } | null;
  /**
   * The service refused the session of a request: log in again once and return true to resend
   * it, or false to give the refusal to the caller.
   */
  relogin(timeoutMs: number): Promise<boolean>;
  /** A link's broker said hello: subscribe to live deliveries and sync what was missed. */
  linkOpened(): void;
  delivery(frame: Buffer): void;
  state(state: ConnectionState, endpoint: string): void;
}

export interface ChannelOptions {
  /** Opens a link to one endpoint (the transport is picked by the caller). */
  connect: (endpoint: string) => ClientLink;
  endpoints: string[];
  log?: Logger;
  attemptTimeoutMs?: number;
  requestTimeoutMs?: number;
  endpointMemory?: EndpointMemory;
  firstContactMs?: number;
}

/**
 * The client's request channel: one link to a balancer endpoint, requests in flight by id (as
 * many as callers start; each waits for its own reply), retries with the same id and body until
 * the deadline (Lazy Pirate), failover across endpoints after repeated silence (Freelance), and
 * the connection state. It knows nothing of messages or keys.
 */
export class RequestChannel {
  private readonly waiters = new Map<string, (reply: Reply | null) => void>();
  private link: ClientLink | null = null;
  /** Counts link replacements, so that concurrent requests fail over once, not once each. */
  private generation = 0;
  /** The link reported its peer gone: fail over at the first silent attempt. */
  private suspect = false;
  private linkReady: Promise<void> | null = null;
  /** The deadline the link opening in progress gives up at (that of the request that started it). */
  private linkDeadline = 0;
  private endpointIndex = 0;
  /** The endpoints in the order to try them (remembered silent ones last). */
  private readonly endpoints: string[];
  /** Some balancer answered this client: from then on silence is an outage to wait out, not "nothing runs there". */
  private everAnswered = false;
  /**
   * The current link's balancer tells a subscriber when it took its subscription (its hello
   * said `subscribed`): a subscription it does not confirm was refused or lost.
   */
  confirmsSubscriptions = false;
  /** Cuts a first-contact hello short when the link reports its peer refused the connection. */
  private onRefused: (() => void) | null = null;
  private readonly firstContactMs: number;
  private readonly attemptMs: number;
  readonly requestMs: number;
  private readonly log: Logger;
  private closed = false;
  state: ConnectionState = "offline";

  constructor(
    private readonly options: ChannelOptions,
    private readonly hooks: ChannelHooks,
  ) {
    if (options.endpoints.length === 0) throw new ZmqchatError("usage", "no endpoint to connect to");
    this.log = options.log ?? silentLogger;
    this.attemptMs = options.attemptTimeoutMs ?? 1500;
    this.requestMs = options.requestTimeoutMs ?? 10_000;
    this.firstContactMs = options.firstContactMs ?? 1500;
    this.endpoints = options.endpointMemory?.order(options.endpoints) ?? [...options.endpoints];
  }

  get endpoint(): string {
    return this.endpoints[this.endpointIndex]!;
  }

  subscribe(topic: string): void {
    this.link?.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.link?.unsubscribe(topic);
  }

  /**
   * One request with retries until its deadline. The same request id and body go out on
   * every attempt, so a resent `send` is recognised by the service and stored once.
   */
  async request<T extends RequestType>(
    type: T,
    body: RequestBody<T>,
    opts: RequestOptions = {},
    route: Route = "service",
  ): Promise<ReplyBody<T>> {
    const waitMs = opts.timeoutMs ?? this.requestMs;
    const deadline = Date.now() + waitMs;
    const id = uuidv7();
    let attempt = 0;
    let silent = 0;
    let reloggedIn = false;
    let lastProblem = "no answer";
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        await this.ready(deadline);
      } catch (err) {
        if (err instanceof ZmqchatError && err.code === "timeout") {
          lastProblem = err.message;
          break;
        }
        throw err;
      }
      const session = type !== "login" ? this.hooks.session() : null;
      const frame = Buffer.from(
        JSON.stringify({
          v: 1,
          id,
          type,
          ...(session ? { session: session.token } : {}),
          ...(session?.bindKey
            ? { pop: requestBindingProof(session.bindKey, id, type, session.token, body) }
            : {}),
          body,
        }),
      );
      const wait = Math.min(this.attemptMs * 1.5 ** Math.min(attempt, 4), deadline - Date.now());
      const generation = this.generation;
      const reply = await this.attempt(id, frame, route, wait);
      attempt++;
      if (reply === null) {
        silent++;
        lastProblem = `no answer from ${this.endpoint}`;
        this.setState("offline");
        // Freelance-style failover: after two silent attempts (one, when the link saw its peer
        // go), move to the next endpoint, unless another request already did. With a single
        // endpoint the DEALER reconnects by itself and the same request is simply sent again.
        if (silent >= (this.suspect ? 1 : 2) && this.endpoints.length > 1 && generation === this.generation) {
          silent = 0;
          await this.rotate();
        }
        continue;
      }
      silent = 0;
      this.setState("online");
      if (reply.ok) {
        // A sync page (up to a thousand envelopes) is checked by hand; any doubt goes to the schema.
        const page = type === "sync" ? checkSyncBody(reply.body) : null;
        if (page) return page as ReplyBody<T>;
        const parsed = replyBodies[type].safeParse(reply.body);
        if (!parsed.success) throw new ZmqchatError("internal", `the service sent a malformed ${type} reply`);
        return parsed.data as ReplyBody<T>;
      }
      const { code, message } = reply.error;
      if (code === "rate_limited") {
        // Honour the balancer's retry-after while the deadline allows it; past it, say so.
        const after = reply.error.retryAfterMs ?? 1000;
        if (Date.now() + after >= deadline) {
          throw rateLimited(message, after);
        }
        lastProblem = message;
        await delay(after);
        continue;
      }
      if (code === "unavailable") {
        lastProblem = message;
        await delay(Math.min(50 * 2 ** Math.min(attempt, 6), Math.max(0, deadline - Date.now())));
        continue;
      }
      if (
        code === "unauthorized" &&
        session &&
        !reloggedIn &&
        type !== "challenge" &&
        (await this.hooks.relogin(Math.max(1, deadline - Date.now())))
      ) {
        reloggedIn = true;
        continue;
      }
      throw new ZmqchatError(code as never, message);
    }
    if (this.closed) throw new ZmqchatError("unavailable", "the client is closed");
    this.setState("offline");
    throw new ZmqchatError("timeout", `the service did not answer in time (${lastProblem})`, {
      hint: `is the service running at ${this.endpoints.join(", ")}? (zmqchat up starts a local one; waited ${waitMs / 1000} s, --request-timeout changes that)`,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const [, resolve] of this.waiters)
      resolve({ ok: false, error: { code: "unavailable", message: "client closed" } });
    this.waiters.clear();
    await this.link?.close();
    this.link = null;
    this.setState("closed");
  }

  private attempt(id: string, frame: Buffer, route: Route, timeoutMs: number): Promise<Reply | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.waiters.delete(id);
          resolve(null);
        },
        Math.max(1, timeoutMs),
      );
      this.waiters.set(id, (r) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(r);
      });
      if (!this.link) {
        // The link is being replaced (failover): count this attempt as unanswered.
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(null);
        return;
      }
      this.link.send(frame, route);
    });
  }

  /**
   * Makes sure there is a link whose broker said hello, and that deliveries are subscribed.
   * Concurrent requests share one opening, which gives up at the deadline of the request that
   * started it: a request with a later deadline (a sync behind a 1 s keep-alive ping) then
   * starts its own instead of failing with the other's timeout.
   */
  private async ready(deadline: number): Promise<void> {
    if (this.link && !this.linkReady) return;
    for (;;) {
      if (!this.linkReady) {
        this.linkDeadline = deadline;
        this.linkReady = this.openLink(deadline).finally(() => {
          this.linkReady = null;
        });
      }
      const shared = this.linkDeadline;
      try {
        return await this.linkReady;
      } catch (err) {
        const theirs = err instanceof ZmqchatError && err.code === "timeout" && shared < deadline;
        if (!theirs || this.closed || Date.now() >= deadline) throw err;
      }
    }
  }

  private async openLink(deadline: number): Promise<void> {
    // A client that never reached the service gives up soon: nothing answers there, and the
    // caller reports it or falls back (the outbox, the local cache). Once a balancer has
    // answered, silence is an outage: keep trying until the request's deadline.
    const firstContact = !this.everAnswered;
    const giveUpAt = firstContact ? Math.min(deadline, Date.now() + this.firstContactMs) : deadline;
    const several = this.endpoints.length > 1;
    let silent = 0;
    let refusedInRow = 0;
    while (!this.closed) {
      if (!this.link) {
        this.setState("connecting");
        this.link = this.options.connect(this.endpoint);
        const link = this.link;
        this.suspect = false;
        link.onReply((f) => this.onReply(f));
        link.onDelivery((_topic, frame) => this.hooks.delivery(frame));
        link.onState((e) => {
          if (link !== this.link) return;
          if (e.state === "disconnected" || e.state === "refused") this.suspect = true;
          if (e.state === "connected") this.suspect = false;
          if (e.state === "refused") this.onRefused?.();
        });
      }
      const left = giveUpAt - Date.now();
      if (left <= 0)
        throw new ZmqchatError(
          "timeout",
          firstContact
            ? `nothing answers at ${this.endpoints.join(", ")}`
            : `no answer from ${this.endpoint}`,
        );
      const id = uuidv7();
      const hello = Buffer.from(JSON.stringify({ v: 1, id, type: "hello", body: {} }));
      // On first contact with several endpoints, each gets its share of the time, and a
      // refused connection moves on at once. A single endpoint keeps its hello queued while
      // the DEALER reconnects, so a balancer that is just starting is still found.
      const cutShort = firstContact && several;
      const wait = cutShort
        ? Math.min(this.attemptMs, left, Math.max(300, this.firstContactMs / this.endpoints.length))
        : Math.min(this.attemptMs, left);
      let refused = false;
      if (cutShort)
        this.onRefused = () => {
          refused = true;
          this.waiters.get(id)?.(null);
        };
      const reply = await this.attempt(id, hello, "broker", wait).finally(() => {
        this.onRefused = null;
      });
      if (reply?.ok) {
        const info = replyBodies.hello.safeParse(reply.body);
        if (!info.success) throw new ZmqchatError("internal", "the balancer sent a malformed hello");
        this.everAnswered = true;
        this.options.endpointMemory?.answered(this.endpoint);
        this.confirmsSubscriptions = info.data.subscribed === true;
        this.link.openDeliveries(info.data.pubPort, info.data.pubHost, info.data.deliveries);
        this.hooks.linkOpened();
        this.setState("online");
        return;
      }
      silent++;
      refusedInRow = refused ? refusedInRow + 1 : 0;
      if (several && (cutShort || silent >= 2)) {
        silent = 0;
        await this.rotate(false);
        // Every endpoint refused in a row: pause a little before the next round.
        if (refusedInRow > 0 && refusedInRow % this.endpoints.length === 0)
          await delay(Math.min(150, Math.max(0, giveUpAt - Date.now())));
      }
    }
  }

  private async rotate(reopen = true): Promise<void> {
    const old = this.link;
    this.link = null;
    this.generation++;
    if (this.endpoints.length > 1) {
      // Only silence makes a client move on: the next command tries the others first.
      this.options.endpointMemory?.silent(this.endpoint);
      this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
    }
    await old?.close();
    this.setState("offline");
    if (reopen) this.linkReady = null;
  }

  private onReply(frame: Buffer): void {
    let reply: ReturnType<typeof replyFrameSchema.parse>;
    try {
      reply = replyFrameSchema.parse(decodeJson(frame));
    } catch {
      this.log.warn({}, "ignored a malformed reply");
      return;
    }
    if (reply.id === null) return;
    this.waiters.get(reply.id)?.(
      reply.ok ? { ok: true, body: reply.body } : { ok: false, error: reply.error },
    );
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.hooks.state(state, this.endpoint);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
