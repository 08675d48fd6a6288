import type { BrokerHandlers, BrokerSockets } from "../../core/broker-sockets.js";
import { BrokerWorker, type WorkerSocketHandlers, type WorkerSockets } from "../../core/broker-worker.js";
import { ClientLinkBase } from "../../core/client-link-base.js";
import { HEARTBEAT_INTERVAL_MS, SUBSCRIBED_FRAME } from "../../core/protocol/broker.js";
import { MAX_FRAME_BYTES } from "../../core/protocol/limits.js";
import type { ClientTransport, Route, WorkerTransport } from "../../core/transport.js";

const ROUTE_FRAME: Record<Route, string> = { broker: "B", service: "S" };

/**
 * An in-process network: what ZeroMQ's sockets do for the balancer and its servers, done in
 * memory. It only moves frames; the broker's rules (dispatch, heartbeats, tickets, rate limits,
 * the topic filter) are the real `Balancer`'s, run over `brokerSockets` (see
 * test/helpers/memory-broker.ts), and a server's side of the protocol is the real `BrokerWorker`'s.
 * Every hop is asynchronous, as on a socket; frames over the size limit are dropped, as
 * ZMQ_MAXMSGSIZE drops them. Made per test: no module state.
 */
export class MemoryHub {
  private readonly clients = new Map<string, MemoryClientLink>();
  private readonly workers = new Map<string, MemoryWorkerSockets>();
  /** Accepted subscriptions: topic → client links. */
  private readonly subscribers = new Map<string, Set<MemoryClientLink>>();
  private broker: BrokerHandlers | null = null;
  private peers = 0;
  private servers = 0;

  constructor(private readonly heartbeatMs = HEARTBEAT_INTERVAL_MS) {}

  /** The broker's side of the network; `Balancer.over` calls this once with its handlers. */
  brokerSockets(handlers: BrokerHandlers): BrokerSockets {
    this.broker = handlers;
    return {
      sendClient: (peer, frame) => {
        const link = this.clients.get(peer);
        const copy = Buffer.from(frame);
        if (link) later(() => link.deliverReply(copy));
      },
      sendWorker: (worker, parts) => {
        const link = this.workers.get(worker);
        const copy = parts.map((p) => Buffer.from(p));
        if (!link || link.closed) {
          later(() => this.broker?.onWorkerUnreachable(worker, copy));
          return;
        }
        later(() => link.fromBroker(copy));
      },
      close: () => {
        this.broker = null;
      },
    };
  }

  clientTransport(): ClientTransport {
    return {
      connect: (endpoint) => {
        const link = new MemoryClientLink(this, endpoint, `c${++this.peers}`);
        this.clients.set(link.peer, link);
        return link;
      },
    };
  }

  workerTransport(): WorkerTransport {
    return {
      attach: async (_endpoints, serverId) => {
        const id = `${serverId}#${++this.servers}`;
        return new BrokerWorker(
          (handlers) => {
            const sockets = new MemoryWorkerSockets(this, id, handlers);
            this.workers.set(id, sockets);
            return sockets;
          },
          { version: "memory", heartbeatMs: this.heartbeatMs, keepAlive: false },
        );
      },
    };
  }

  /** @internal */
  fromClient(peer: string, frame: Uint8Array, route: Route): void {
    if (frame.byteLength > MAX_FRAME_BYTES) return;
    const copy = Buffer.from(frame);
    later(() => this.broker?.onClient(peer, ROUTE_FRAME[route], copy, 2));
  }

  /** @internal */
  fromWorker(worker: string, parts: Array<string | Uint8Array>): void {
    const copy = parts.map((p) => Buffer.from(p));
    if (copy.some((p) => p.byteLength > MAX_FRAME_BYTES)) return;
    later(() => this.broker?.onWorker(worker, copy));
  }

  /** @internal */
  publish(topic: string, frame: Uint8Array | string): void {
    const subs = this.subscribers.get(topic);
    if (!subs) return;
    const copy = Buffer.from(frame);
    for (const s of subs) later(() => s.deliverPublication(topic, copy));
  }

