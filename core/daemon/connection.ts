import type { Readable, Writable } from "node:stream";
import {
  createJSONRPCErrorResponse,
  createJSONRPCNotification,
  JSONRPCErrorCode,
  type JSONRPCServer,
} from "json-rpc-2.0";
import type { Caller } from "./rpc.js";

/** The bounds every daemon connection lives in: nothing a peer sends can make the daemon grow without end. */
export interface ConnectionLimits {
  /** Longest line (one request or batch), in bytes; a longer one is answered -32600 and skipped. */
  maxLineBytes: number;
  /** Requests of one connection being worked on at once; beyond it the daemon stops reading that connection. */
  maxInFlight: number;
  /** Most requests in one batch (a JSON array). */
  maxBatch: number;
  /**
   * Bytes waiting to be written to the peer: above it the daemon reads no more requests and
   * hands no more notifications to that connection until the peer has read what waits.
   */
  highWaterBytes: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxLineBytes: 256 * 1024,
  maxInFlight: 64,
  maxBatch: 64,
  highWaterBytes: 1024 * 1024,
};

/** Where `message` notifications come from: the local cache, read from a cursor. */
export interface Feed {
  /** The cursor a new subscriber starts after. */
  start(): string | null;
  /** Up to `limit` notifications' params after `after`, and the cursor of the last row read (null: nothing new). */
  after(after: string | null, limit: number): { items: unknown[]; last: string | null };
  /** `conn` has written to its peer everything up to `cursor`. */
  handed(conn: object, cursor: string | null): void;
  /** `conn` stopped its subscription (or closed). */
  leave(conn: object): void;
}

const FEED_BATCH = 200;

/**
 * One JSON-RPC peer over a byte stream (a unix or TCP socket, or stdin/stdout): one JSON
 * object (or batch) per line in, one per line out. Every bound is in `ConnectionLimits`; when
 * the peer does not read, the daemon stops reading its requests and stops handing it
 * notifications (they stay in the cache, where it resumes), so a slow peer costs memory up
 * to `highWaterBytes` and no more, and loses nothing.
 */
export class RpcConnection implements Caller {
  authorized: boolean;
  private parts: Buffer[] = [];
  private partBytes = 0;
  private discarding = false;
  private readonly lines: string[] = [];
  private inFlight = 0;
  private ended = false;
  private closed = false;
  private waitingDrain = false;
  /** The cursor after which the next notification comes; undefined when not subscribed. */
  private position: string | null | undefined = undefined;

  constructor(
    private readonly server: JSONRPCServer<Caller>,
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly options: {
      feed: Feed;
      limits?: ConnectionLimits;
      /** Checks a token (TCP); absent: the connection needs none. */
      token?: (token: string) => boolean;
      onClose?: () => void;
    },
  ) {
    this.authorized = options.token === undefined;
    input.on("data", (chunk: Buffer) => this.onData(chunk));
    input.on("end", () => {
      this.ended = true;
      this.finishIfIdle();
    });
    input.on("error", () => this.close());
    output.on("error", () => this.close());
    output.on("close", () => this.close());
  }

  private get limits(): ConnectionLimits {
    return this.options.limits ?? DEFAULT_LIMITS;
  }

  /** Connections that need no token are the unix socket and stdio; TCP always needs one. */
  get local(): boolean {
    return this.options.token === undefined;
  }

  authorize(token: string): boolean {
    if (!this.options.token) return true;
    this.authorized = this.options.token(token);
    return this.authorized;
  }

  warn(text: string): void {
    this.write(createJSONRPCNotification("warning", { text }));
  }

  subscribe(): void {
    if (this.position !== undefined) return;
    this.position = this.options.feed.start();
    this.options.feed.handed(this, this.position);
    // After the reply to `subscribe` is written.
    setImmediate(() => this.wake());
  }

  unsubscribe(): void {
    if (this.position === undefined) return;
    this.position = undefined;
    this.options.feed.leave(this);
  }

