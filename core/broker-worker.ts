import { BrokerCommand, HEARTBEAT_INTERVAL_MS, HEARTBEAT_LIVENESS } from "./protocol/broker.js";
import { decodeJson } from "./protocol/codec.js";
import type { WorkerLink } from "./transport.js";

/**
 * The seam under a server's side of the broker protocol, as `core/broker-sockets.ts` is under
 * the balancer's: the sockets only move frames, `BrokerWorker` speaks the protocol (READY,
 * heartbeats both ways, reconnecting to a silent balancer, REQ/REP, WELCOME, BYE). ZeroMQ
 * implements it in `transports/zeromq/worker.ts`, the in-process network in
 * `transports/memory/`, so every server on the memory transport runs the real protocol.
 */
export interface WorkerSocketHandlers {
  /** A message from balancer number `broker` (its index in the endpoints). */
  onBroker(broker: number, parts: Buffer[]): void;
}

/** Where a balancer's WELCOME asks its servers to publish; a null host means the host it was reached on. */
export interface PublishTarget {
  port: number;
  host: string | null;
}

export interface WorkerSockets {
  /** How many balancers the server is connected to. */
  readonly brokers: number;
  /** Queues a message to balancer number `broker`. */
  sendBroker(broker: number, parts: Array<string | Uint8Array>): void;
  /** Replaces the connection to balancer number `broker` with a fresh one (it was silent too long). */
  reconnect(broker: number): void;
  /** Connects the publisher where balancer number `broker`'s WELCOME says. */
  connectPublisher(broker: number, target: PublishTarget): void;
  /** Publishes a live delivery. Best effort. */
  publish(topic: string, frame: Uint8Array | string): void;
  /** Whether a balancer subscribed to `topic` (false: known not; undefined: cannot tell). */
  subscribed?(topic: string): boolean | undefined;
  /** Closes the sockets, letting what is queued leave first. */
  close(): Promise<void>;
}

export interface BrokerWorkerOptions {
  /** Announced in READY. */
  version: string;
  heartbeatMs?: number;
  /** Heartbeats a balancer may miss before the server reconnects to it. */
  liveness?: number;
  /** Whether the heartbeat timer alone keeps the process alive (the in-process network: no). */
  keepAlive?: boolean;
}

/**
 * A server's link to its balancers (the zguide's Paranoid Pirate worker): announces READY on
 * every connection, heartbeats each balancer and reconnects to one silent for `liveness`
 * beats, hands each request on with a peer id that names the balancer it came through, and
 * says BYE while draining.
 */
export class BrokerWorker implements WorkerLink {
  private readonly sockets: WorkerSockets;
  private readonly lastSeen: number[];
  private readonly timer: NodeJS.Timeout;
  private handler: (peer: string, frame: Buffer) => void = () => {};
  private draining = false;
  private closed = false;

  constructor(makeSockets: (handlers: WorkerSocketHandlers) => WorkerSockets, options: BrokerWorkerOptions) {
    this.sockets = makeSockets({ onBroker: (broker, parts) => this.onBroker(broker, parts) });
    const ready = [BrokerCommand.ready, JSON.stringify({ version: options.version })];
    this.lastSeen = Array.from({ length: this.sockets.brokers }, () => Date.now());
    for (let i = 0; i < this.sockets.brokers; i++) this.sockets.sendBroker(i, ready);
    const interval = options.heartbeatMs ?? HEARTBEAT_INTERVAL_MS;
    const silentMs = interval * (options.liveness ?? HEARTBEAT_LIVENESS);
    this.timer = setInterval(() => {
      const now = Date.now();
      for (let i = 0; i < this.sockets.brokers; i++) {
        if (now - (this.lastSeen[i] ?? now) > silentMs && !this.draining) {
          this.sockets.reconnect(i);
          this.lastSeen[i] = now;
          this.sockets.sendBroker(i, ready);
        } else {
          this.sockets.sendBroker(i, [this.draining ? BrokerCommand.bye : BrokerCommand.heartbeat]);
        }
      }
    }, interval);
    if (options.keepAlive === false) this.timer.unref();
  }

  onRequest(handler: (peer: string, frame: Buffer) => void): void {
    this.handler = handler;
  }

  reply(peer: string, frame: Uint8Array): void {
    if (this.closed) return;
    const sep = peer.indexOf(":");
    const broker = Number(peer.slice(0, sep));
    if (sep < 0 || !Number.isInteger(broker) || broker < 0 || broker >= this.sockets.brokers) return;
    this.sockets.sendBroker(broker, [BrokerCommand.reply, peer.slice(sep + 1), frame]);
  }

  publish(topic: string, frame: Uint8Array | string): void {
    if (!this.closed) this.sockets.publish(topic, frame);
  }

  subscribed(topic: string): boolean | undefined {
    return this.sockets.subscribed?.(topic);
  }

  drain(): void {
    this.draining = true;
    for (let i = 0; i < this.sockets.brokers; i++) this.sockets.sendBroker(i, [BrokerCommand.bye]);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.closed = true;
    await this.sockets.close();
  }

  private onBroker(broker: number, parts: Buffer[]): void {
    if (this.closed) return;
    this.lastSeen[broker] = Date.now();
    const command = parts[0]?.toString();
    if (command === BrokerCommand.request && parts.length === 3) {
      this.handler(`${broker}:${parts[1]!.toString("latin1")}`, parts[2]!);
    } else if (command === BrokerCommand.welcome && parts.length === 2) {
      const target = publishTarget(parts[1]!);
      if (target) this.sockets.connectPublisher(broker, target);
    }
    // Heartbeats only refresh lastSeen; anything else is ignored.
  }
}

/** The publishing port and host a WELCOME names; null when it names none. */
function publishTarget(body: Buffer): PublishTarget | null {
  try {
    const info = decodeJson(body) as { pubPort?: unknown; pubHost?: unknown } | null;
    if (typeof info?.pubPort !== "number") return null;
    return { port: info.pubPort, host: typeof info.pubHost === "string" ? info.pubHost : null };
  } catch {
    return null;
  }
}
