import { decodeJson } from "../../core/protocol/codec.js";
import { errorFrame, okFrame, requestIdOf } from "../../core/protocol/frames.js";
import { MAX_FRAME_BYTES, TOPIC_PATTERN } from "../../core/protocol/limits.js";
import type {
  ClientLink,
  ClientTransport,
  LinkStateEvent,
  Route,
  WorkerLink,
  WorkerTransport,
} from "../../core/transport.js";

/**
 * An in-process network with the balancer's behaviour: round-robin dispatch to attached
 * servers, `hello`/`ping` answered by the hub, deliveries only on full delivery topics, frames
 * over the size limit dropped. Every hop is asynchronous, as on a socket. Made per test: no
 * module state.
 */
export class MemoryHub {
  private readonly workers: MemoryWorkerLink[] = [];
  private readonly clients = new Map<string, MemoryClientLink>();
  private readonly subscribers = new Map<string, Set<MemoryClientLink>>();
  private next = 0;
  private peers = 0;

  constructor(readonly version = "memory") {}

  clientTransport(): ClientTransport {
    return { connect: (endpoint) => this.addClient(endpoint) };
  }

  workerTransport(): WorkerTransport {
    return {
      attach: async () => {
        const w = new MemoryWorkerLink(this);
        this.workers.push(w);
        return w;
      },
    };
  }

  private addClient(endpoint: string): MemoryClientLink {
    const peer = `c${++this.peers}`;
    const link = new MemoryClientLink(this, endpoint, peer);
    this.clients.set(peer, link);
    return link;
  }

  /** @internal */
  fromClient(link: MemoryClientLink, frame: Uint8Array, route: Route): void {
    if (frame.byteLength > MAX_FRAME_BYTES) return;
    const copy = Buffer.from(frame);
    if (route === "broker") {
      later(() => link.deliverReply(this.answer(copy)));
      return;
    }
    const live = this.workers.filter((w) => !w.draining && !w.closed);
    const worker = live[this.next++ % Math.max(live.length, 1)];
    if (!worker) {
      later(() =>
        link.deliverReply(
          errorFrame(requestIdOf(copy), { code: "unavailable", message: "no chat server is available" }),
        ),
      );
      return;
    }
    later(() => worker.deliverRequest(link.peer, copy));
  }

  /** @internal */
  fromWorker(peer: string, frame: Uint8Array): void {
    const link = this.clients.get(peer);
    if (!link) return;
    const copy = Buffer.from(frame);
    later(() => link.deliverReply(copy));
  }

  /** @internal */
  publish(topic: string, frame: Uint8Array): void {
    const subs = this.subscribers.get(topic);
    if (!subs) return;
    const copy = Buffer.from(frame);
    for (const s of subs) later(() => s.deliverPublication(topic, copy));
  }

  /** @internal */
  subscribe(link: MemoryClientLink, topic: string, on: boolean): void {
    if (!TOPIC_PATTERN.test(topic)) return;
    let subs = this.subscribers.get(topic);
    if (!subs) {
      subs = new Set();
      this.subscribers.set(topic, subs);
    }
    if (on) subs.add(link);
    else subs.delete(link);
  }

  /** @internal */
  removeClient(link: MemoryClientLink): void {
    this.clients.delete(link.peer);
    for (const subs of this.subscribers.values()) subs.delete(link);
  }

  private answer(frame: Buffer): Buffer {
    const id = requestIdOf(frame);
    let type: unknown;
    try {
      type = (decodeJson(frame) as { type?: unknown })?.type;
    } catch {
      return errorFrame(id, { code: "bad_request", message: "malformed request" });
    }
    if (type === "hello") {
      return okFrame(id, { pubPort: 0, pubHost: null, version: this.version });
    }
    if (type === "ping") return okFrame(id, { time: new Date().toISOString() });
    return errorFrame(id, { code: "bad_request", message: "the balancer answers only hello and ping" });
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
    if (!this.closed) this.hub.fromClient(this, frame, route);
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

class MemoryWorkerLink implements WorkerLink {
  private handler: (peer: string, frame: Buffer) => void = () => {};
  draining = false;
  closed = false;

  constructor(private readonly hub: MemoryHub) {}

  onRequest(handler: (peer: string, frame: Buffer) => void): void {
    this.handler = handler;
  }
  deliverRequest(peer: string, frame: Buffer): void {
    if (!this.closed) this.handler(peer, frame);
  }
  reply(peer: string, frame: Uint8Array): void {
    this.hub.fromWorker(peer, frame);
  }
  publish(topic: string, frame: Uint8Array): void {
    this.hub.publish(topic, frame);
  }
  drain(): void {
    this.draining = true;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function later(fn: () => void): void {
  setImmediate(fn);
}
