import { ZmqchatError } from "../core/errors.js";
import { MAX_GROUP_MEMBERS } from "../core/protocol/limits.js";
import { TokenBuckets } from "../core/token-bucket.js";

/**
 * Server-side quotas. Where each is kept, and why that is enough:
 *
 * - Messages and bytes per sender per minute: token buckets in this server's memory (per
 *   server). Servers are stateless and many, and the balancer spreads one sender's requests
 *   over them, so a sender may reach up to N times the quota across N servers. That is
 *   acceptable: the quota is against flooding a store or a mailbox, and N is small and known;
 *   a store round trip per message to keep a global count would cost every message what only
 *   an abuser should pay. The balancer's per-session and per-connection request limits
 *   (balancer/rate-limit.ts) are the first, single-point bound.
 * - Groups per user and members per group: counted in the store at the time of the change
 *   (global). Two concurrent creations may both pass a count that was one below the quota;
 *   the overshoot is bounded by the concurrency of one user, which the rate limits bound.
 * - Mailbox quota: counted in the store (global), cached per server for a minute and counted
 *   up by this server's own appends meanwhile: other servers' appends within that minute are
 *   seen late, so a mailbox may pass its quota by what N servers store in a minute, which the
 *   per-sender rates bound.
 * - Registrations per source: at the balancer, the only process that sees the source.
 * - Sessionless requests (register, login, ...) must fit in frames the balancer parses in
 *   full (PUBLIC_FRAME_BYTES), so none can hide its type from the registration limit.
 */
export interface ServerQuotas {
  messagesPerMinute: number;
  bytesPerMinute: number;
  /** Groups one user may own. */
  groupsPerUser: number;
  /** Members (and pending invitations) of one group, its owner included. */
  membersPerGroup: number;
  /** Messages one mailbox may hold; a send to a full mailbox is refused (see MailboxQuota). */
  mailboxMessages: number;
  /** Requests one server works on at once; more are refused as `unavailable` (per server). */
  inFlightRequests: number;
  /** Bytes of request frames one server holds at once (per server): bounds its memory under 1 MiB frames. */
  inFlightBytes: number;
}

export const DEFAULT_SERVER_QUOTAS: ServerQuotas = {
  messagesPerMinute: 3000,
  bytesPerMinute: 64 * 1024 * 1024,
  groupsPerUser: 100,
  membersPerGroup: MAX_GROUP_MEMBERS,
  mailboxMessages: 1_000_000,
  inFlightRequests: 1000,
  inFlightBytes: 64 * 1024 * 1024,
};

/** Largest frame of a request without a session: the balancer parses frames this size in full. */
export const PUBLIC_FRAME_BYTES = 64 * 1024;

/** A refusal that tells the client when to try again. */
export class RateLimitedError extends ZmqchatError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super("rate_limited", message);
  }
}

/** Per-sender message and byte budgets of this server (see above for why per server). */
export class SenderQuota {
  private readonly messages: TokenBuckets;
  private readonly bytes: TokenBuckets;

  constructor(private readonly quotas: ServerQuotas) {
    this.messages = new TokenBuckets({
      rate: quotas.messagesPerMinute / 60,
      burst: quotas.messagesPerMinute,
    });
    this.bytes = new TokenBuckets({ rate: quotas.bytesPerMinute / 60, burst: quotas.bytesPerMinute });
  }

  /** Charges one message of `size` bytes to `sender`; throws RateLimitedError when over either budget. */
  charge(sender: string, size: number, now: number): void {
    const m = this.messages.take(sender, now);
    if (!m.ok) {
      throw new RateLimitedError(
        `${sender} sent over ${this.quotas.messagesPerMinute} messages in a minute; retry after ${m.retryAfterMs} ms`,
        m.retryAfterMs,
      );
    }
    const b = this.bytes.take(sender, now, size);
    if (!b.ok) {
      throw new RateLimitedError(
        `${sender} sent over ${this.quotas.bytesPerMinute} bytes in a minute; retry after ${b.retryAfterMs} ms`,
        b.retryAfterMs,
      );
    }
  }
}

/** A check decided without asking the store. */
const DONE: Promise<void> = Promise.resolve();

/** How long a mailbox's count is trusted before the store is asked again. */
const MAILBOX_COUNT_TTL_MS = 60_000;
/** Mailbox counts kept per server; beyond it, the oldest are forgotten (and asked again). */
const MAILBOX_COUNTS_KEPT = 50_000;

/** The mailbox quota: a send to a mailbox that holds `mailboxMessages` already is refused. */
export class MailboxQuota {
  private readonly counts = new Map<string, { n: number; at: number }>();

  constructor(
    private readonly quotas: ServerQuotas,
    private readonly size: (owner: string) => Promise<number>,
  ) {}

  /**
   * Refuses (forbidden) when one of `owners` is full, counting `reserved` copies (a `send.many`
   * batch's earlier envelopes, not stored yet) as if they were in: thrown at once when every
   * count was known, else as the promise's rejection. Call it inside the `try` that awaits it.
   */
  check(owners: string[], now: number, reserved?: ReadonlyMap<string, number>): Promise<void> {
    // Every count known and fresh (a live conversation): decided here, without a promise per owner.
    if (this.allFresh(owners, now)) {
      this.judge(owners.filter((o) => this.over(this.counts.get(o)!, o, reserved)));
      return DONE;
    }
    return this.checkAsking(owners, now, reserved);
  }

