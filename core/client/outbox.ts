import { type Sealer, sealTag } from "../crypto/envelope.js";
import { ZmqchatError } from "../errors.js";
import type { Logger } from "../logger.js";
import { uuidv7 } from "../protocol/ids.js";
import { MAX_TEXT_BYTES } from "../protocol/limits.js";
import type { AckBatch } from "./ack-batch.js";
import { addExtraFields, type MessageExtra } from "./actions.js";
import type { Cache, ChatMessage, OutboxItem } from "./cache.js";
import type { RequestOptions } from "./channel.js";
import { convOfTarget } from "./conv.js";
import { type KeyBook, remaining, type Target } from "./keybook.js";
import type { SendSlot } from "./send-window.js";

/** A send of this device awaiting its acknowledgement: its seal tag (signature or key commitment), and its text. */
export interface Sending {
  tag: string;
  text: string;
  extra?: MessageExtra;
  /** A group send's recipients (receipts.ts judges its receipts against them). */
  sealedFor?: string[];
}

/** What the outbox needs from the client around it. */
export interface OutboxDeps {
  name: string;
  device: string;
  cache: Cache;
  log: Logger;
  sealer: Sealer;
  keys: KeyBook;
  /** Default deadline of a send, retries included. */
  requestMs: number;
  login(timeoutMs: number): Promise<void>;
  /** Takes the next place in the send order (send-window.ts); the sealed envelope is posted there. */
  reserve(): SendSlot;
  /** Stores acknowledged sends (one cache transaction per burst). */
  acks: AckBatch;
  shown(message: ChatMessage): void;
  pending(count: number): void;
}

/**
 * The client's outbox and send pipeline: composes a message (id, sequence number, time), seals
 * it for its recipients, hands it to the service and stores the acknowledged copy; with
 * `sendOrQueue` a message the service cannot take now waits on disk and `flush` sends it later
 * with the same id (the service answers a repeat `duplicate` and stores it once).
 */
export class Outbox {
  /** Sends of this device awaiting their acknowledgement (their own copy, delivered early, takes its text from here). */
  readonly sending = new Map<string, Sending>();
  private flushing: Promise<{ sent: number; left: number }> | null = null;

  constructor(private readonly deps: OutboxDeps) {}

  /** Sends one message; resolves once the service stored it durably in every mailbox. */
  async send(
    target: Target,
    text: string,
    opts: RequestOptions & { id?: string } = {},
    extra?: MessageExtra,
  ): Promise<ChatMessage> {
    // `id`: a message id chosen beforehand (a file message's is its upload's, core/client/files.ts).
    const item = this.compose(target, text, false, extra, opts.id);
    try {
      return await this.deliver(item, Date.now() + (opts.timeoutMs ?? this.deps.requestMs), false);
    } catch (err) {
      // Not acknowledged: give the sequence number back, so the conversation shows no false gap.
      this.deps.cache.releaseSeq(item.conv, item.seq);
      throw err;
    }
  }

  /**
   * Sends, or, when the service cannot be reached in time, keeps the message in the on-disk
   * outbox; `flush` (run on every reconnect) sends it later with the same id.
   */
  async sendOrQueue(
    target: Target,
    text: string,
    opts: RequestOptions = {},
    extra?: MessageExtra,
  ): Promise<{ id: string; queued: boolean; message?: ChatMessage }> {
    const { cache } = this.deps;
    const item = this.compose(target, text, true, extra);
    try {
      const message = await this.deliver(item, Date.now() + (opts.timeoutMs ?? this.deps.requestMs), true);
      return { id: item.id, queued: false, message };
    } catch (err) {
      if (err instanceof ZmqchatError && (err.code === "timeout" || err.code === "unavailable")) {
        cache.setOutboxError(item.id, err.message);
        this.deps.pending(cache.outbox().length);
        return { id: item.id, queued: true };
      }
      cache.dequeue(item.id);
      cache.releaseSeq(item.conv, item.seq);
      throw err;
    }
  }

