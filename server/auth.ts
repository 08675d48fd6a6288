import { createHmac, randomBytes, timingSafeEqual, verify } from "node:crypto";
import { PublicKeyCache } from "../core/crypto/keys.js";
import { loginChallengeBytes } from "../core/crypto/login.js";
import { ZmqchatError } from "../core/errors.js";

/** After a topic period ends, deliveries also go to the old topic this long, while clients move over. */
const TOPIC_GRACE_MS = 15 * 60_000;

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * Stateless authentication: challenges, session tokens and delivery topics are all HMACs under
 * the cluster secret, so any server can check what any other server issued.
 */
export class Authority {
  private readonly keys = new PublicKeyCache();

  constructor(
    private readonly secret: Buffer,
    private readonly clock: Clock = systemClock,
    private readonly sessionTtlMs = 12 * 3600_000,
    private readonly challengeTtlMs = 30_000,
    private readonly topicPeriodMs = 24 * 3600_000,
  ) {
    if (secret.length < 16) throw new ZmqchatError("usage", "the cluster secret must be at least 16 bytes");
  }

  challenge(name: string): { nonce: string; expires: number; mac: string } {
    const nonce = randomBytes(18).toString("base64url");
    const expires = this.clock.now() + this.challengeTtlMs;
    return { nonce, expires, mac: this.mac(`challenge\n${name}\n${nonce}\n${expires}`) };
  }

  /** Checks a signed challenge; returns the new session. Throws unauthorized on any mismatch. */
  login(
    req: { name: string; nonce: string; expires: number; mac: string; sig: string },
    signKey: string,
  ): { session: string; expires: string; topic: string; topicExpires: string } {
    if (!this.equal(req.mac, this.mac(`challenge\n${req.name}\n${req.nonce}\n${req.expires}`))) {
      throw new ZmqchatError("unauthorized", "the login challenge was not issued by this cluster");
    }
    if (req.expires < this.clock.now())
      throw new ZmqchatError("unauthorized", "the login challenge has expired");
    let good = false;
    try {
      good = verify(
        null,
        loginChallengeBytes(req.name, req.nonce, req.expires),
        this.keys.signKey(signKey),
        Buffer.from(req.sig, "base64url"),
      );
    } catch {
      good = false;
    }
    if (!good) throw new ZmqchatError("unauthorized", `the login signature does not match ${req.name}'s key`);
    const exp = this.clock.now() + this.sessionTtlMs;
    const payload = `${req.name}.${exp}`;
    return {
      session: `${payload}.${this.mac(`session\n${payload}`)}`,
      expires: new Date(exp).toISOString(),
      topic: this.topic(req.name),
      topicExpires: new Date((this.epoch() + 1) * this.topicPeriodMs).toISOString(),
    };
  }

  /** Returns the user a session token belongs to; throws unauthorized when forged or expired. */
  check(session: string | undefined): string {
    if (!session) throw new ZmqchatError("unauthorized", "log in first: this request needs a session");
    const parts = session.split(".");
    if (parts.length !== 3) throw new ZmqchatError("unauthorized", "the session token is malformed");
    const [name, exp, mac] = parts as [string, string, string];
    if (!this.equal(mac, this.mac(`session\n${name}.${exp}`))) {
      throw new ZmqchatError("unauthorized", "the session token is not valid");
    }
    if (Number(exp) < this.clock.now())
      throw new ZmqchatError("unauthorized", "the session has expired; log in again");
    return name;
  }

  /**
   * A user's delivery topic for one period (a day): 64 hex characters nobody can compute
   * without the cluster secret, and that stops working when the period ends, so a leaked topic
   * is worth a day at most. Clients log in again for the next one.
   */
  topic(name: string, epoch = this.epoch()): string {
    const key = `${name}\n${epoch}`;
    let t = this.topics.get(key);
    if (!t) {
      t = createHmac("sha256", this.secret).update(`topic\n${name}\n${epoch}`).digest("hex");
      if (this.topics.size > 100_000) this.topics.clear();
      this.topics.set(key, t);
    }
    return t;
  }

  /** Where to publish a user's delivery: this period's topic, and the last one's during a grace time after the change. */
  deliveryTopics(name: string): string[] {
    const now = this.clock.now();
    const epoch = this.epoch(now);
    const intoPeriod = now - epoch * this.topicPeriodMs;
    return intoPeriod < TOPIC_GRACE_MS
      ? [this.topic(name, epoch), this.topic(name, epoch - 1)]
      : [this.topic(name, epoch)];
  }

  private epoch(now = this.clock.now()): number {
    return Math.floor(now / this.topicPeriodMs);
  }

  private readonly topics = new Map<string, string>();

  private mac(text: string): string {
    return createHmac("sha256", this.secret).update(text).digest("base64url");
  }

  private equal(a: string, b: string): boolean {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  }
}
