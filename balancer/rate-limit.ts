import { ZmqchatError } from "../core/errors.js";
import { errorFrame } from "../core/protocol/frames.js";
import { type BucketRule, TokenBuckets } from "../core/token-bucket.js";

export { type BucketRule, TokenBuckets };

/** The balancer's request limits, each a token bucket. */
export interface RateLimits {
  /** Requests of one client connection (one DEALER), whatever they carry. */
  perConnection: BucketRule;
  /** Bytes of one client connection's requests: bounds what a flood of 1 MiB frames makes the balancer carry. */
  bytesPerConnection: BucketRule;
  /** Requests carrying one session token, across all of a user's connections to this balancer. */
  perSession: BucketRule;
  /** `register` requests of one source (one connection): names are cheap to take otherwise. */
  registrations: BucketRule;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  perConnection: { rate: 100, burst: 200 },
  bytesPerConnection: { rate: 4 * 1024 * 1024, burst: 16 * 1024 * 1024 },
  perSession: { rate: 200, burst: 400 },
  registrations: { rate: 10 / 60, burst: 10 },
};

/** Frames up to this size are parsed to find their type and session; larger ones are only scanned at the front. */
export const PARSED_FRAME_BYTES = 64 * 1024;

/**
 * `answer`: whether to send the refusal. A client that honours retry-after sees few refusals;
 * one that floods gets a few answers a second and the rest are dropped unanswered, so its
 * flood cannot fill the queue of replies that bystanders' replies wait in.
 */
export type Verdict =
  | { ok: true }
  | { ok: false; limit: keyof RateLimits; retryAfterMs: number; answer: boolean };

/** Refusals answered per connection: enough for every request a well-behaved client has in flight. */
const ANSWERED_REFUSALS: BucketRule = { rate: 10, burst: 50 };

/** What the balancer needs to know of a request frame to limit it. */
export interface FrameFacts {
  type: string | null;
  session: string | null;
}

/**
 * Reads the type and session of a request. Frames up to PARSED_FRAME_BYTES are parsed as
 * JSON, so what is read is what a server will read. Larger frames are scanned at the front
 * only, where clients put the session; a frame that hides its session deeper is limited per
 * connection only, and servers refuse sessionless requests in frames that large (see
 * server/limits.ts), so a `register` cannot slip past the registration limit that way.
 */
export function frameFacts(frame: Buffer): FrameFacts {
  const front = frontFacts(frame);
  if (front) return front;
  if (frame.length <= PARSED_FRAME_BYTES) {
    try {
      const raw = JSON.parse(frame.toString("utf8")) as { type?: unknown; session?: unknown } | null;
      return {
        type: typeof raw?.type === "string" ? raw.type.slice(0, 32) : null,
        session: typeof raw?.session === "string" ? raw.session.slice(0, 512) : null,
      };
    } catch {
      return { type: null, session: null };
    }
  }
  const head = frame.subarray(0, 1024).toString("latin1");
  const session = /"session":"([^"\\]{1,512})"/.exec(head)?.[1] ?? null;
  return { type: null, session };
}

/** The front of a request as clients write it (core/client/channel.ts): version, id, type, then the session if any. */
const FRONT = /^\{"v":1,"id":"[^"\\]{1,64}","type":"([a-z.]{1,32})"(?:,"session":"([^"\\]{1,512})")?[,}]/;
const BACKSLASH = 0x5c;

/**
 * The type and session read from the front of the frame without parsing the rest, when that is
 * certainly what a JSON parse would find: the front matches FRONT, and no later `"type"` or
 * `"session"` (a duplicate key, which JSON.parse would take instead) nor any backslash (an
 * escaped key, or whitespace tricks, cannot then hide one) occurs. Otherwise null, and the
 * frame is parsed. Parsing every frame cost the balancer about a tenth of its time per request.
 */
function frontFacts(frame: Buffer): FrameFacts | null {
  if (frame.indexOf(BACKSLASH) !== -1) return null;
  const m = FRONT.exec(frame.toString("latin1", 0, 700));
  if (!m) return null;
  const after = m[0].length;
  if (frame.indexOf('"type"', after) !== -1 || frame.indexOf('"session"', after) !== -1) return null;
  return { type: m[1]!, session: m[2] ?? null };
}

