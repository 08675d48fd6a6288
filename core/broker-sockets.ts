/**
 * The seam under the balancer: its sockets only move frames, the `Balancer` (balancer/)
 * decides everything. ZeroMQ implements it in `transports/zeromq/broker.ts`, the in-process
 * network in `transports/memory/`, so every test of the memory transport runs the real broker.
 * Peer and server ids are opaque strings.
 */

export interface BrokerHandlers {
  /** A frame from a client: `route` is the client's first frame ("B" broker, "S" service). */
  onClient(peer: string, route: string, frame: Buffer, parts: number): void;
  /** A message from a server: all its frames (the first is a `BrokerCommand`). */
  onWorker(worker: string, parts: Buffer[]): void;
  /** A message to a server could not be sent (it is gone). */
  onWorkerUnreachable(worker: string, parts: unknown[]): void;
  /** Decides whether a subscription may be made. */
  acceptTopic(topic: Buffer): boolean;
  /** Called for each refused subscription. */
  onRefusedTopic?(topic: Buffer): void;
  /** A client connection came or went (sockets that can tell: ZMQ_ROUTER_NOTIFY). */
  onClientConnection?(peer: string): void;
  /** Each publication a server made, as it passes (for deliveries over the request connection). */
  onPublication?(topic: Buffer, frame: Buffer): void;
}

export interface BrokerSockets {
  /** Queues a reply frame to a client connection. */
  sendClient(peer: string, frame: Uint8Array): void;
  /**
   * Sends a live delivery to one client connection as [topic, frame], beside its replies
   * (core/protocol/broker.ts, LINK_DELIVERIES). Sockets without it publish only to subscribers.
   */
  sendDelivery?(peer: string, topic: Buffer, frame: Uint8Array): void;
  /** Tells the servers that a topic is (no longer) wanted here: one call per subscription, counted. */
  subscribeUpstream?(topic: Buffer, on: boolean): void;
  /** Queues a message to a server. */
  sendWorker(worker: string, parts: Array<string | Buffer | Uint8Array>): void;
  close(): void;
}
