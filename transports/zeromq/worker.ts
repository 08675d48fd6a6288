import { randomBytes } from "node:crypto";
import { Dealer, XPublisher } from "zeromq";
import {
  BrokerWorker,
  type PublishTarget,
  type WorkerSocketHandlers,
  type WorkerSockets,
} from "../../core/broker-worker.js";
import { TOPIC_PATTERN } from "../../core/protocol/limits.js";
import type { WorkerLink, WorkerTransport } from "../../core/transport.js";
import { type CurveKeys, curveClientOptions } from "./curve.js";
import { ImmediateSender } from "./immediate-sender.js";
import { COMMON_SOCKET_OPTIONS, parseTcpEndpoint, QUEUE_BYTES, QUEUE_FRAMES } from "./options.js";
import { Outbound } from "./outbound.js";

export interface ZeromqWorkerOptions {
  version: string;
  /**
   * CurveZMQ: the balancers' public key (pinned), or one per endpoint in the order of the
   * endpoints when each balancer has a key pair of its own; and this server's key pair.
   */
  curve?: { serverKey: string | string[]; keys: CurveKeys };
  heartbeatMs?: number;
  liveness?: number;
}

/**
 * Server side of the ZeroMQ transport: one DEALER per balancer, one PUB, under the broker
 * protocol of `core/broker-worker.ts`.
 */
export class ZeromqWorkerTransport implements WorkerTransport {
  constructor(private readonly options: ZeromqWorkerOptions) {}

  async attach(endpoints: string[], serverId: string): Promise<WorkerLink> {
    for (const e of endpoints) parseTcpEndpoint(e);
    const { version, heartbeatMs, liveness } = this.options;
    return new BrokerWorker(
      (handlers) => new ZeromqWorkerSockets(endpoints, serverId, this.options, handlers),
      {
        version,
        heartbeatMs,
        liveness,
      },
    );
  }
}

/** One DEALER to one balancer; `open` replaces it under the same routing id. */
class BrokerConnection {
  dealer!: Dealer;
  outbound!: Outbound;
  private closed = false;
  private readonly routingId: string;

  constructor(
    readonly endpoint: string,
    serverId: string,
    readonly security: { curveServerKey?: string },
    private readonly onMessage: (parts: Buffer[]) => void,
  ) {
    this.routingId = `${serverId}-${randomBytes(4).toString("hex")}`;
    this.open();
  }

  open(): void {
    this.dealer?.close();
    this.outbound?.close();
    this.dealer = new Dealer({
      ...COMMON_SOCKET_OPTIONS,
      ...this.security,
      routingId: this.routingId,
      sendHighWaterMark: QUEUE_FRAMES,
      receiveHighWaterMark: QUEUE_FRAMES,
    });
    // Room for a reply to every request a server takes at once (server.ts) plus heartbeats.
    this.outbound = new Outbound(this.dealer, 2 * QUEUE_FRAMES, undefined, QUEUE_BYTES);
    this.dealer.connect(this.endpoint);
    void this.read(this.dealer);
  }

  close(): void {
    this.closed = true;
    this.outbound.close();
    this.dealer.close();
  }

  private async read(dealer: Dealer): Promise<void> {
    try {
      for await (const parts of dealer) this.onMessage(parts);
    } catch (err) {
      if (!this.closed && !dealer.closed) throw err;
    }
  }
}

/**
 * The topics the balancers subscribed to, as the server's XPUB reports them. An XPUB that is not
 * verbose passes a topic's first subscription and, once no connection holds it any longer, one
 * unsubscription: so the set says "no" exactly when libzmq's own filter would drop a publication
 * on the topic (test/integration/zeromq-subscribed.test.ts, real balancers). A balancer that went
 * away keeps its subscriptions here as in libzmq, while the XPUB reconnects to it. A subscription
 * that is not a whole topic (a prefix; balancers forward only whole topics) makes every topic
 * count as subscribed while it lasts.
 */
