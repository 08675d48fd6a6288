import { Router, XPublisher, XSubscriber } from "zeromq";
import type { BrokerHandlers, BrokerSockets } from "../../core/broker-sockets.js";
import { readFairly } from "../../core/fair-loop.js";
import { SUBSCRIBED_FRAME } from "../../core/protocol/broker.js";
import { type CurveKeys, curveServerOptions } from "./curve.js";
import { ImmediateSender } from "./immediate-sender.js";
import { COMMON_SOCKET_OPTIONS, QUEUE_BYTES, QUEUE_FRAMES } from "./options.js";
import { Outbound } from "./outbound.js";

/** ZMQ_SUBSCRIBE / ZMQ_UNSUBSCRIBE, applied by an XPUB in manual mode to the peer that last sent one. */
const ZMQ_SUBSCRIBE = 6;
const ZMQ_UNSUBSCRIBE = 7;

/** The XSUB's subscription and unsubscription messages: a flag byte, then the topic. */
const SUBSCRIBE_PREFIX = Buffer.from([1]);
const UNSUBSCRIBE_PREFIX = Buffer.from([0]);

/** Published on a topic once the balancer took a subscription to it (core/protocol/broker.ts). */
const SUBSCRIBED = Buffer.from(SUBSCRIBED_FRAME);

/** ZMQ_IN_BATCH_SIZE / ZMQ_OUT_BATCH_SIZE (libzmq 4.3 draft options; 8,192 bytes by default). */
const ZMQ_IN_BATCH_SIZE = 101;
const ZMQ_OUT_BATCH_SIZE = 102;
/**
 * I/O batch of the client-facing sockets, per connection and direction. Every idle client holds
 * one on the ROUTER and one on the XPUB; at libzmq's 8 KiB they were about 18 KiB of the
 * balancer's memory per client (bench scale: raw ROUTER + XPUB 58 KiB per client, 40 KiB with
 * 1 KiB batches). Frames larger than a batch are read and written without the buffer, so only
 * runs of small frames take more system calls.
 */
const CLIENT_BATCH_BYTES = 1024;

/** An XPUB in manual mode: a subscription takes effect only when the balancer accepts it. */
class FilteringXPublisher extends XPublisher {
  accept(topic: Buffer, subscribe: boolean): void {
    this.setStringOption(subscribe ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic);
  }

  batch(bytes: number): void {
    this.setInt32Option(ZMQ_IN_BATCH_SIZE, bytes);
    this.setInt32Option(ZMQ_OUT_BATCH_SIZE, bytes);
  }
}

/**
 * ZMTP heartbeats on client connections (ZMQ_HEARTBEAT_IVL / ZMQ_HEARTBEAT_TIMEOUT; libzmq answers
 * them on the client's side by itself): a connection whose peer stopped answering (a machine
 * gone without closing its TCP connection, a NAT that forgot it) is closed after the timeout,
 * which drops its subscriptions (ROUTER_NOTIFY) and its libzmq memory; without them it would be
 * kept until TCP gave up, for an idle one never. The pings also keep a NAT's mapping alive.
 */
export const CLIENT_HEARTBEAT = { intervalMs: 15_000, timeoutMs: 45_000 } as const;

/** ZMQ_ROUTER_NOTIFY (libzmq 4.3 draft option): an empty message from a peer as it connects and as it goes. */
const ZMQ_ROUTER_NOTIFY = 97;
const ZMQ_NOTIFY_CONNECT_AND_DISCONNECT = 3;

/** The clients' ROUTER, with small I/O batches, telling when a connection comes and goes. */
class ClientRouter extends Router {
  batch(bytes: number): void {
    this.setInt32Option(ZMQ_IN_BATCH_SIZE, bytes);
    this.setInt32Option(ZMQ_OUT_BATCH_SIZE, bytes);
  }

  notifyPeers(): void {
    this.setInt32Option(ZMQ_ROUTER_NOTIFY, ZMQ_NOTIFY_CONNECT_AND_DISCONNECT);
  }
}

export interface BrokerEndpoints {
  /** Where clients connect (ROUTER). */
  frontend: string;
  /** Where servers connect (ROUTER). */
  backend: string;
  /** Where servers publish live deliveries (XSUB). */
  pubIn: string;
  /**
   * Where clients from before deliveries over the request connection subscribe (XPUB); "" is
   * not bound (the balancer then serves only clients that take deliveries on their DEALER).
   */
  pubOut: string;
}

/** ZAP domains: what clients connect to, and what servers connect to. */
export const ZAP_DOMAIN = { clients: "zmqchat-clients", servers: "zmqchat-servers" } as const;

/** The balancer's four sockets; routing ids leave this file only as hex / text strings. */
export type { BrokerHandlers };

