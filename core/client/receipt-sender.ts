import { ZmqchatError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { MessageExtra } from "./actions.js";
import type { ChatMessage } from "./message.js";
import { RECEIPT_READ_ROWS, type ReceiptBatch, type ReceiptStore } from "./receipts.js";

/** What the sender needs of the client: a 1:1 send with a sealed extra, and whether it is logged in. */
export interface ReceiptClient {
  readonly online: boolean;
  /** A recovery (a sync of many pages) is running: receipts wait until it is done. */
  readonly recovering?: boolean;
  send(
    target: { user: string },
    text: string,
    opts: { timeoutMs?: number },
    extra?: MessageExtra,
  ): Promise<ChatMessage>;
}

/**
 * How long receipts wait after the first one of a burst is queued: a sync page or a burst of live
 * deliveries lands within it, so it goes out as one event per conversation (see receipts.ts).
 */
export const RECEIPT_BURST_MS = 250;

/** The most a client's close waits for its queued receipts (a command about to exit). */
export const RECEIPT_CLOSE_MS = 5000;

/** Sends the receipts the cache queues (receipts.ts), in batches, while the client is logged in. */
export class ReceiptSender {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly client: ReceiptClient,
    private readonly store: ReceiptStore,
    private readonly log: Logger,
  ) {
    store.onPending = () => this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      // The receipts of a recovery go after its last page (in full events of MAX_RECEIPT_IDS
      // ids), instead of being sealed and sent between its pages; they wait in the cache meanwhile.
      if (this.client.recovering) this.schedule();
      else if (this.client.online)
        this.flush(10_000).catch((err) => this.log.warn({ err }, "sending receipts failed"));
    }, RECEIPT_BURST_MS);
    this.timer.unref();
  }

  /** Sends what waits now; stops at the first sign the service is away (the rest waits in the cache). */
  flush(timeoutMs: number): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.running) await this.running.catch(() => {});
      // Stopped while waiting for the flush before: the client is closing (its cache may be closed).
      if (this.stopped) return;
      const deadline = Date.now() + timeoutMs;
      // A window of the queue at a time (receipts.ts): what stays queued (a held author) is passed over.
      for (let after = 0; ; ) {
        const { batches, last } = this.store.window(after, RECEIPT_READ_ROWS);
        for (const b of batches) {
          if (this.stopped || !(await this.sendOne(b, deadline))) return;
        }
        if (last === null || this.stopped) return;
        after = last;
      }
    };
    const p = run().finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }

  /** False when the service is unreachable (stop trying for now). */
  private async sendOne(b: ReceiptBatch, deadline: number): Promise<boolean> {
    const timeoutMs = Math.max(1, deadline - Date.now());
    try {
      await this.client.send(
        { user: b.author },
        // What clients that predate receipts show.
        b.status === "read" ? "(read receipt)" : "(delivery receipt)",
        { timeoutMs },
        { receipt: { status: b.status, group: b.group, ids: b.ids } },
      );
      this.done(b);
      return true;
    } catch (err) {
      if (this.stopped) return false;
      const code = err instanceof ZmqchatError ? err.code : "internal";
      if (code === "timeout" || code === "unavailable") return false;
      // Held until the user trusts the author's new keys; anything else can never be sent.
      if (code !== "key_changed") this.done(b);
      this.log.warn({ err, author: b.author }, "a receipt was not sent");
      return true;
    }
  }

  /**
   * The batch is not sent again. A send that ends after the client closed its cache stays queued
   * there and goes again next time: its author stores it once (receipts are keyed by id, reader
   * and status).
   */
  private done(b: ReceiptBatch): void {
    try {
      this.store.sent(b);
    } catch (err) {
      if (!this.stopped) throw err;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
