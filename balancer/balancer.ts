import { randomBytes } from "node:crypto";
import type { BrokerHandlers, BrokerSockets } from "../core/broker-sockets.js";
import { ZmqchatError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import {
  BrokerCommand,
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_LIVENESS,
  LINK_DELIVERIES,
  LINK_TOPICS_PER_PEER,
  SUBSCRIBED_FRAME,
} from "../core/protocol/broker.js";
import { decodeJson } from "../core/protocol/codec.js";
import { errorFrame, okFrame, requestIdOf } from "../core/protocol/frames.js";
import { TOPIC_PATTERN } from "../core/protocol/limits.js";
import { topicTagged } from "../core/protocol/topics.js";
import {
  type BrokerEndpoints,
  type CurveKeys,
  parseTcpEndpoint,
  ZAP_DOMAIN,
  ZapHandler,
  ZeromqBrokerSockets,
} from "../transports/zeromq/index.js";
import { Dispatcher } from "./dispatch.js";
import { BalancerRateLimiter, type RateLimits, rateLimitedReply } from "./rate-limit.js";
import { Tickets } from "./tickets.js";

/** What the broker needs whatever sockets carry it. */
export type BrokerOptions = Omit<BalancerOptions, "endpoints" | "curve">;

export interface BalancerOptions {
  endpoints: BrokerEndpoints;
  /** Host clients and servers should use for the pub/sub sockets; null: the host they reached us on. */
  publicHost: string | null;
  version: string;
  log: Logger;
  heartbeatMs?: number;
  liveness?: number;
  metrics?: BalancerMetrics;
  /** Token buckets per connection, per session and for registrations (balancer/rate-limit.ts). */
  rateLimits?: RateLimits;
  /**
   * CurveZMQ on all four sockets. Servers must be on `allowServers`; clients on `allowClients`
   * when given (else any device key is admitted: users still prove who they are by signing in).
   */
  curve?: { keys: CurveKeys; allowServers: Set<string>; allowClients: Set<string> | null };
  /**
   * The delivery topics' tag key (core/protocol/topics.ts): with it, only topics a server issued
   * may be subscribed to. Without it any full-length topic passes, and a client can make this
   * balancer and every server hold a subscription for each of as many made-up topics as it sends.
   */
  topicKey?: Buffer | null;
  /** ZMTP heartbeats on client connections (transports/zeromq/broker.ts, CLIENT_HEARTBEAT); shorter in tests. */
  clientHeartbeat?: { intervalMs: number; timeoutMs: number };
  /** The dispatch rules (dispatch.ts); tests give one that steers requests to a server of their choice. */
  dispatcher?: Dispatcher;
}

const SUBSCRIBED = Buffer.from(SUBSCRIBED_FRAME);
/** At most one warning about refused subscriptions this often. */
const REFUSAL_LOG_MS = 1000;

/** How long the balancer remembers which server was given a request (late replies still count). */
const TICKET_TTL_MS = 60_000;
/** Servers dropped for answering what they were not asked, remembered up to this many. */
const MAX_BANNED = 10_000;

export interface BalancerMetrics {
  /** Clients heard from within CLIENT_SEEN_MS, reported every heartbeat. */
  clients?(n: number): void;
  forwarded(): void;
  refused(reason: string): void;
  liveServers(n: number): void;
}

/** A client counts as connected this long after its last request or ping (busy clients ping every 2 s). */
const CLIENT_SEEN_MS = 10_000;

/**
 * The broker: clients' requests go to the live server with the fewest in flight; replies go
 * back; live deliveries pass through an XSUB/XPUB proxy that admits only full delivery topics.
 */
export class Balancer {
  private readonly sockets: BrokerSockets;
  private readonly dispatcher: Dispatcher;
  private readonly timer: NodeJS.Timeout;
  /** Where servers publish (told in WELCOME) and clients subscribe (told in `hello`); 0 in memory. */
  private pubPorts = { in: 0, out: 0 };
  /** Deliveries over the request connection: who holds each topic, and each connection's topics. */
  private readonly linkSubscribers = new Map<string, Set<string>>();
  private readonly peerTopics = new Map<string, Set<string>>();
  /** When each client peer last sent something, for the connected-clients gauge. */
  private readonly clientsSeen = new Map<string, number>();
  private readonly limiter: BalancerRateLimiter;
  private readonly tickets = new Tickets(randomBytes(6).toString("hex"), TICKET_TTL_MS);
  /** Servers dropped for replying to requests they were not given: everything they send is ignored. */
  private readonly banned = new Set<string>();
  bound!: BrokerEndpoints;

  private constructor(
    private readonly options: BrokerOptions,
    makeSockets: (handlers: BrokerHandlers) => BrokerSockets,
  ) {
    const interval = options.heartbeatMs ?? HEARTBEAT_INTERVAL_MS;
    this.dispatcher =
      options.dispatcher ?? new Dispatcher(interval * (options.liveness ?? HEARTBEAT_LIVENESS));
    this.limiter = new BalancerRateLimiter(options.rateLimits);
    this.sockets = makeSockets({
      onClient: (peer, route, frame, parts) => this.onClient(peer, route, frame, parts),
      onWorker: (worker, parts) => this.onWorker(worker, parts),
      onWorkerUnreachable: (worker, parts) => {
        options.log.warn({ worker }, "server unreachable; dropped");
        this.dispatcher.remove(worker);
        if (String(parts[0]) === BrokerCommand.request && parts.length === 3) {
          const ticket = this.tickets.cancel(String(parts[1]));
          if (ticket) this.forward(ticket.peer, parts[2] as Buffer);
        }
      },
      acceptTopic: (topic) => this.acceptTopic(topic),
      onRefusedTopic: (topic) => this.refusedTopic(topic),
      onClientConnection: (peer) => this.dropLinkSubscriptions(peer),
      onPublication: (topic, frame) => this.publishOverLinks(topic, frame),
    });
    this.timer = setInterval(() => this.tick(), interval);
  }

  static async start(options: BalancerOptions): Promise<Balancer> {
    const curve = options.curve;
    const zap = curve
      ? await ZapHandler.start(
          (domain, key) =>
            domain === ZAP_DOMAIN.servers
              ? curve.allowServers.has(key)
              : domain === ZAP_DOMAIN.clients && (curve.allowClients === null || curve.allowClients.has(key)),
          (d) => {
            if (!d.ok) options.log.warn({ domain: d.domain, key: d.key }, "refused a CURVE key");
          },
        )
      : null;
    let sockets: ZeromqBrokerSockets | null = null;
    const b = new Balancer(options, (handlers) => {
      sockets = new ZeromqBrokerSockets(handlers, {
        curve: curve?.keys,
        clientHeartbeat: options.clientHeartbeat,
      });
      return sockets;
    });
    b.zap = zap;
    try {
      b.bound = await sockets!.bind(options.endpoints);
    } catch (cause) {
      b.stop();
      throw new ZmqchatError("unavailable", `the balancer cannot bind: ${(cause as Error).message}`, {
        cause,
      });
    }
    b.pubPorts = {
      in: parseTcpEndpoint(b.bound.pubIn).port,
      // 0 when not bound: a client from before deliveries over the request connection then
      // subscribes at port 0, which never connects (it reads its mailbox when it syncs).
      out: b.bound.pubOut ? parseTcpEndpoint(b.bound.pubOut).port : 0,
    };
    options.log.info({ endpoints: b.bound }, "balancer ready");
    return b;
  }

  /**
   * The broker over sockets made elsewhere (the memory transport's): the same dispatch,
   * heartbeats, tickets, rate limits and topic filter as over ZeroMQ.
   */
  static over(makeSockets: (handlers: BrokerHandlers) => BrokerSockets, options: BrokerOptions): Balancer {
    return new Balancer(options, makeSockets);
  }

  private acceptTopic(topic: Buffer): boolean {
    const key = this.options.topicKey;
    return (
      topic.length === 64 && (key ? topicTagged(key, topic) : TOPIC_PATTERN.test(topic.toString("latin1")))
    );
  }

  private refusedTopic(topic: Buffer): void {
    this.options.metrics?.refused("subscription");
    // Logged at most once a second (the metric counts each): a client sending made-up topics
    // at its request rate must not fill the operator's disk with warnings.
    this.refusedSinceLog++;
    const now = Date.now();
    if (now - this.refusalLoggedAt < REFUSAL_LOG_MS) return;
    this.options.log.warn(
      { length: topic.length, refused: this.refusedSinceLog },
      "refused subscriptions that are not delivery topics a server issued",
    );
    this.refusalLoggedAt = now;
    this.refusedSinceLog = 0;
  }

  private refusalLoggedAt = 0;
  private refusedSinceLog = 0;

  /**
   * A `subscribe` or `unsubscribe` on the request connection (core/protocol/broker.ts,
   * LINK_DELIVERIES): nothing is answered; each topic taken is confirmed with SUBSCRIBED_FRAME.
   */
  private linkTopics(peer: string, subscribe: boolean, body: unknown): void {
    const topics = (body as { topics?: unknown } | null)?.topics;
    if (
      !Array.isArray(topics) ||
      topics.length === 0 ||
      topics.length > LINK_TOPICS_PER_PEER ||
      !topics.every((t) => typeof t === "string")
    )
      throw new ZmqchatError("bad_request", `topics: 1 to ${LINK_TOPICS_PER_PEER} strings`);
    for (const topic of topics as string[]) {
      if (subscribe) this.linkSubscribe(peer, topic);
      else this.linkUnsubscribe(peer, topic);
    }
  }

  private linkSubscribe(peer: string, topic: string): void {
    const bytes = Buffer.from(topic, "latin1");
    if (topic.length !== 64 || !this.acceptTopic(bytes)) {
      this.refusedTopic(bytes);
      return;
    }
    let mine = this.peerTopics.get(peer);
    if (!mine?.has(topic)) {
      if (mine && mine.size >= LINK_TOPICS_PER_PEER) {
        this.options.metrics?.refused("subscription");
        return;
      }
      if (!mine) {
        mine = new Set();
        this.peerTopics.set(peer, mine);
      }
      mine.add(topic);
      let peers = this.linkSubscribers.get(topic);
      if (!peers) {
        peers = new Set();
        this.linkSubscribers.set(topic, peers);
        this.sockets.subscribeUpstream?.(bytes, true);
      }
      peers.add(peer);
    }
    this.sockets.sendDelivery?.(peer, bytes, SUBSCRIBED);
  }

  private linkUnsubscribe(peer: string, topic: string): void {
    const mine = this.peerTopics.get(peer);
    if (!mine?.delete(topic)) return;
    if (mine.size === 0) this.peerTopics.delete(peer);
    const peers = this.linkSubscribers.get(topic);
    if (!peers?.delete(peer) || peers.size > 0) return;
    this.linkSubscribers.delete(topic);
    this.sockets.subscribeUpstream?.(Buffer.from(topic, "latin1"), false);
  }

  /** A connection came or went: whatever it held is dropped (it subscribes again when it reconnects). */
  private dropLinkSubscriptions(peer: string): void {
    const mine = this.peerTopics.get(peer);
    if (!mine) return;
    for (const topic of [...mine]) this.linkUnsubscribe(peer, topic);
  }

  private publishOverLinks(topic: Buffer, frame: Buffer): void {
    if (this.linkSubscribers.size === 0) return;
    const peers = this.linkSubscribers.get(topic.toString("latin1"));
    if (!peers) return;
    for (const peer of peers) this.sockets.sendDelivery!(peer, topic, frame);
  }

  /** Connections holding subscriptions over their request connection, and the topics held (for tests and metrics). */
  linkSubscriptions(): { peers: number; topics: number } {
    return { peers: this.peerTopics.size, topics: this.linkSubscribers.size };
  }

  liveServers(): number {
    return this.dispatcher.live().filter((w) => !w.draining).length;
  }

  /** The server requests go to first (dispatch.ts), by its id, or null before any request. */
  leadServer(): string | null {
    return this.dispatcher.leadId();
  }

  stop(): void {
    clearInterval(this.timer);
    this.sockets.close();
    this.zap?.close();
  }

  private zap: ZapHandler | null = null;

  private tick(): void {
    this.tickets.expire(Date.now());
    const dead = this.dispatcher.expire(Date.now());
    for (const id of dead) this.options.log.warn({ server: id }, "server missed its heartbeats; dropped");
    for (const id of this.dispatcher.ids()) this.sockets.sendWorker(id, [BrokerCommand.heartbeat]);
    this.options.metrics?.liveServers(this.liveServers());
    const now = Date.now();
    for (const [peer, at] of this.clientsSeen) {
      if (now - at <= CLIENT_SEEN_MS) continue;
      this.clientsSeen.delete(peer);
      this.dispatcher.forget(peer);
    }
    this.options.metrics?.clients?.(this.clientsSeen.size);
  }

  private onClient(peer: string, route: string, frame: Buffer, parts: number): void {
    const now = Date.now();
    this.clientsSeen.set(peer, now);
    const verdict = this.limiter.admit(peer, frame, now);
    if (!verdict.ok) {
      this.options.metrics?.refused(`rate_limited_${verdict.limit}`);
      if (verdict.answer) this.sockets.sendClient(peer, rateLimitedReply(requestIdOf(frame), verdict));
      return;
    }
    if (parts !== 2) {
      this.sockets.sendClient(
        peer,
        errorFrame(null, { code: "bad_request", message: "a request is two frames: route and body" }),
      );
      return;
    }
    if (route === "S") {
      this.forward(peer, frame);
    } else if (route === "B") {
      this.answer(peer, frame);
    } else {
      this.sockets.sendClient(
        peer,
        errorFrame(null, { code: "bad_request", message: "unknown route frame" }),
      );
    }
  }

  private forward(peer: string, frame: Buffer): void {
    const worker = this.dispatcher.pick(peer, Date.now());
    if (worker === null) {
      this.options.metrics?.refused("no_server");
      this.sockets.sendClient(
        peer,
        errorFrame(requestIdOf(frame), { code: "unavailable", message: "no chat server is available" }),
      );
      return;
    }
    this.options.metrics?.forwarded();
    // The server sees a ticket, not the client: its reply is routed only if it names a request it was given.
    const ticket = this.tickets.issue(worker, peer, Date.now());
    this.sockets.sendWorker(worker, [BrokerCommand.request, ticket, frame]);
  }

  /** Requests the balancer answers itself: `hello` (where deliveries are published) and `ping`. */
  private answer(peer: string, frame: Buffer): void {
    let id: string | null = null;
    try {
      const req = decodeJson(frame) as { id?: unknown; type?: unknown; v?: unknown };
      id = typeof req?.id === "string" ? req.id.slice(0, 64) : null;
      if (req?.v !== 1 || id === null)
        throw new ZmqchatError("bad_request", "not a version 1 request with an id");
      let body: unknown;
      if (req.type === "hello") {
        body = {
          pubPort: this.pubPorts.out,
          pubHost: this.options.publicHost,
          version: this.options.version,
          // It publishes SUBSCRIBED_FRAME on each subscription it takes (core/protocol/broker.ts).
          subscribed: true,
          ...(this.sockets.sendDelivery ? { deliveries: LINK_DELIVERIES } : {}),
        };
      } else if (req.type === "ping") {
        body = { time: new Date().toISOString() };
      } else if ((req.type === "subscribe" || req.type === "unsubscribe") && this.sockets.sendDelivery) {
        this.linkTopics(peer, req.type === "subscribe", (req as { body?: unknown }).body);
        return;
      } else {
        throw new ZmqchatError(
          "bad_request",
          "the balancer answers only hello, ping, subscribe and unsubscribe",
        );
      }
      this.sockets.sendClient(peer, okFrame(id, body));
    } catch (err) {
      const e = err instanceof ZmqchatError ? err : new ZmqchatError("bad_request", "malformed request");
      this.sockets.sendClient(peer, errorFrame(id, { code: e.code, message: e.message }));
    }
  }

  private onWorker(worker: string, parts: Buffer[]): void {
    if (this.banned.has(worker)) return;
    const command = parts[0]?.toString() ?? "";
    const now = Date.now();
    switch (command) {
      case BrokerCommand.reply:
        this.onReply(worker, parts, now);
        return;
      case BrokerCommand.ready:
        this.dispatcher.ready(worker, readVersion(parts[1]), now);
        this.options.log.info({ server: worker }, "server ready");
        this.sendWelcome(worker);
        return;
      case BrokerCommand.heartbeat:
        if (!this.dispatcher.seen(worker, now)) {
          // A server we do not know (we restarted): take it back, as if it had said READY.
          this.dispatcher.ready(worker, "unknown", now);
          this.options.log.info({ server: worker }, "server back after a balancer restart");
          this.sendWelcome(worker);
        }
        return;
      case BrokerCommand.bye:
        this.dispatcher.drain(worker);
        return;
      default:
        this.options.log.warn(
          { server: worker, command: command.slice(0, 16) },
          "unknown message from a server",
        );
    }
  }

  /** Routes a reply only when it answers, once, a request this very server was given. */
  private onReply(worker: string, parts: Buffer[], now: number): void {
    const ticket = parts.length === 3 ? parts[1]!.toString("latin1") : "";
    const verdict = this.tickets.reply(worker, ticket);
    if (verdict.kind === "ok") {
      this.dispatcher.seen(worker, now);
      this.dispatcher.done(worker);
      this.sockets.sendClient(verdict.peer, parts[2]!);
      return;
    }
    if (verdict.kind === "stale" || verdict.kind === "late") {
      this.dispatcher.seen(worker, now);
      return;
    }
    this.options.metrics?.refused("unsolicited_reply");
    this.options.log.warn(
      { server: worker.slice(0, 64) },
      "a server answered a request it was not given (or answered twice); reply discarded, server dropped",
    );
    this.dispatcher.remove(worker);
    this.tickets.forget(worker);
    if (this.banned.size >= MAX_BANNED) this.banned.delete(this.banned.values().next().value!);
    this.banned.add(worker);
  }

  private sendWelcome(worker: string): void {
    this.sockets.sendWorker(worker, [
      BrokerCommand.welcome,
      JSON.stringify({ pubPort: this.pubPorts.in, pubHost: this.options.publicHost }),
    ]);
  }
}

function readVersion(frame: Buffer | undefined): string {
  try {
    const v = (decodeJson(frame ?? "") as { version?: unknown })?.version;
    return typeof v === "string" ? v.slice(0, 64) : "unknown";
  } catch {
    return "unknown";
  }
}
