import type { Logger } from "../core/logger.js";
import { errorFrame, requestIdOf } from "../core/protocol/frames.js";
import type { WorkerLink, WorkerTransport } from "../core/transport.js";
import { Authority, DEFAULT_SESSION_TTL_MS, systemClock } from "./auth.js";
import { type FileLimits, FileService } from "./blobs/files.js";
import type { BlobStore } from "./blobs/store.js";
import { DEFAULT_SERVER_QUOTAS, type ServerQuotas } from "./limits.js";
import { ChatService, type ServiceMetrics } from "./service.js";
import type { Store } from "./store/store.js";

export interface ChatServerOptions {
  transport: WorkerTransport;
  /** Balancer backend endpoints (or a memory hub name): the server attaches to all of them. */
  endpoints: string[];
  store: Store;
  secret: Buffer;
  log: Logger;
  id: string;
  metrics?: ServiceMetrics;
  /** Quotas per sender, user and group (server/limits.ts); defaults when absent. */
  quotas?: ServerQuotas;
  /** Requests in progress beyond which new ones are refused as `unavailable` (back-pressure). */
  maxInFlight?: number;
  /** Bytes of request frames in progress beyond which new ones are refused as `unavailable`. */
  maxInFlightBytes?: number;
  /** Session token lifetime (default DEFAULT_SESSION_TTL_MS); clients renew before it ends. */
  sessionTtlMs?: number;
  /** Where attachments' encrypted chunks are kept (server/blobs/); none: file requests are refused. */
  blobs?: BlobStore | null;
  fileLimits?: FileLimits;
}

/** A chat server: takes requests from its link, answers through the service, publishes deliveries. */
export class ChatServer {
  private inFlight = 0;
  private inFlightBytes = 0;
  private stopping = false;
  private idleWaiters: Array<() => void> = [];
  private readonly maxInFlight: number;

  private constructor(
    private readonly link: WorkerLink,
    private readonly service: ChatService,
    private readonly store: Store,
    private readonly log: Logger,
    maxInFlight: number,
    private readonly maxInFlightBytes: number,
    private readonly metrics: ServiceMetrics | undefined,
    private readonly blobs: BlobStore | null,
  ) {
    this.maxInFlight = maxInFlight;
    link.onRequest((peer, frame) => this.onRequest(peer, frame));
  }

  static async start(options: ChatServerOptions): Promise<ChatServer> {
    const link = await options.transport.attach(options.endpoints, options.id);
    const service = new ChatService(
      options.store,
      new Authority(options.secret, systemClock, options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS),
      link,
      options.log,
      options.metrics,
      options.quotas,
      new FileService(options.blobs ?? null, options.store, options.fileLimits),
    );
    return new ChatServer(
      link,
      service,
      options.store,
      options.log,
      options.maxInFlight ?? options.quotas?.inFlightRequests ?? DEFAULT_SERVER_QUOTAS.inFlightRequests,
      options.maxInFlightBytes ?? options.quotas?.inFlightBytes ?? DEFAULT_SERVER_QUOTAS.inFlightBytes,
      options.metrics,
      options.blobs ?? null,
    );
  }

  get pending(): number {
    return this.inFlight;
  }

  /** Graceful stop: take nothing new, finish what is in progress, then close link and store. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.link.drain();
    if (this.inFlight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    await this.link.close();
    await this.store.close();
    await this.blobs?.close();
  }

  private onRequest(peer: string, frame: Buffer): void {
    const overBytes = this.inFlight > 0 && this.inFlightBytes + frame.length > this.maxInFlightBytes;
    if (this.stopping || this.inFlight >= this.maxInFlight || overBytes) {
      if (!this.stopping) this.metrics?.limited?.(overBytes ? "in_flight_bytes" : "in_flight_requests");
      this.link.reply(
        peer,
        refusal(frame, this.stopping ? "the server is shutting down" : "the server is overloaded"),
      );
      return;
    }
    this.inFlight++;
    const bytes = frame.length;
    this.inFlightBytes += bytes;
    this.service
      .handle(frame)
      .then((reply) => this.link.reply(peer, reply))
      .catch((err: unknown) => this.log.error({ err }, "reply failed"))
      .finally(() => {
        this.inFlight--;
        this.inFlightBytes -= bytes;
        if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }
}

/** An `unavailable` reply for a request the server will not take; the client retries elsewhere. */
export function refusal(frame: Buffer, message: string): Buffer {
  return errorFrame(requestIdOf(frame), { code: "unavailable", message });
}
