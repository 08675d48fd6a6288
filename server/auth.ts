import {
  createHash,
  createHmac,
  createPublicKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
  verify,
} from "node:crypto";
import { loginChallengeBytes } from "../core/crypto/login.js";
import {
  bindingKey,
  loginBindingProof,
  proofsEqual,
  requestBindingProof,
  x25519Private,
  x25519PublicRaw,
} from "../core/crypto/session-binding.js";
import { ZmqchatError } from "../core/errors.js";
import { TOPIC_ID_BYTES, taggedTopic, topicTagKey } from "../core/protocol/topics.js";

/** After a topic period ends, deliveries also go to the old topic this long, while clients move over. */
const TOPIC_GRACE_MS = 15 * 60_000;

/** Login signing keys a server keeps parsed (Authority.loginKey). */
const LOGIN_KEYS_KEPT = 1024;

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Default session lifetime: short, because clients renew over the live link (session.renew). */
export const DEFAULT_SESSION_TTL_MS = 10 * 60_000;

/** What a session token says: who, from which device, with which key generation, issued and expiring when. */
export interface SessionClaims {
  name: string;
  /** The device id the client gave at login ("-" when none): the scope of `logout`. */
  device: string;
  /** The key generation the session was made for: a tag of the signing key that signed the login. */
  keyTag: string;
  /** Issued at (ms since the epoch): revocations end sessions issued before their time. */
  issued: number;
  expires: number;
  /** The device's CURVE public key (raw, base64url) when the session is bound to it. */
  curve?: string;
}

/** What a request of a bound session must prove: the fields its binding proof covers. */
export interface RequestContext {
  id: string;
  type: string;
  body: unknown;
  proof: string | undefined;
}

/** A short, stable tag of a signing key: names the key generation a session belongs to. */
export function keyTag(signKey: string): string {
  return createHash("sha256").update(`zmqchat-keytag\n${signKey}`).digest("base64url").slice(0, 16);
}

/**
 * Stateless authentication: challenges, session tokens and delivery topics are all HMACs under
 * the cluster secret, so any server can check what any other server issued.
 */
export class Authority {
  /**
   * Signing keys of recent logins. Bounded: a key is used once per login (sessions renew without
   * one), and each kept key is about 0.9 KiB of native memory, which for every user who ever
   * logged in made a server's memory grow with its users (bench scale, idle clients).
   */
  private readonly loginKeys = new Map<string, KeyObject>();

