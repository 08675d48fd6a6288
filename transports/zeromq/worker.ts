import { randomBytes } from "node:crypto";
import { Dealer, Publisher } from "zeromq";
import { BrokerCommand, HEARTBEAT_INTERVAL_MS, HEARTBEAT_LIVENESS } from "../../core/protocol/broker.js";
import type { WorkerLink, WorkerTransport } from "../../core/transport.js";
import { type CurveKeys, curveClientOptions } from "./curve.js";
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

/** Server side of the ZeroMQ transport: one DEALER per balancer (Paranoid Pirate worker), one PUB. */
export class ZeromqWorkerTransport implements WorkerTransport {
  constructor(private readonly options: ZeromqWorkerOptions) {}

  async attach(endpoints: string[], serverId: string): Promise<WorkerLink> {
    for (const e of endpoints) parseTcpEndpoint(e);
    return new ZeromqWorkerLink(endpoints, serverId, this.options);
  }
}

class BrokerConnection {
  dealer!: Dealer;
  outbound!: Outbound;
  lastSeen = Date.now();
  pubEndpoint: string | null = null;
  private closed = false;
  private readonly routingId: string;

  constructor(
    readonly endpoint: string,
    serverId: string,
    private readonly version: string,
    readonly security: { curveServerKey?: string },
    private readonly onMessage: (conn: BrokerConnection, parts: Buffer[]) => void,
  ) {
    this.routingId = `${serverId}-${randomBytes(4).toString("hex")}`;
    this.open();
  }

  /** (Re)opens the DEALER and announces READY, as a Paranoid Pirate worker does after a lost broker. */
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
    this.lastSeen = Date.now();
    this.send([BrokerCommand.ready, JSON.stringify({ version: this.version })]);
    void this.read(this.dealer);
  }

  send(parts: Array<string | Buffer | Uint8Array>): void {
    this.outbound.push(parts);
  }

  close(): void {
    this.closed = true;
    this.outbound.close();
    this.dealer.close();
  }

  private async read(dealer: Dealer): Promise<void> {
    try {
      for await (const parts of dealer) {
        this.lastSeen = Date.now();
        this.onMessage(this, parts);
      }
    } catch (err) {
      if (!this.closed && !dealer.closed) throw err;
    }
  }
}

class ZeromqWorkerLink implements WorkerLink {
  private readonly brokers: BrokerConnection[];
  private readonly pub: Publisher;
  private readonly pubOut: Outbound;
  private readonly pubConnected = new Set<string>();
  private handler: (peer: string, frame: Buffer) => void = () => {};
  private readonly timer: NodeJS.Timeout;
  private draining = false;

  constructor(endpoints: string[], serverId: string, options: ZeromqWorkerOptions) {
    const curve = options.curve;
    const security = (i: number) => {
      if (!curve) return {};
      const key = Array.isArray(curve.serverKey) ? curve.serverKey[i] : curve.serverKey;
      if (!key) throw new Error(`no CURVE key for balancer ${endpoints[i]}`);
      return curveClientOptions(key, curve.keys);
    };
    this.pub = new Publisher({ ...COMMON_SOCKET_OPTIONS, ...security(0), sendHighWaterMark: QUEUE_FRAMES });
    this.pubOut = new Outbound(this.pub, QUEUE_FRAMES, undefined, QUEUE_BYTES);
    this.brokers = endpoints.map(
      (e, i) =>
        new BrokerConnection(e, serverId, options.version, security(i), (c, p) => this.onBrokerMessage(c, p)),
    );
    const interval = options.heartbeatMs ?? HEARTBEAT_INTERVAL_MS;
    const liveness = options.liveness ?? HEARTBEAT_LIVENESS;
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const b of this.brokers) {
        if (now - b.lastSeen > interval * liveness && !this.draining) {
          b.open();
        } else {
          b.send([this.draining ? BrokerCommand.bye : BrokerCommand.heartbeat]);
        }
      }
    }, interval);
  }

  onRequest(handler: (peer: string, frame: Buffer) => void): void {
    this.handler = handler;
  }

  reply(peer: string, frame: Uint8Array): void {
    const sep = peer.indexOf(":");
    const broker = this.brokers[Number(peer.slice(0, sep))];
    broker?.send([BrokerCommand.reply, peer.slice(sep + 1), frame]);
  }

  publish(topic: string, frame: Uint8Array): void {
    this.pubOut.push([topic, frame]);
  }

  drain(): void {
    this.draining = true;
    for (const b of this.brokers) b.send([BrokerCommand.bye]);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    // Let queued replies and publications leave before the sockets go.
    const deadline = Date.now() + 2000;
    while (
      Date.now() < deadline &&
      (this.pubOut.pending > 0 || this.brokers.some((b) => b.outbound.pending > 0))
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    // Replies handed to libzmq but not yet on the wire get a moment to leave (linger).
    for (const b of this.brokers) {
      b.dealer.linger = 500;
      b.close();
    }
    this.pubOut.close();
    this.pub.linger = 500;
    this.pub.close();
  }

  private onBrokerMessage(conn: BrokerConnection, parts: Buffer[]): void {
    const command = parts[0]?.toString();
    if (command === BrokerCommand.request && parts.length === 3) {
      const index = this.brokers.indexOf(conn);
      this.handler(`${index}:${parts[1]!.toString("latin1")}`, parts[2]!);
    } else if (command === BrokerCommand.welcome && parts.length === 2) {
      this.connectPub(conn, parts[1]!);
    }
    // Heartbeats only refresh lastSeen; anything else is ignored.
  }

  private connectPub(conn: BrokerConnection, body: Buffer): void {
    let info: { pubPort?: unknown; pubHost?: unknown };
    try {
      info = JSON.parse(body.toString());
    } catch {
      return;
    }
    if (typeof info.pubPort !== "number") return;
    const host = typeof info.pubHost === "string" ? info.pubHost : parseTcpEndpoint(conn.endpoint).host;
    const endpoint = `tcp://${host}:${info.pubPort}`;
    if (this.pubConnected.has(endpoint)) return;
    this.pubConnected.add(endpoint);
    // libzmq takes the CURVE server key at connect time: each balancer's publication link pins its own.
    if (conn.security.curveServerKey) this.pub.curveServerKey = conn.security.curveServerKey;
    this.pub.connect(endpoint);
  }
}
