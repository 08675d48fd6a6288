import { MAX_DELIVERIES_PER_FRAME, MAX_REPLY_BYTES } from "../core/protocol/limits.js";
import type { DeviceTopics } from "./devices.js";

/** What the delivery publisher needs of the service around it. */
export interface DeliveryPublisherDeps {
  /** A user's live topics: one a frame (`plain`) and several a frame (`batched`), per live device (server/devices.ts). */
  topics(owner: string): Promise<DeviceTopics[]>;
  publish(topic: string, frame: string): void;
  /** False when no balancer subscribed to `topic` (the link knows it); undefined: cannot tell. */
  subscribed?(topic: string): boolean | undefined;
  /** Deliveries that could not be published (their topics could not be read, a publish threw): the mailbox still has them. */
  failed(err: unknown, owner: string): void;
}

/**
 * Publishes live deliveries once the turn that stored them is over, so that what one store commit
 * (or several requests' commits in one turn) placed in one mailbox goes out together:
 *
 * - on each device's **plain** topic, one delivery a frame, as clients before batched topics
 *   expect (such a client subscribes only there; a newer one never does, and libzmq drops a
 *   publication nobody subscribed to in the publishing process, before any I/O);
 * - on each device's **batched** topic (the login reply's `batchTopic`), the deliveries of the
 *   turn in mailbox order, several to a `deliver.many` frame (at most MAX_DELIVERIES_PER_FRAME
 *   and MAX_REPLY_BYTES a frame, so it fits every socket's frame limit); one alone goes as it is.
 *
 * In the 1:1 bench a commit holds about 30 messages for one receiver: the balancer relays one
 * frame for them where it relayed 30 (its publication relay was 46 % of its CPU). Turns are
 * published one after another, so a mailbox's deliveries leave in the order they were stored.
 */
/** A delivery waiting for the end of the turn, and the device it is not for (the sender's own). */
interface Queued {
  frame: string;
  except?: string;
}

export class DeliveryPublisher {
  private pending = new Map<string, Queued[]>();
  private scheduled = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly deps: DeliveryPublisherDeps) {}

  /**
   * Queues one delivery frame (`{"v":1,"type":"deliver",…}` as JSON text) for `owner`'s devices,
   * but for device `except` (the sender's own device, which stores its copy from the reply).
   */
  deliver(owner: string, frame: string, except?: string): void {
    const item: Queued = except === undefined ? { frame } : { frame, except };
    const queued = this.pending.get(owner);
    if (queued) queued.push(item);
    else this.pending.set(owner, [item]);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const due = this.pending;
      this.pending = new Map();
      // A turn that fails (a publish that throws) is reported; the turns after it still go out.
      this.chain = this.chain
        .then(() => this.publishAll(due))
        .catch((err) => this.deps.failed(err, [...due.keys()].join(",")));
    });
  }

  /** Resolves once everything queued so far is published (tests, shutdown). */
  async flushed(): Promise<void> {
    while (this.scheduled || this.pending.size > 0) await new Promise((r) => setImmediate(r));
    await this.chain;
  }

  private async publishAll(due: Map<string, Queued[]>): Promise<void> {
    const owners = [...due.keys()];
    const topics = await Promise.all(
      owners.map((owner) =>
        this.deps.topics(owner).catch((err) => {
          this.deps.failed(err, owner);
          return null;
        }),
      ),
    );
    owners.forEach((owner, i) => {
      const devices = topics[i];
      if (!devices) return;
      const queued = due.get(owner)!;
      const skips = queued.some((q) => q.except !== undefined);
      // What every device gets, batched once for all of them; a device some copies skip gets its own.
      let all: { frames: string[]; batches: string[] | null } | null = null;
      for (const d of devices) {
        let mine: { frames: string[]; batches: string[] | null };
        if (!skips || !queued.some((q) => q.except === d.device)) {
          all ??= { frames: queued.map((q) => q.frame), batches: null };
          mine = all;
        } else
          mine = { frames: queued.filter((q) => q.except !== d.device).map((q) => q.frame), batches: null };
        if (mine.frames.length === 0) continue;
        for (const topic of d.plain) {
          // Nobody takes a plain topic unless a client from before batched topics is connected:
          // skipped here, not only dropped by libzmq after the call (see the class comment).
          if (this.deps.subscribed?.(topic) === false) continue;
          for (const frame of mine.frames) this.deps.publish(topic, frame);
        }
        // A topic from before tagged topics only while someone holds it (the link must know).
        for (const topic of d.legacyPlain)
          if (this.deps.subscribed?.(topic) === true)
            for (const frame of mine.frames) this.deps.publish(topic, frame);
        const batched = d.legacyBatched.filter((t) => this.deps.subscribed?.(t) === true);
        if (d.batched.length > 0) batched.push(...d.batched);
        if (batched.length === 0) continue;
        mine.batches ??= batchFrames(owner, mine.frames);
        for (const frame of mine.batches) for (const topic of batched) this.deps.publish(topic, frame);
      }
    });
  }
}

/**
 * `owner`'s delivery frames as few frames as the bounds allow: runs of them wrapped as
 * `{"v":1,"type":"deliver.many","owner":…,"frames":[…]}`, in order; a run of one stays as it is.
 *
 * A run is sized by a bound first, three UTF-8 bytes a UTF-16 unit (what no text passes), and
 * counted exactly only once the bound could pass the budget: the exact count is a native call that
 * copies a frame built by concatenation into one string first (about 1.5 µs a delivery, measured
 * with 33 deliveries of 1 KB), where a run of the 1:1 bench is far under the 512 KiB budget.
 */
export function batchFrames(owner: string, frames: readonly string[]): string[] {
  const out: string[] = [];
  const head = `{"v":1,"type":"deliver.many","owner":"${owner}","frames":[`;
  // Room for the wrapper and the commas between frames.
  const budget = MAX_REPLY_BYTES - head.length - 2;
  let run: string[] = [];
  /** The run's size: an upper bound while `exact` is false, else its UTF-8 bytes. */
  let bytes = 0;
  let exact = false;
  const close = () => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) out.push(`${head}${run.join(",")}]}`);
    run = [];
    bytes = 0;
    exact = false;
  };
  for (const frame of frames) {
    if (run.length >= MAX_DELIVERIES_PER_FRAME) close();
    let size = exact ? Buffer.byteLength(frame) + 1 : frame.length * 3 + 1;
    if (run.length > 0 && bytes + size > budget && !exact) {
      // The bound could pass the budget: count the run and this frame exactly.
      exact = true;
      bytes = 0;
      for (const f of run) bytes += Buffer.byteLength(f) + 1;
      size = Buffer.byteLength(frame) + 1;
    }
    if (run.length > 0 && bytes + size > budget) {
      close();
      // A new run starts with this frame, sized by its bound again.
      size = frame.length * 3 + 1;
    }
    run.push(frame);
    bytes += size;
  }
  close();
  return out;
}