  constructor(
    private readonly secret: Buffer,
    private readonly clock: Clock = systemClock,
    readonly sessionTtlMs = DEFAULT_SESSION_TTL_MS,
    private readonly challengeTtlMs = 30_000,
    private readonly topicPeriodMs = 24 * 3600_000,
  ) {
    if (secret.length < 16) throw new ZmqchatError("usage", "the cluster secret must be at least 16 bytes");
    // One X25519 key for the whole cluster, from the shared secret: any server can check a binding.
    this.bindPrivate = x25519Private(
      Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), "zmqchat-session-binding-x25519", 32)),
    );
    this.bindPublic = x25519PublicRaw(this.bindPrivate);
    this.tagKey = topicTagKey(secret);
  }

  /** The key of delivery topics' tags (core/protocol/topics.ts): the balancers hold it too. */
  private readonly tagKey: Buffer;

  private readonly bindPrivate: KeyObject;
  private readonly bindPublic: Buffer;
  private readonly bindKeys = new Map<string, Buffer>();

  /** The key shared with a device's CURVE key (cached: one X25519 per device, not per request). */
  private bindingKeyFor(curve: string): Buffer {
    let k = this.bindKeys.get(curve);
    if (!k) {
      const raw = Buffer.from(curve, "base64url");
      if (raw.length !== 32) throw new ZmqchatError("unauthorized", "the session's device key is malformed");
      k = bindingKey(this.bindPrivate, raw, raw, this.bindPublic);
      if (this.bindKeys.size > 10_000) this.bindKeys.clear();
      this.bindKeys.set(curve, k);
    }
    return k;
  }

  /** Checks the proof of possession a request of a session bound to a CURVE key carries. */
  checkBinding(session: string, claims: SessionClaims, ctx: RequestContext): void {
    if (!claims.curve) return;
    const want = requestBindingProof(this.bindingKeyFor(claims.curve), ctx.id, ctx.type, session, ctx.body);
    if (!ctx.proof || !proofsEqual(ctx.proof, want))
      throw new ZmqchatError(
        "unauthorized",
        "this session is bound to another device's CURVE key; log in from your own device",
      );
  }

  private loginKey(raw: string): KeyObject {
    let k = this.loginKeys.get(raw);
    if (!k) {
      k = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw }, format: "jwk" });
      if (this.loginKeys.size >= LOGIN_KEYS_KEPT) this.loginKeys.delete(this.loginKeys.keys().next().value!);
      this.loginKeys.set(raw, k);
    }
    return k;
  }

  /** This authority's time (ms since the epoch). */
  now(): number {
    return this.clock.now();
  }

  challenge(name: string): { nonce: string; expires: number; mac: string; bind: string } {
    const nonce = randomBytes(18).toString("base64url");
    const expires = this.clock.now() + this.challengeTtlMs;
    return {
      nonce,
      expires,
      mac: this.mac(`challenge\n${name}\n${nonce}\n${expires}`),
      bind: this.bindPublic.toString("base64url"),
    };
  }

  /**
   * Checks a signed challenge; returns the new session. Throws unauthorized on any mismatch.
   * Single use is the caller's part (SessionManager claims the nonce in the store).
   */
  login(
    req: {
      name: string;
      nonce: string;
      expires: number;
      mac: string;
      sig: string;
      device?: string;
      curve?: string;
      curveProof?: string;
    },
    signKey: string,
  ): {
    session: string;
    expires: string;
    topic: string;
    batchTopic: string;
    topicExpires: string;
    bound: boolean;
  } {
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
        this.loginKey(signKey),
        Buffer.from(req.sig, "base64url"),
      );
    } catch {
      good = false;
    }
    if (!good)
      throw new ZmqchatError(
        "unauthorized",
        `the login signature does not match ${req.name}'s key (if another device of yours revoked a device, your keys rotated: zmqchat devices fetch-keys)`,
      );
    if (req.curve !== undefined) {
      const want = loginBindingProof(this.bindingKeyFor(req.curve), req.nonce);
      if (!req.curveProof || !proofsEqual(req.curveProof, want))
        throw new ZmqchatError("unauthorized", "the login does not prove the device's CURVE key");
    }
    const now = this.clock.now();
    const session = this.issue({
      name: req.name,
      device: req.device ?? "-",
      keyTag: keyTag(signKey),
      issued: now,
      expires: now + this.sessionTtlMs,
      ...(req.curve !== undefined ? { curve: req.curve } : {}),
    });
    return {
      ...session,
      bound: req.curve !== undefined,
      topic: this.topic(req.name, this.epoch(), req.device ?? "-"),
      batchTopic: this.topic(req.name, this.epoch(), req.device ?? "-", true),
      topicExpires: new Date((this.epoch() + 1) * this.topicPeriodMs).toISOString(),
    };
  }

  /** A fresh token for the same user, device and key generation (the caller checked the old one and its revocations). */
  renew(claims: SessionClaims): { session: string; expires: string } {
    const now = this.clock.now();
    return this.issue({ ...claims, issued: now, expires: now + this.sessionTtlMs });
  }

  private issue(c: SessionClaims): { session: string; expires: string } {
    const payload = Buffer.from(
      JSON.stringify({ u: c.name, d: c.device, k: c.keyTag, i: c.issued, e: c.expires, c: c.curve }),
    ).toString("base64url");
    return {
      session: `s2.${payload}.${this.mac(`session-v2\n${payload}`)}`,
      expires: new Date(c.expires).toISOString(),
    };
  }

  /** Returns the user a session token belongs to; throws unauthorized when forged or expired. */
  check(session: string | undefined): string {
    return this.verify(session).name;
  }

  /**
   * What a session token says, once its MAC and expiry are checked. Revocations (logout, key
   * rotation) are in the store: SessionManager checks those.
   */
  verify(session: string | undefined): SessionClaims {
    if (!session) throw new ZmqchatError("unauthorized", "log in first: this request needs a session");
    const parts = session.split(".");
    if (parts.length !== 3 || parts[0] !== "s2")
      throw new ZmqchatError("unauthorized", "the session token is malformed; log in again");
    const [, payload, mac] = parts as [string, string, string];
    if (!this.equal(mac, this.mac(`session-v2\n${payload}`))) {
      throw new ZmqchatError("unauthorized", "the session token is not valid");
    }
    let c: { u?: unknown; d?: unknown; k?: unknown; i?: unknown; e?: unknown; c?: unknown };
    try {
      c = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as typeof c;
    } catch {
      throw new ZmqchatError("unauthorized", "the session token is malformed");
    }
    if (
      typeof c.u !== "string" ||
      typeof c.d !== "string" ||
      typeof c.k !== "string" ||
      typeof c.i !== "number" ||
      typeof c.e !== "number" ||
      (c.c !== undefined && typeof c.c !== "string")
    )
      throw new ZmqchatError("unauthorized", "the session token is malformed");
    if (c.e < this.clock.now())
      throw new ZmqchatError("unauthorized", "the session has expired; log in again");
    return {
      name: c.u,
      device: c.d,
      keyTag: c.k,
      issued: c.i,
      expires: c.e,
      ...(typeof c.c === "string" ? { curve: c.c } : {}),
    };
  }

  /**
   * A user's delivery topic for one period (a day): 64 hex characters nobody can compute
   * without the cluster secret, and that stops working when the period ends, so a leaked topic
   * is worth a day at most. Clients log in again for the next one.
   */
  topic(name: string, epoch = this.epoch(), device = "-", batched = false, legacy = false): string {
    const key = `${name}\n${epoch}\n${device}\n${batched}\n${legacy}`;
    let t = this.topics.get(key);
    if (!t) {
      // Each device has its own topic (server/devices.ts); "-" (a login without a device id) keeps the user's.
      const what = device === "-" ? `topic\n${name}\n${epoch}` : `topic-device\n${name}\n${device}\n${epoch}`;
      // The batched topic (deliveries several to a frame, server/delivery-publisher.ts) is a MAC
      // under a label of its own: as unguessable as the plain one, and never a prefix of it.
      const mac = createHmac("sha256", this.secret)
        .update(batched ? `batched\n${what}` : what)
        .digest();
      // Its first 16 bytes and their tag, which a balancer checks (core/protocol/topics.ts).
      // The whole MAC was the topic before tagged topics: still published to while a client
      // logged in before them holds one (deliveryTopics, `legacy`).
      t = legacy ? mac.toString("hex") : taggedTopic(this.tagKey, mac.subarray(0, TOPIC_ID_BYTES));
      if (this.topics.size > 100_000) this.topics.clear();
      this.topics.set(key, t);
    }
    return t;
  }

  /**
   * Where to publish a user's delivery: this period's topic, and the last one's during a grace
   * time after the change. `batched`: the topics of clients that take several deliveries a frame.
   * `legacy`: the topics logins gave before tagged topics (published to only while a balancer
   * holds a subscription to one: server/delivery-publisher.ts).
   */
  deliveryTopics(
    name: string,
    devices: readonly string[] = ["-"],
    batched = false,
    legacy = false,
  ): string[] {
    const now = this.clock.now();
    const epoch = this.epoch(now);
    const intoPeriod = now - epoch * this.topicPeriodMs;
    const epochs = intoPeriod < TOPIC_GRACE_MS ? [epoch, epoch - 1] : [epoch];
    return devices.flatMap((d) => epochs.map((e) => this.topic(name, e, d, batched, legacy)));
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