export class ZeromqBrokerSockets implements BrokerSockets {
  private readonly frontend: Router;
  private readonly backend: Router;
  private readonly xsub: XSubscriber;
  private readonly xpub: FilteringXPublisher;
  /** Replies and deliveries to clients: a ROUTER without ZMQ_ROUTER_MANDATORY drops at a peer's high-water mark, never waits. */
  private readonly toClients: ImmediateSender;
  private readonly toWorkers: Outbound;
  private readonly toSubscribers: ImmediateSender;
  /** Subscriptions forwarded to the servers' PUB sockets (see readSubscriptions). */
  private readonly upstream: ImmediateSender;
  private closed = false;
  private xpubBound = true;
  bound: BrokerEndpoints | null = null;

  /** With `curve`, every socket is a CURVE server; a ZAP handler in this process decides who gets in. */
  constructor(
    private readonly handlers: BrokerHandlers,
    options: { curve?: CurveKeys; clientHeartbeat?: { intervalMs: number; timeoutMs: number } } = {},
  ) {
    const heartbeat = options.clientHeartbeat ?? CLIENT_HEARTBEAT;
    const clients = options.curve ? curveServerOptions(options.curve, ZAP_DOMAIN.clients) : {};
    const servers = options.curve ? curveServerOptions(options.curve, ZAP_DOMAIN.servers) : {};
    const frontend = new ClientRouter({
      ...COMMON_SOCKET_OPTIONS,
      ...clients,
      heartbeatInterval: heartbeat.intervalMs,
      heartbeatTimeout: heartbeat.timeoutMs,
      sendHighWaterMark: QUEUE_FRAMES,
      receiveHighWaterMark: QUEUE_FRAMES,
    });
    frontend.batch(CLIENT_BATCH_BYTES);
    frontend.notifyPeers();
    this.frontend = frontend;
    this.backend = new Router({
      ...COMMON_SOCKET_OPTIONS,
      ...servers,
      mandatory: true,
      sendHighWaterMark: QUEUE_FRAMES,
      receiveHighWaterMark: QUEUE_FRAMES,
    });
    // Its sends are subscriptions going upstream, one per subscribed topic: never dropped (no
    // high-water mark), or a server would filter out a subscriber's deliveries for good.
    this.xsub = new XSubscriber({
      ...COMMON_SOCKET_OPTIONS,
      ...servers,
      receiveHighWaterMark: QUEUE_FRAMES,
      sendHighWaterMark: 0,
    });
    this.upstream = new ImmediateSender(this.xsub);
    this.xpub = new FilteringXPublisher({
      ...COMMON_SOCKET_OPTIONS,
      ...clients,
      heartbeatInterval: heartbeat.intervalMs,
      heartbeatTimeout: heartbeat.timeoutMs,
      sendHighWaterMark: QUEUE_FRAMES,
    });
    this.xpub.batch(CLIENT_BATCH_BYTES);
    this.xpub.manual = true;
    this.xpub.verbosity = "allSubsUnsubs";
    this.toClients = new ImmediateSender(this.frontend);
    this.toWorkers = new Outbound(
      this.backend,
      QUEUE_FRAMES,
      (err, parts) => {
        if ((err as { code?: string }).code === "EHOSTUNREACH") {
          handlers.onWorkerUnreachable(String(parts[0]), parts.slice(1));
        }
      },
      QUEUE_BYTES,
    );
    // An XPUB without NODROP never waits: libzmq drops at its high-water mark, JavaScript holds nothing.
    this.toSubscribers = new ImmediateSender(this.xpub);
  }

  /** Binds all four sockets and returns the endpoints the OS gave (ports may be 0 to pick). */
  async bind(endpoints: BrokerEndpoints): Promise<BrokerEndpoints> {
    await this.frontend.bind(endpoints.frontend);
    await this.backend.bind(endpoints.backend);
    await this.xsub.bind(endpoints.pubIn);
    if (endpoints.pubOut) await this.xpub.bind(endpoints.pubOut);
    else this.xpubBound = false;
    this.bound = {
      frontend: this.frontend.lastEndpoint!,
      backend: this.backend.lastEndpoint!,
      pubIn: this.xsub.lastEndpoint!,
      pubOut: endpoints.pubOut ? this.xpub.lastEndpoint! : "",
    };
    void this.readFrontend();
    void this.readBackend();
    void this.readPublications();
    void this.readSubscriptions();
    return this.bound;
  }

  sendClient(peer: string, frame: Uint8Array): void {
    this.toClients.push([Buffer.from(peer, "hex"), frame]);
  }

  sendDelivery(peer: string, topic: Buffer, frame: Uint8Array): void {
    this.toClients.push([Buffer.from(peer, "hex"), topic, frame]);
  }

