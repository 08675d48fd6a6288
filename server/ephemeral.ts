import { ZmqchatError } from "../core/errors.js";
import type { RequestBody } from "../core/protocol/schema.js";
import { type BucketRule, TokenBuckets } from "../core/token-bucket.js";
import { RateLimitedError } from "./limits.js";
import type { Store } from "./store/store.js";

/**
 * Ephemeral signals (issue 17: typing, presence): request `signal`
 * `{to: user|null, group: name|null, sealed}`, relayed at once to the live delivery topics of the
 * recipients (the peer, or every other member of the group) as
 * `{"v":1,"type":"signal","from","to","group","sealed"}`, and never stored: a recipient who is not
 * listening right now simply misses it, which is what typing and presence mean.
 *
 * `sealed` is opaque here: the client seals and signs it for the recipients like a message
 * (core/client/ephemeral.ts), so the service can neither read nor forge a signal; `from` is the
 * session's user, never the client's word.
 *
 * Rate-limited per sender in deliveries (one signal to a group of 20 costs 19), in this server's
 * memory: per server for the reasons server/limits.ts gives for SenderQuota. A flood is refused
 * with `rate_limited` and costs other users nothing: their buckets are their own.
 */

/** Deliveries per second one sender may cause, and how many may be saved up (a login announces presence to every contact). */
export const SIGNAL_RULE: BucketRule = { rate: 20, burst: 200 };

export interface SignalPublisher {
  publish(topic: string, frame: Uint8Array): void;
}

export class EphemeralRelay {
  private readonly buckets: TokenBuckets;

  constructor(
    private readonly store: Store,
    /** A user's live delivery topics (one per device: server/devices.ts). */
    private readonly topics: (name: string) => Promise<string[]>,
    private readonly publisher: SignalPublisher,
    rule: BucketRule = SIGNAL_RULE,
    private readonly now: () => number = Date.now,
  ) {
    this.buckets = new TokenBuckets(rule);
  }

  /** Relays one signal from `user`; returns how many recipients it was published to. */
  async relay(b: RequestBody<"signal">, user: string): Promise<{ relayed: number }> {
    let recipients: string[];
    if (b.to !== null && b.group === null) {
      const [peer] = await this.store.getUsers([b.to]);
      if (!peer) throw new ZmqchatError("not_found", `no user named ${b.to}`);
      recipients = b.to === user ? [] : [b.to];
    } else if (b.group !== null && b.to === null) {
      const group = await this.store.getGroup(b.group);
      if (!group) throw new ZmqchatError("not_found", `no group named ${b.group}`);
      if (!group.members.includes(user))
        throw new ZmqchatError("forbidden", `you are not a member of ${b.group}`);
      recipients = group.members.filter((m) => m !== user);
    } else {
      throw new ZmqchatError("bad_request", "a signal goes to exactly one of a user (to) or a group");
    }
    const charged = this.buckets.take(user, this.now(), Math.max(1, recipients.length));
    if (!charged.ok)
      throw new RateLimitedError(
        `too many typing or presence signals; try again in ${charged.retryAfterMs} ms`,
        charged.retryAfterMs,
      );
    const frame = Buffer.from(
      JSON.stringify({ v: 1, type: "signal", from: user, to: b.to, group: b.group, sealed: b.sealed }),
    );
    for (const r of recipients)
      for (const topic of await this.topics(r)) this.publisher.publish(topic, frame);
    return { relayed: recipients.length };
  }
}
