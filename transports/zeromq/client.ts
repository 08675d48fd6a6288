import { Dealer, Subscriber } from "zeromq";
import { ClientLinkBase } from "../../core/client-link-base.js";
import { readFairly } from "../../core/fair-loop.js";
import { LINK_DELIVERIES } from "../../core/protocol/broker.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import type { ClientLink, ClientTransport, Route } from "../../core/transport.js";
import { type CurveKeys, curveClientOptions } from "./curve.js";
import { COMMON_SOCKET_OPTIONS, parseTcpEndpoint } from "./options.js";
import { Outbound } from "./outbound.js";

/** Deliveries read in a row before the event loop gets a turn (core/fair-loop.ts). */
const DELIVERY_BURST = 64;

const ROUTE_FRAME: Record<Route, Buffer> = { broker: Buffer.from("B"), service: Buffer.from("S") };

export interface ZeromqClientOptions {
  /** CurveZMQ: the balancer's public key (pinned) and this device's key pair. */
  curve?: { serverKey: string; keys: CurveKeys };
  /**
   * Without `curve`: CurveZMQ towards balancers whose key `serverKeyOf` finds for an endpoint
   * (a local stack publishes its key), with the device key pair `keys()` gives; plaintext otherwise.
   */
  discover?: { serverKeyOf(endpoint: string): string | null; keys(): CurveKeys };
}

/**
 * Client side of the ZeroMQ transport: a DEALER for requests, and live deliveries on the same
 * DEALER where the balancer offers it (LINK_DELIVERIES), else on a SUB.
 */
export class ZeromqClientTransport implements ClientTransport {
  constructor(private readonly options: ZeromqClientOptions = {}) {}

  connect(endpoint: string): ClientLink {
    const { curve, discover } = this.options;
    if (curve || !discover) return new ZeromqClientLink(endpoint, this.options);
    const serverKey = discover.serverKeyOf(endpoint);
    return new ZeromqClientLink(endpoint, serverKey ? { curve: { serverKey, keys: discover.keys() } } : {});
  }
}

class ZeromqClientLink extends ClientLinkBase {
  private readonly dealer: Dealer;
  private readonly outbound: Outbound;
  private readonly security: object;
  private sub: Subscriber | null = null;
  /** Deliveries come on the DEALER: subscriptions are requests to the balancer. */
  private overLink = false;
  private readonly topics = new Set<string>();
  private closed = false;

  constructor(
    readonly endpoint: string,
    options: ZeromqClientOptions,
  ) {
    super();
    parseTcpEndpoint(endpoint);
    this.security = options.curve ? curveClientOptions(options.curve.serverKey, options.curve.keys) : {};
    this.dealer = new Dealer({
      ...COMMON_SOCKET_OPTIONS,
      ...this.security,
      sendHighWaterMark: 10_000,
      receiveHighWaterMark: 10_000,
    });
    this.outbound = new Outbound(this.dealer, 10_000);
    this.dealer.events.on("connect", () => {
      // A new connection is a new peer to the balancer, which dropped the old one's topics.
      if (this.overLink && this.topics.size > 0) this.sendTopics("subscribe", [...this.topics]);
      this.emit("connected");
    });
    this.dealer.events.on("disconnect", () => this.emit("disconnected"));
    this.dealer.events.on("connect:retry", () => this.emit("refused"));
    this.dealer.connect(endpoint);
    void this.readReplies();
  }

  send(frame: Uint8Array, route: Route): void {
    this.outbound.push([ROUTE_FRAME[route], frame]);
  }

  openDeliveries(pubPort: number, pubHost: string | null, deliveries?: string): void {
    if (this.sub || this.overLink || this.closed) return;
    if (deliveries === LINK_DELIVERIES) {
      this.overLink = true;
      if (this.topics.size > 0) this.sendTopics("subscribe", [...this.topics]);
      return;
    }
    const host = pubHost ?? parseTcpEndpoint(this.endpoint).host;
    this.sub = new Subscriber({ ...COMMON_SOCKET_OPTIONS, ...this.security, receiveHighWaterMark: 100_000 });
    for (const topic of this.topics) this.sub.subscribe(topic);
    this.sub.connect(`tcp://${host}:${pubPort}`);
    void this.readDeliveries(this.sub);
  }

  subscribe(topic: string): void {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    if (this.overLink) this.sendTopics("subscribe", [topic]);
    this.sub?.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.topics.delete(topic)) return;
    if (this.overLink) this.sendTopics("unsubscribe", [topic]);
    this.sub?.unsubscribe(topic);
  }

  /** A subscription request to the balancer (core/protocol/broker.ts, LINK_DELIVERIES). */
  private sendTopics(type: "subscribe" | "unsubscribe", topics: string[]): void {
    const frame = JSON.stringify({ v: 1, id: uuidv7(), type, body: { topics } });
    this.send(Buffer.from(frame), "broker");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.outbound.close();
    this.dealer.close();
    this.sub?.close();
    this.emit("closed");
  }

  private async readReplies(): Promise<void> {
    try {
      // Fairly: with deliveries on this socket too, a backlog must not hold off timers.
      await readFairly(
        this.dealer,
        (parts) => {
          // A reply is one frame; a delivery two (topic, frame), on topics this link subscribed
          // to over it. Anything else is not from a zmqchat balancer and is ignored.
          if (parts.length === 1) this.replyHandler(parts[0]!);
          else if (parts.length === 2 && this.overLink)
            this.deliveryHandler(parts[0]!.toString("latin1"), parts[1]!);
        },
        DELIVERY_BURST,
      );
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  private async readDeliveries(sub: Subscriber): Promise<void> {
    try {
      await readFairly(
        sub,
        (parts) => {
          if (parts.length === 2) this.deliveryHandler(parts[0]!.toString("latin1"), parts[1]!);
        },
        DELIVERY_BURST,
      );
    } catch (err) {
      if (!this.closed) throw err;
    }
  }
}