export class SubscribedTopics {
  private readonly topics = new Set<string>();
  /** Subscriptions held that are not a whole topic. */
  private readonly prefixes = new Set<string>();

  /** One message of the XPUB: 1 or 0, then the topic. */
  note(msg: Uint8Array): void {
    if (msg.length === 0 || (msg[0] !== 0 && msg[0] !== 1)) return;
    const topic = Buffer.from(msg.buffer, msg.byteOffset + 1, msg.length - 1).toString("latin1");
    const into = TOPIC_PATTERN.test(topic) ? this.topics : this.prefixes;
    if (msg[0] === 1) into.add(topic);
    else into.delete(topic);
  }

  has(topic: string): boolean {
    return this.prefixes.size > 0 || this.topics.has(topic);
  }
}

/** The frames of the broker protocol over ZeroMQ sockets: they move bytes, `BrokerWorker` decides. */
class ZeromqWorkerSockets implements WorkerSockets {
  private readonly connections: BrokerConnection[];
  /** An XPUB (a PUB that reports its subscriptions) towards every balancer's XSUB. */
  private readonly pub: XPublisher;
  private readonly pubOut: ImmediateSender;
  private readonly pubConnected = new Set<string>();
  private readonly subscriptions = new SubscribedTopics();
  private closed = false;

  constructor(
    endpoints: string[],
    serverId: string,
    options: ZeromqWorkerOptions,
    handlers: WorkerSocketHandlers,
  ) {
    const curve = options.curve;
    const security = (i: number) => {
      if (!curve) return {};
      const key = Array.isArray(curve.serverKey) ? curve.serverKey[i] : curve.serverKey;
      if (!key) throw new Error(`no CURVE key for balancer ${endpoints[i]}`);
      return curveClientOptions(key, curve.keys);
    };
    this.pub = new XPublisher({ ...COMMON_SOCKET_OPTIONS, ...security(0), sendHighWaterMark: QUEUE_FRAMES });
    void this.readSubscriptions();
    // A PUB never waits: libzmq drops at its high-water mark, JavaScript holds nothing.
    this.pubOut = new ImmediateSender(this.pub);
    this.connections = endpoints.map(
      (e, i) => new BrokerConnection(e, serverId, security(i), (parts) => handlers.onBroker(i, parts)),
    );
  }

  get brokers(): number {
    return this.connections.length;
  }

  sendBroker(broker: number, parts: Array<string | Uint8Array>): void {
    this.connections[broker]?.outbound.push(parts);
  }

  reconnect(broker: number): void {
    this.connections[broker]?.open();
  }

  connectPublisher(broker: number, target: PublishTarget): void {
    const conn = this.connections[broker];
    if (!conn) return;
    const endpoint = `tcp://${target.host ?? parseTcpEndpoint(conn.endpoint).host}:${target.port}`;
    if (this.pubConnected.has(endpoint)) return;
    this.pubConnected.add(endpoint);
    // libzmq takes the CURVE server key at connect time: each balancer's publication link pins its own.
    if (conn.security.curveServerKey) this.pub.curveServerKey = conn.security.curveServerKey;
    this.pub.connect(endpoint);
  }

  publish(topic: string, frame: Uint8Array | string): void {
    this.pubOut.push([topic, frame]);
  }

  subscribed(topic: string): boolean {
    return this.subscriptions.has(topic);
  }

  private async readSubscriptions(): Promise<void> {
    try {
      for await (const [msg] of this.pub) if (msg) this.subscriptions.note(msg);
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    // Let queued replies and publications leave before the sockets go.
    const deadline = Date.now() + 2000;
    while (
      Date.now() < deadline &&
      (this.pubOut.pending > 0 || this.connections.some((c) => c.outbound.pending > 0))
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    // Replies handed to libzmq but not yet on the wire get a moment to leave (linger).
    for (const c of this.connections) {
      c.dealer.linger = 500;
      c.close();
    }
    this.pubOut.close();
    this.pub.linger = 500;
    this.pub.close();
  }
}