  /**
   * Subscriptions wait here instead of taking effect until the function returned is called (a
   * test's slow subscription: a SUB socket still connecting, a balancer busy).
   */
  holdSubscriptions(): () => void {
    const held: Array<() => void> = [];
    this.held = held;
    return () => {
      if (this.held === held) this.held = null;
      for (const apply of held) apply();
    };
  }

  private held: Array<() => void> | null = null;

  /** @internal A subscription passes the broker's topic filter, as the XPUB in manual mode asks it. */
  subscribe(link: MemoryClientLink, topic: string, on: boolean): void {
    if (this.held) {
      this.held.push(() => this.subscribe(link, topic, on));
      return;
    }
    if (!on) {
      this.subscribers.get(topic)?.delete(link);
      return;
    }
    const handlers = this.broker;
    if (!handlers) return;
    const bytes = Buffer.from(topic, "latin1");
    if (!handlers.acceptTopic(bytes)) {
      handlers.onRefusedTopic?.(bytes);
      return;
    }
    let subs = this.subscribers.get(topic);
    if (!subs) {
      subs = new Set();
      this.subscribers.set(topic, subs);
    }
    subs.add(link);
    // As the ZeroMQ broker: every subscriber of the topic hears that the subscription is in place.
    this.publish(topic, SUBSCRIBED_FRAME);
  }

  /** @internal */
  removeClient(link: MemoryClientLink): void {
    this.clients.delete(link.peer);
    for (const subs of this.subscribers.values()) subs.delete(link);
  }

  /** @internal */
  removeWorker(link: MemoryWorkerSockets): void {
    this.workers.delete(link.id);
  }
}

class MemoryClientLink extends ClientLinkBase {
  private readonly topics = new Set<string>();
  private open = false;
  private closed = false;

  constructor(
    private readonly hub: MemoryHub,
    readonly endpoint: string,
    readonly peer: string,
  ) {
    super();
    later(() => this.emit("connected"));
  }

  send(frame: Uint8Array, route: Route): void {
    if (!this.closed) this.hub.fromClient(this.peer, frame, route);
  }
  openDeliveries(): void {
    this.open = true;
    for (const t of this.topics) this.hub.subscribe(this, t, true);
  }
  subscribe(topic: string): void {
    this.topics.add(topic);
    if (this.open) this.hub.subscribe(this, topic, true);
  }
  unsubscribe(topic: string): void {
    this.topics.delete(topic);
    this.hub.subscribe(this, topic, false);
  }
  async close(): Promise<void> {
    this.closed = true;
    this.hub.removeClient(this);
    this.emit("closed");
  }
  deliverReply(frame: Buffer): void {
    if (!this.closed) this.replyHandler(frame);
  }
  deliverPublication(topic: string, frame: Buffer): void {
    if (!this.closed) this.deliveryHandler(topic, frame);
  }
}

/**
 * A server's sockets on the in-process network: one connection to the hub's broker and a
 * publisher into the hub. The protocol on them (READY, heartbeats, REQ/REP, BYE) is
 * `BrokerWorker`'s, the same as over ZeroMQ.
 */
class MemoryWorkerSockets implements WorkerSockets {
  readonly brokers = 1;
  closed = false;

  constructor(
    private readonly hub: MemoryHub,
    readonly id: string,
    private readonly handlers: WorkerSocketHandlers,
  ) {}

  /** @internal */
  fromBroker(parts: Buffer[]): void {
    if (!this.closed) this.handlers.onBroker(0, parts);
  }
  sendBroker(_broker: number, parts: Array<string | Uint8Array>): void {
    if (!this.closed) this.hub.fromWorker(this.id, parts);
  }
  reconnect(): void {
    // An in-process connection has nothing to renew: the protocol announces READY again.
  }
  connectPublisher(): void {
    // Publications go straight into the hub: a WELCOME's port has no meaning here.
  }
  publish(topic: string, frame: Uint8Array | string): void {
    this.hub.publish(topic, frame);
  }
  async close(): Promise<void> {
    this.closed = true;
    this.hub.removeWorker(this);
  }
}

function later(fn: () => void): void {
  setImmediate(fn);
}