  /** Hands the subscriber what the cache holds after its position, as far as its peer reads. */
  wake(): void {
    if (this.closed || this.position === undefined) return;
    while (!this.congested()) {
      const { items, last } = this.options.feed.after(this.position, FEED_BATCH);
      if (last === null) return;
      this.position = last;
      const reached = last;
      if (items.length === 0) {
        this.options.feed.handed(this, reached);
        continue;
      }
      items.forEach((params, i) => {
        const line = `${JSON.stringify(createJSONRPCNotification("message", params))}\n`;
        if (i < items.length - 1) this.output.write(line);
        else
          this.output.write(line, (err) => {
            if (!err && this.position !== undefined) this.options.feed.handed(this, reached);
          });
      });
    }
    this.waitForDrain();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.input.destroy();
    this.output.destroy();
    this.options.onClose?.();
  }

  private onData(chunk: Buffer): void {
    const max = this.limits.maxLineBytes;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      if (this.discarding) this.discarding = false;
      else if (this.partBytes + piece.length > max) this.tooLong();
      else this.lines.push(Buffer.concat([...this.parts, piece]).toString("utf8"));
      this.parts = [];
      this.partBytes = 0;
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (!this.discarding && rest.length > 0) {
      if (this.partBytes + rest.length > max) {
        this.tooLong();
        this.discarding = true;
        this.parts = [];
        this.partBytes = 0;
      } else {
        this.parts.push(rest);
        this.partBytes += rest.length;
      }
    }
    this.pump();
  }

  private tooLong(): void {
    this.write(
      createJSONRPCErrorResponse(
        null,
        JSONRPCErrorCode.InvalidRequest,
        `line longer than ${this.limits.maxLineBytes} bytes; skipped`,
      ),
    );
  }

  private congested(): boolean {
    return this.output.writableLength > this.limits.highWaterBytes;
  }

  private waitForDrain(): void {
    if (this.waitingDrain || this.closed) return;
    this.waitingDrain = true;
    const again = () => {
      this.waitingDrain = false;
      this.pump();
      this.wake();
    };
    // A stream emits `drain` only after a write was refused (its own high-water mark passed).
    if (this.output.writableNeedDrain) this.output.once("drain", again);
    else setTimeout(again, 10).unref();
  }

  /** Works on waiting lines while there is room; reads more from the peer only then. */
  private pump(): void {
    if (this.closed) return;
    while (this.lines.length > 0 && this.inFlight < this.limits.maxInFlight && !this.congested())
      this.handle(this.lines.shift()!);
    const full = this.lines.length > 0 || this.inFlight >= this.limits.maxInFlight || this.congested();
    if (full) this.input.pause();
    else this.input.resume();
    if (this.congested()) this.waitForDrain();
    this.finishIfIdle();
  }

  private handle(line: string): void {
    if (line.trim() === "") return;
    let payload: unknown;
    try {
      payload = JSON.parse(line);
    } catch {
      this.write(createJSONRPCErrorResponse(null, JSONRPCErrorCode.ParseError, "Parse error"));
      return;
    }
    if (Array.isArray(payload) && payload.length > this.limits.maxBatch) {
      this.write(
        createJSONRPCErrorResponse(
          null,
          JSONRPCErrorCode.InvalidRequest,
          `a batch of ${payload.length} requests; at most ${this.limits.maxBatch}`,
        ),
      );
      return;
    }
    this.inFlight++;
    Promise.resolve()
      .then(() => this.server.receive(payload as never, this))
      .then(
        (response) => {
          if (response && !(Array.isArray(response) && response.length === 0)) this.write(response);
        },
        (err: unknown) =>
          this.write(
            createJSONRPCErrorResponse(null, JSONRPCErrorCode.InternalError, String((err as Error)?.message)),
          ),
      )
      .finally(() => {
        this.inFlight--;
        this.pump();
      });
  }

  private write(payload: unknown): void {
    if (this.closed || this.output.destroyed || this.output.writableEnded) return;
    this.output.write(`${JSON.stringify(payload)}\n`);
  }

  /** The peer ended its side: once every answer is written, end ours. */
  private finishIfIdle(): void {
    if (!this.ended || this.inFlight > 0 || this.lines.length > 0 || this.closed) return;
    this.output.end(() => this.close());
  }
}
