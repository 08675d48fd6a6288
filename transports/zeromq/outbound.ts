import type { MessageLike, Writable } from "zeromq";

/**
 * zeromq.js allows one send in progress per socket. This queue serialises sends, keeps a
 * bound on what waits, and never lets a failed send take the process down.
 */
export class Outbound {
  private readonly queue: Array<{ parts: MessageLike[]; bytes: number }> = [];
  private queuedBytes = 0;
  private pumping = false;
  private closed = false;

  constructor(
    private readonly socket: Writable,
    private readonly limit: number,
    private readonly onError: (err: unknown, parts: MessageLike[]) => void = () => {},
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Queues a multipart message; returns false when the queue is full (frames or bytes) and the message was dropped. */
  push(parts: MessageLike[]): boolean {
    if (this.closed || this.queue.length >= this.limit) return false;
    let bytes = 0;
    // Strings are counted in UTF-8 bytes, what goes on the wire (not UTF-16 units, which count a
    // frame of non-ASCII text at a third of its size and let the queue hold three times its bound).
    for (const p of parts)
      bytes +=
        typeof p === "string" ? Buffer.byteLength(p, "utf8") : ((p as ArrayBufferView).byteLength ?? 0);
    if (this.queue.length > 0 && this.queuedBytes + bytes > this.maxBytes) return false;
    this.queuedBytes += bytes;
    this.queue.push({ parts, bytes });
    if (!this.pumping) void this.pump();
    return true;
  }

  /** Messages not yet handed to libzmq, the one being sent included. */
  get pending(): number {
    return this.queue.length + (this.sending ? 1 : 0);
  }

  private sending = false;

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const { parts, bytes } = this.queue.shift()!;
        this.queuedBytes -= bytes;
        this.sending = true;
        try {
          await this.socket.send(parts);
        } catch (err) {
          if (this.closed) return;
          this.onError(err, parts);
        } finally {
          this.sending = false;
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
