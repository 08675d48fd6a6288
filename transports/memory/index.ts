import type { BrokerHandlers, BrokerSockets } from "../../core/broker-sockets.js";
import { BrokerCommand, HEARTBEAT_INTERVAL_MS } from "../../core/protocol/broker.js";
import { MAX_FRAME_BYTES } from "../../core/protocol/limits.js";
import type {
  ClientLink,
  ClientTransport,
  LinkStateEvent,
  Route,
  WorkerLink,
  WorkerTransport,
} from "../../core/transport.js";

const ROUTE_FRAME: Record<Route, string> = { broker: "B", service: "S" };

/**
 * An in-process network: what ZeroMQ's sockets do for the balancer, done in memory. It only
 * moves frames; the broker's rules (dispatch, heartbeats, tickets, rate limits, the topic
 * filter) are the real `Balancer`'s, run over `brokerSockets` (see test/helpers/memory-broker.ts).
 * Every hop is asynchronous, as on a socket; frames over the size limit are dropped, as
 * ZMQ_MAXMSGSIZE drops them. Made per test: no module state.
 */
export class MemoryHub {
  private readonly clients = new Map<string, MemoryClientLink>();
  private readonly workers = new Map<string, MemoryWorkerLink>();
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
        const link = new MemoryWorkerLink(this, `${serverId}#${++this.servers}`, this.heartbeatMs);
        this.workers.set(link.id, link);
        return link;
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
  publish(topic: string, frame: Uint8Array): void {
    const subs = this.subscribers.get(topic);
    if (!subs) return;
    const copy = Buffer.from(frame);
    for (const s of subs) later(() => s.deliverPublication(topic, copy));
  }

  /** @internal A subscription passes the broker's topic filter, as the XPUB in manual mode asks it. */
  subscribe(link: MemoryClientLink, topic: string, on: boolean): void {
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
  }

  /** @internal */
  removeClient(link: MemoryClientLink): void {
    this.clients.delete(link.peer);
    for (const subs of this.subscribers.values()) subs.delete(link);
  }

  /** @internal */
  removeWorker(link: MemoryWorkerLink): void {
    this.workers.delete(link.id);
  }
}

class MemoryClientLink implements ClientLink {
  private replyHandler: (frame: Buffer) => void = () => {};
  private deliveryHandler: (topic: string, frame: Buffer) => void = () => {};
  private readonly stateHandlers: Array<(e: LinkStateEvent) => void> = [];
  private readonly topics = new Set<string>();
  private open = false;
  private closed = false;

  constructor(
    private readonly hub: MemoryHub,
    readonly endpoint: string,
    readonly peer: string,
  ) {
    later(() => this.emit("connected"));
  }

  send(frame: Uint8Array, route: Route): void {
    if (!this.closed) this.hub.fromClient(this.peer, frame, route);
  }
  onReply(handler: (frame: Buffer) => void): void {
    this.replyHandler = handler;
  }
  onDelivery(handler: (topic: string, frame: Buffer) => void): void {
    this.deliveryHandler = handler;
  }
  onState(handler: (event: LinkStateEvent) => void): void {
    this.stateHandlers.push(handler);
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
  private emit(state: LinkStateEvent["state"]): void {
    for (const h of this.stateHandlers) h({ state, endpoint: this.endpoint });
  }
}

/** A server's link: speaks the broker protocol (READY, heartbeats, REQ/REP, BYE) as the ZeroMQ worker does. */
class MemoryWorkerLink implements WorkerLink {
  private handler: (peer: string, frame: Buffer) => void = () => {};
  private readonly timer: NodeJS.Timeout;
  private draining = false;
  closed = false;

  constructor(
    private readonly hub: MemoryHub,
    readonly id: string,
    heartbeatMs: number,
  ) {
    hub.fromWorker(id, [BrokerCommand.ready, JSON.stringify({ version: "memory" })]);
    this.timer = setInterval(
      () => hub.fromWorker(id, [this.draining ? BrokerCommand.bye : BrokerCommand.heartbeat]),
      heartbeatMs,
    );
    this.timer.unref();
  }

  onRequest(handler: (peer: string, frame: Buffer) => void): void {
    this.handler = handler;
  }
  /** @internal */
  fromBroker(parts: Buffer[]): void {
    if (this.closed) return;
    if (parts[0]?.toString() === BrokerCommand.request && parts.length === 3) {
      this.handler(parts[1]!.toString("latin1"), parts[2]!);
    }
    // WELCOME names a publishing port, which has no meaning here; heartbeats need no answer.
  }
  reply(peer: string, frame: Uint8Array): void {
    if (!this.closed) this.hub.fromWorker(this.id, [BrokerCommand.reply, peer, frame]);
  }
  publish(topic: string, frame: Uint8Array): void {
    this.hub.publish(topic, frame);
  }
  drain(): void {
    this.draining = true;
    this.hub.fromWorker(this.id, [BrokerCommand.bye]);
  }
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.closed = true;
    this.hub.removeWorker(this);
  }
}

function later(fn: () => void): void {
  setImmediate(fn);
}