/** The balancer's three limits together: one call per request from a client. */
export class BalancerRateLimiter {
  private readonly connections: TokenBuckets;
  private readonly connectionBytes: TokenBuckets;
  private readonly sessions: TokenBuckets;
  private readonly registrations: TokenBuckets;
  private readonly answers = new TokenBuckets(ANSWERED_REFUSALS);

  constructor(readonly limits: RateLimits = DEFAULT_RATE_LIMITS) {
    this.connections = new TokenBuckets(limits.perConnection);
    this.connectionBytes = new TokenBuckets(limits.bytesPerConnection);
    this.sessions = new TokenBuckets(limits.perSession);
    this.registrations = new TokenBuckets(limits.registrations);
  }

  /** Decides whether the request `frame` from connection `peer` may pass at time `now` (ms). */
  admit(peer: string, frame: Buffer, now: number): Verdict {
    const refuse = (limit: keyof RateLimits, retryAfterMs: number): Verdict => ({
      ok: false,
      limit,
      retryAfterMs,
      answer: this.answers.take(peer, now).ok,
    });
    const c = this.connections.take(peer, now);
    if (!c.ok) return refuse("perConnection", c.retryAfterMs);
    const b = this.connectionBytes.take(peer, now, frame.length);
    if (!b.ok) return refuse("bytesPerConnection", b.retryAfterMs);
    const facts = frameFacts(frame);
    if (facts.session !== null) {
      const s = this.sessions.take(facts.session, now);
      if (!s.ok) return refuse("perSession", s.retryAfterMs);
    }
    if (facts.type === "register") {
      const r = this.registrations.take(peer, now);
      if (!r.ok) return refuse("registrations", r.retryAfterMs);
    }
    return { ok: true };
  }
}

/** The `rate_limited` error reply, with the wait the client should honour before retrying. */
export function rateLimitedReply(id: string | null, verdict: Extract<Verdict, { ok: false }>): Buffer {
  const what = {
    perConnection: "requests on this connection",
    bytesPerConnection: "bytes on this connection",
    perSession: "requests of this session",
    registrations: "registrations from this source",
  }[verdict.limit];
  return errorFrame(id, {
    code: "rate_limited",
    message: `too many ${what}; retry after ${verdict.retryAfterMs} ms`,
    retryAfterMs: verdict.retryAfterMs,
  });
}

const RULE = /^(\d+(?:\.\d+)?)\/(s|min)(?::(\d+))?$/;

/**
 * Reads the limits from the environment (`ZMQCHAT_RATE_CONNECTION`, `ZMQCHAT_RATE_CONNECTION_BYTES`,
 * `ZMQCHAT_RATE_SESSION`, `ZMQCHAT_RATE_REGISTRATIONS`), each `RATE/s[:BURST]` or `RATE/min[:BURST]`, e.g. `100/s:200`
 * (burst defaults to one second's or one minute's worth); defaults otherwise.
 */
export function rateLimitsFromEnv(env: NodeJS.ProcessEnv): RateLimits {
  const read = (name: string, fallback: BucketRule): BucketRule => {
    const text = env[name];
    if (text === undefined || text === "") return fallback;
    const m = RULE.exec(text.trim());
    const perUnit = Number(m?.[1]);
    const burst = m?.[3] === undefined ? Math.max(1, Math.ceil(perUnit)) : Number(m[3]);
    if (!m || !(perUnit > 0) || !(burst >= 1)) {
      throw new ZmqchatError(
        "usage",
        `${name} must be RATE/s[:BURST] or RATE/min[:BURST] with RATE > 0, e.g. 100/s:200, not ${text}`,
      );
    }
    return { rate: m[2] === "min" ? perUnit / 60 : perUnit, burst };
  };
  return {
    perConnection: read("ZMQCHAT_RATE_CONNECTION", DEFAULT_RATE_LIMITS.perConnection),
    bytesPerConnection: read("ZMQCHAT_RATE_CONNECTION_BYTES", DEFAULT_RATE_LIMITS.bytesPerConnection),
    perSession: read("ZMQCHAT_RATE_SESSION", DEFAULT_RATE_LIMITS.perSession),
    registrations: read("ZMQCHAT_RATE_REGISTRATIONS", DEFAULT_RATE_LIMITS.registrations),
  };
}