  /** Sends what waits in the outbox, oldest first; stops at the first sign the service is still away. */
  async flush(opts: RequestOptions = {}): Promise<{ sent: number; left: number }> {
    if (!this.flushing) {
      this.flushing = this.flushOnce(opts).finally(() => {
        this.flushing = null;
      });
    }
    return this.flushing;
  }

  private async flushOnce(opts: RequestOptions): Promise<{ sent: number; left: number }> {
    const { cache } = this.deps;
    let sent = 0;
    for (const item of cache.outbox()) {
      try {
        await this.deliver(item, Date.now() + (opts.timeoutMs ?? this.deps.requestMs), true);
        sent++;
      } catch (err) {
        const e = err instanceof ZmqchatError ? err : new ZmqchatError("internal", String(err));
        cache.setOutboxError(item.id, e.message);
        if (e.code === "timeout" || e.code === "unavailable") break;
        this.deps.log.warn(
          { id: item.id, err: e.message },
          "an outbox message was refused; it stays in the outbox",
        );
      }
    }
    const left = cache.outbox().length;
    this.deps.pending(left);
    return { sent, left };
  }

  private compose(
    target: Target,
    text: string,
    persist: boolean,
    extra?: MessageExtra,
    id: string = uuidv7(),
  ): OutboxItem {
    checkText(text);
    const conv = convOfTarget(target);
    const item: OutboxItem = {
      id,
      conv,
      target,
      text,
      seq: this.deps.cache.nextSeq(conv),
      sentAt: new Date().toISOString(),
      lastError: null,
      ...(extra ? { extra } : {}),
    };
    if (persist) this.deps.cache.enqueue(item);
    return item;
  }

  /**
   * Seals and sends one composed message with its own id, seq and time; removes it from the
   * outbox once acknowledged. Its place in the send order is taken at once, so messages leave
   * in the order they were composed even when sealing waits for a key look-up.
   */
  private async deliver(item: OutboxItem, deadline: number, queued: boolean): Promise<ChatMessage> {
    const { id, target, text, seq, sentAt, conv, extra } = item;
    const { name, device } = this.deps;
    const first = this.deps.reserve();
    try {
      await this.deps.login(remaining(deadline));
      for (let round = 0; ; round++) {
        const recipients = await this.deps.keys.recipientsOf(target, round > 0, deadline);
        const envelope = this.deps.sealer.seal({
          id,
          device,
          to: "user" in target ? target.user : null,
          group: "group" in target ? target.group : null,
          seq,
          sentAt,
          text,
          recipients,
          ...(extra ? { extra } : {}),
          // A group message is signed with the others of its request, by the send window.
          draft: true,
        });
        // A group message's recipients, to judge its receipts against (receipts.ts).
        const sealedFor = "group" in target ? recipients.map((r) => r.name) : undefined;
        this.sending.set(id, { tag: sealTag(envelope), text, extra, ...(sealedFor ? { sealedFor } : {}) });
        try {
          const slot = round === 0 ? first : this.deps.reserve();
          const ack = await slot.post(envelope, remaining(deadline));
          const message: ChatMessage = addExtraFields(
            {
              id,
              conv,
              from: name,
              to: envelope.to,
              group: envelope.group,
              text,
              sentAt,
              serverTime: ack.serverTime,
              cursor: ack.cursor,
              verified: true,
              problem: null,
              seq,
              device,
            },
            extra,
          );
          if (sealedFor) message.sealedFor = sealedFor;
          // When the cursor is just before our copy, the acknowledgement stands for its delivery.
          for (const m of await this.deps.acks.add(message, ack.prev, queued)) this.deps.shown(m);
          return message;
        } catch (err) {
          // The group changed between our look-up and the send: look again and seal again, once.
          if (err instanceof ZmqchatError && err.code === "conflict" && "group" in target && round === 0)
            continue;
          throw err;
        } finally {
          this.sending.delete(id);
        }
      }
    } finally {
      first.cancel();
    }
  }
}

function checkText(text: string): void {
  if (text.trim().length === 0) throw new ZmqchatError("usage", "the message is empty");
  const size = Buffer.byteLength(text);
  if (size > MAX_TEXT_BYTES)
    throw new ZmqchatError("too_large", `the message is ${size} bytes; the limit is ${MAX_TEXT_BYTES}`);
}
