/**
 * The bytes-only transport seam (after nats.js): transports move frames; all framing,
 * parsing and protocol logic lives in core. Peer ids are opaque strings.
 */

/** Where a client frame goes: the broker answers `hello`/`ping` itself; everything else goes to a server. */
export type Route = "broker" | "service";

/** `refused`: a connection attempt failed (nothing listens there now); the link keeps retrying. */
export type LinkState = "connecting" | "connected" | "disconnected" | "refused" | "closed";

export interface LinkStateEvent {
  state: LinkState;
  endpoint: string;
}

/** A client's link to one balancer endpoint. */
export interface ClientLink {
  readonly endpoint: string;
  /** Queues one request frame. Never blocks; frames to an unreachable peer are queued up to a bound, then dropped. */
  send(frame: Uint8Array, route: Route): void;
  /** Called with every reply frame. */
  onReply(handler: (frame: Buffer) => void): void;
  /** Called with every live delivery on a subscribed topic. */
  onDelivery(handler: (topic: string, frame: Buffer) => void): void;
  onState(handler: (event: LinkStateEvent) => void): void;
  /**
   * Tells the link where live deliveries are published (learned from the broker's `hello`);
   * `deliveries` "link": they come over this connection instead, on subscriptions it sends
   * (core/protocol/broker.ts, LINK_DELIVERIES).
   */
  openDeliveries(pubPort: number, pubHost: string | null, deliveries?: string): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  close(): Promise<void>;
}

/** Opens client links for the endpoints of one URL scheme. */
export interface ClientTransport {
  connect(endpoint: string): ClientLink;
}

/** A server's link to the dispatching side (the balancer, or an in-process hub). */
export interface WorkerLink {
  /** Called with each request: `peer` identifies the client connection for the reply. */
  onRequest(handler: (peer: string, frame: Buffer) => void): void;
  reply(peer: string, frame: Uint8Array): void;
  /** Publishes a live delivery on a topic. Best effort: the mailbox is the truth. */
  publish(topic: string, frame: Uint8Array | string): void;
  /**
   * Whether any balancer holds a subscription to `topic`: false only when the link knows none
   * does (the publisher may skip building and handing over a frame nobody will get); undefined
   * when it cannot tell.
   */
  subscribed?(topic: string): boolean | undefined;
  /** Stops taking new requests (tells the broker it leaves) without closing. */
  drain(): void;
  close(): Promise<void>;
}

export interface WorkerTransport {
  /** Connects a server to one or more brokers (`endpoints`), under a readable server id. */
  attach(endpoints: string[], serverId: string): Promise<WorkerLink>;
}
