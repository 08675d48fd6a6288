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
}

export interface BrokerSockets {
  /** Queues a reply frame to a client connection. */
  sendClient(peer: string, frame: Uint8Array): void;
  /** Queues a message to a server. */
  sendWorker(worker: string, parts: Array<string | Buffer | Uint8Array>): void;
  close(): void;
}