  private allFresh(owners: string[], now: number): boolean {
    for (const owner of owners) {
      const c = this.counts.get(owner);
      if (!c || now - c.at > MAILBOX_COUNT_TTL_MS) return false;
    }
    return true;
  }

  private over(c: { n: number }, owner: string, reserved?: ReadonlyMap<string, number>): boolean {
    return c.n + (reserved?.get(owner) ?? 0) >= this.quotas.mailboxMessages;
  }

  /** Throws forbidden naming the full mailboxes, if any. */
  private judge(full: string[]): void {
    if (full.length > 0) {
      throw new ZmqchatError(
        "forbidden",
        `the mailbox of ${full.sort().join(", ")} is full (${this.quotas.mailboxMessages} messages)`,
      );
    }
  }

  private async checkAsking(
    owners: string[],
    now: number,
    reserved?: ReadonlyMap<string, number>,
  ): Promise<void> {
    const full: string[] = [];
    await Promise.all(
      owners.map(async (owner) => {
        let c = this.counts.get(owner);
        if (!c || now - c.at > MAILBOX_COUNT_TTL_MS) {
          c = { n: await this.size(owner), at: now };
          this.counts.delete(owner);
          if (this.counts.size >= MAILBOX_COUNTS_KEPT)
            this.counts.delete(this.counts.keys().next().value as string);
          this.counts.set(owner, c);
        }
        if (this.over(c, owner, reserved)) full.push(owner);
      }),
    );
    this.judge(full);
  }

  /** Counts messages this server stored since it last asked the store. */
  stored(owners: string[]): void {
    for (const o of owners) {
      const c = this.counts.get(o);
      if (c) c.n++;
    }
  }
}

/** Refuses a sessionless request in a frame larger than the balancer reads in full. */
export function checkPublicFrame(type: string, frameBytes: number): void {
  if (frameBytes > PUBLIC_FRAME_BYTES) {
    throw new ZmqchatError("too_large", `a ${type} request must fit in ${PUBLIC_FRAME_BYTES} bytes`);
  }
}

/** Refuses a group change that would pass the member quota. */
export function checkGroupSize(quotas: ServerQuotas, group: string, size: number): void {
  if (size > quotas.membersPerGroup) {
    throw new ZmqchatError(
      "forbidden",
      `a group has at most ${quotas.membersPerGroup} members and invitations; ${group} would have ${size}`,
    );
  }
}

/** Refuses a new group when its owner owns the most allowed already. */
export function checkGroupsOwned(quotas: ServerQuotas, user: string, owned: number): void {
  if (owned >= quotas.groupsPerUser) {
    throw new ZmqchatError("forbidden", `${user} owns ${owned} groups, the most allowed`, {
      hint: "remove a group's members or ask the operator to raise ZMQCHAT_QUOTA_GROUPS_PER_USER",
    });
  }
}

/**
 * Reads the quotas from `ZMQCHAT_QUOTA_MESSAGES_PER_MINUTE`, `ZMQCHAT_QUOTA_BYTES_PER_MINUTE`,
 * `ZMQCHAT_QUOTA_GROUPS_PER_USER` and `ZMQCHAT_QUOTA_MEMBERS_PER_GROUP` (positive integers).
 */
export function serverQuotasFromEnv(env: NodeJS.ProcessEnv): ServerQuotas {
  const read = (name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number => {
    const text = env[name];
    if (text === undefined || text === "") return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new ZmqchatError("usage", `${name} must be a whole number from 1 to ${max}, not ${text}`);
    return n;
  };
  return {
    messagesPerMinute: read("ZMQCHAT_QUOTA_MESSAGES_PER_MINUTE", DEFAULT_SERVER_QUOTAS.messagesPerMinute),
    bytesPerMinute: read("ZMQCHAT_QUOTA_BYTES_PER_MINUTE", DEFAULT_SERVER_QUOTAS.bytesPerMinute),
    groupsPerUser: read("ZMQCHAT_QUOTA_GROUPS_PER_USER", DEFAULT_SERVER_QUOTAS.groupsPerUser),
    membersPerGroup: read(
      "ZMQCHAT_QUOTA_MEMBERS_PER_GROUP",
      DEFAULT_SERVER_QUOTAS.membersPerGroup,
      MAX_GROUP_MEMBERS,
    ),
    mailboxMessages: read("ZMQCHAT_QUOTA_MAILBOX_MESSAGES", DEFAULT_SERVER_QUOTAS.mailboxMessages),
    inFlightRequests: read("ZMQCHAT_SERVER_INFLIGHT_REQUESTS", DEFAULT_SERVER_QUOTAS.inFlightRequests),
    inFlightBytes: read("ZMQCHAT_SERVER_INFLIGHT_BYTES", DEFAULT_SERVER_QUOTAS.inFlightBytes),
  };
}
