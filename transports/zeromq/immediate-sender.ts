import type { MessageLike, Writable } from "zeromq";

/**
 * Sends on a socket that never waits to send (PUB, an XPUB without ZMQ_XPUB_NODROP): libzmq
 * itself drops what is over the high-water mark. With a send timeout of 0, zeromq.js sends at
 * once inside `send` and hands back a settled promise, so nothing waits in JavaScript: no queue,
 * no `await` per frame as `Outbound` needs for sockets that push back (a delivery costs the
 * balancer one receive and one send, so this is most of its work per message).
 */
export class ImmediateSender {
  private closed = false;
  private dropped = 0;
  private readonly failed = (err: unknown) => {
    this.dropped++;
    if (!this.closed) this.onError(err);
  };

  constructor(
    private readonly socket: Writable,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    socket.sendTimeout = 0;
  }

  /** Hands a multipart message to libzmq; false when it could not be (closed, or refused at once). */
  push(parts: MessageLike[]): boolean {
    if (this.closed) return false;
    try {
      this.socket.send(parts).then(undefined, this.failed);
      return true;
    } catch (err) {
      this.failed(err);
      return false;
    }
  }

  /** Messages refused by the socket so far. */
  get refused(): number {
    return this.dropped;
  }

  /** Nothing waits here: what was pushed is libzmq's. */
  get pending(): number {
    return 0;
  }

  close(): void {
    this.closed = true;
  }
}
