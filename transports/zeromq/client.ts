import { Dealer, Subscriber } from "zeromq";
import { ClientLinkBase } from "../../core/client-link-base.js";
import { readFairly } from "../../core/fair-loop.js";
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

/** Client side of the ZeroMQ transport: a DEALER for requests, a SUB for live deliveries. */
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
    this.dealer.events.on("connect", () => this.emit("connected"));
    this.dealer.events.on("disconnect", () => this.emit("disconnected"));
    this.dealer.events.on("connect:retry", () => this.emit("refused"));
    this.dealer.connect(endpoint);
    void this.readReplies();
  }

  send(frame: Uint8Array, route: Route): void {
    this.outbound.push([ROUTE_FRAME[route], frame]);
  }

  openDeliveries(pubPort: number, pubHost: string | null): void {
    if (this.sub || this.closed) return;
    const host = pubHost ?? parseTcpEndpoint(this.endpoint).host;
    this.sub = new Subscriber({ ...COMMON_SOCKET_OPTIONS, ...this.security, receiveHighWaterMark: 100_000 });
    for (const topic of this.topics) this.sub.subscribe(topic);
    this.sub.connect(`tcp://${host}:${pubPort}`);
    void this.readDeliveries(this.sub);
  }

  subscribe(topic: string): void {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    this.sub?.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.topics.delete(topic)) return;
    this.sub?.unsubscribe(topic);
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
      for await (const parts of this.dealer) {
        // A reply is one frame; anything else is not from a zmqchat balancer and is ignored.
        if (parts.length === 1) this.replyHandler(parts[0]!);
      }
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