  subscribeUpstream(topic: Buffer, on: boolean): void {
    this.upstream.push([Buffer.concat([on ? SUBSCRIBE_PREFIX : UNSUBSCRIBE_PREFIX, topic])]);
  }

  sendWorker(worker: string, parts: Array<string | Buffer | Uint8Array>): void {
    this.toWorkers.push([worker, ...parts]);
  }

  close(): void {
    this.closed = true;
    for (const o of [this.toClients, this.toWorkers, this.toSubscribers, this.upstream]) o.close();
    for (const s of [this.frontend, this.backend, this.xsub, this.xpub]) s.close();
  }

  private async readFrontend(): Promise<void> {
    await this.guard(async () => {
      let n = 0;
      for await (const parts of this.frontend) {
        // A flooding client keeps this loop supplied, and receives that are ready resolve
        // without leaving the microtask queue: yield now and then so replies, heartbeats and
        // publications on the other sockets are not starved by one client's backlog.
        if (++n % 32 === 0) await new Promise((r) => setImmediate(r));
        const [id, route, frame] = parts;
        // ZMQ_ROUTER_NOTIFY: the connection came or went (a client sending one empty frame looks
        // the same, and only ends its own subscriptions).
        if (parts.length === 2 && route!.length === 0) {
          this.handlers.onClientConnection?.(id!.toString("hex"));
          continue;
        }
        this.handlers.onClient(
          id!.toString("hex"),
          route?.toString() ?? "",
          frame ?? Buffer.alloc(0),
          parts.length - 1,
        );
      }
    });
  }

  private async readBackend(): Promise<void> {
    await this.guard(async () => {
      for await (const [id, ...rest] of this.backend) {
        this.handlers.onWorker(id!.toString("latin1"), rest);
      }
    });
  }

  /**
   * Forwards publications. A zeromq.js receive whose timeout is not 0 first asks libzmq whether
   * a message is there (a ZMQ_EVENTS query, which polls the socket's mailbox: a poll and a getpid
   * system call); strace of the balancer in the 1:1 bench counted about one of each per
   * publication. So while publications are there they are taken with receives that never wait
   * (timeout 0, no query: libzmq looks at its mailbox only every 100 messages or when empty),
   * and only once none is left does one receive wait for the next. Receives that never wait
   * resolve at once, so the loop yields now and then, as readFrontend does.
   */
  private async readPublications(): Promise<void> {
    await this.guard(() =>
      readFairly(
        this.publications(),
        (parts) => {
          if (parts.length !== 2) return;
          if (this.xpubBound) this.toSubscribers.push(parts);
          this.handlers.onPublication?.(parts[0]!, parts[1]!);
        },
        64,
      ),
    );
  }

  /** The XSUB's publications, each taken without a wait while there are some (see readPublications). */
  private async *publications(): AsyncGenerator<Buffer[]> {
    this.xsub.receiveTimeout = 0;
    while (!this.closed) {
      try {
        yield await this.xsub.receive();
      } catch (err) {
        if ((err as { code?: string }).code !== "EAGAIN" || this.closed) throw err;
        this.xsub.receiveTimeout = -1;
        const parts = await this.xsub.receive();
        this.xsub.receiveTimeout = 0;
        yield parts;
      }
    }
  }

  /**
   * Admits clients' subscriptions (full-length topics only) and forwards each admitted one, and
   * each unsubscription, to the servers' PUB sockets through the XSUB, so that a server sends only
   * what someone here subscribed to: a delivery to a device that is not connected (or on a topic
   * its client does not use, as the plain topic beside a batch topic) never leaves the server.
   * The XSUB counts: a topic two clients subscribed stays subscribed upstream until both left
   * (an XPUB in manual mode reports a leaving client's topics as unsubscriptions), and it sends
   * every subscription it holds to a server that connects (or reconnects) later. Then it tells
   * the topic's subscribers that the subscription is in place (SUBSCRIBED_FRAME): a listening
   * client syncs on it, covering what was published before.
   */
  private async readSubscriptions(): Promise<void> {
    await this.guard(async () => {
      for await (const [msg] of this.xpub) {
        if (!msg || msg.length === 0) continue;
        const kind = msg[0];
        if (kind !== 0 && kind !== 1) continue;
        const topic = msg.subarray(1);
        if (!this.handlers.acceptTopic(topic)) {
          if (kind === 1) this.handlers.onRefusedTopic?.(topic);
          continue;
        }
        this.xpub.accept(topic, kind === 1);
        this.upstream.push([msg]);
        if (kind === 1) this.toSubscribers.push([topic, SUBSCRIBED]);
      }
    });
  }

  private async guard(loop: () => Promise<void>): Promise<void> {
    try {
      await loop();
    } catch (err) {
      if (!this.closed) throw err;
    }
  }
}
