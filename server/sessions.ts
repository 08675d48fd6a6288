import { setTimeout as delay } from "node:timers/promises";
import { ZmqchatError } from "../core/errors.js";
import { type Authority, keyTag, type RequestContext, type SessionClaims } from "./auth.js";
import type { Store } from "./store/store.js";

/** Revocations of key generations last for good: a session of an earlier key never comes back. */
const FOREVER = Number.MAX_SAFE_INTEGER;

/** How long a server reuses a user's revocations it read (an InfluxDB query costs ~1.5 ms). */
export const DEFAULT_REVOCATION_CACHE_MS = 1000;

/** Most users whose revocations are cached at once. */
const CACHE_USERS = 50_000;

/**
 * Sessions with a memory, kept in the store so that every server honours it: a login challenge
 * is used once, `logout` ends a device's (or every) session, and a key rotation ends every
 * session made with the earlier key. Tokens stay HMACs any server can check; the store is
 * asked only what was ended.
 */
/** Refusals of a used login challenge held back at once, per user and in all (holdRefusal). */
export const HELD_REFUSALS_PER_USER = 4;
export const HELD_REFUSALS = 64;

export class SessionManager {
  /**
   * Revocations read from the store are reused for `cacheMs` (real time), and a logout or key
   * rotation is acknowledged only `cacheMs` after the store made it visible to every server:
   * once acknowledged, no server holds a copy from before it.
   */
  constructor(
    private readonly auth: Authority,
    private readonly store: Store,
    private readonly cacheMs = DEFAULT_REVOCATION_CACHE_MS,
  ) {}

  private readonly cache = new Map<string, { at: number; ended: Map<string, number> }>();
  /** Refusals of a used challenge being held back now: in all, and per user. */
  private held = 0;
  private readonly heldOf = new Map<string, number>();

  private async revocations(name: string): Promise<Map<string, number>> {
    if (this.cacheMs <= 0) return this.store.sessionRevocations(name);
    const now = performance.now();
    const hit = this.cache.get(name);
    if (hit && now - hit.at < this.cacheMs) return hit.ended;
    const ended = await this.store.sessionRevocations(name);
    if (this.cache.size >= CACHE_USERS) this.cache.clear();
    // Stamped with the time the read started: it may be older than what it holds, never younger.
    this.cache.set(name, { at: now, ended });
    return ended;
  }

  private async revoke(name: string, scope: string, before: number): Promise<void> {
    await this.store.revokeSessions(name, scope, before);
    this.cache.delete(name);
    if (this.cacheMs > 0) await delay(this.cacheMs);
  }

  /**
   * A signed login: the signature first (no store write for a forgery), then `admit` (the
   * device registry), which uses the challenge up by calling `claim` when it must happen before
   * a store write of its own; otherwise the challenge is used up after it. `admit` resolves to
   * how long until every server's device list holds the device (`settleMs` in the reply when
   * not 0; server/devices.ts). A resend of a login whose first attempt is still in `admit` is
   * refused only after a hold (holdRefusal), so the client's first answer is the session, not
   * "already used".
   */
  async login(
    req: Parameters<Authority["login"]>[0],
    signKey: string,
    admit: (claim: () => Promise<void>) => Promise<number> = async () => 0,
  ): Promise<ReturnType<Authority["login"]> & { lifetimeMs: number; settleMs?: number }> {
    const session = this.auth.login(req, signKey);
    let claimed = false;
    const claim = async () => {
      if (claimed) return;
      claimed = true;
      if (!(await this.store.claimOnce(req.nonce, req.expires))) {
        // Most often the resend of a login whose first attempt (maybe on another server) was
        // slow or lost its answer: answered later than that attempt can be, so the client's
        // first answer is its session. A replay only gets its refusal later.
        await this.holdRefusal(req.name);
        throw new ZmqchatError("unauthorized", "this login challenge was already used; log in again");
      }
    };
    const settleMs = await admit(claim);
    await claim();
    return { ...session, lifetimeMs: this.auth.sessionTtlMs, ...(settleMs > 0 ? { settleMs } : {}) };
  }

  /**
   * Waits twice the cache time before a used challenge is refused, for at most
   * HELD_REFUSALS_PER_USER of one user and HELD_REFUSALS in all at once; beyond that the refusal
   * is at once. A resend is one or two per login; a user replaying their own login in a flood
   * would otherwise hold the server's in-flight slots (1,000) for 2 s each and starve everyone.
   */
  private async holdRefusal(name: string): Promise<void> {
    const mine = this.heldOf.get(name) ?? 0;
    if (this.cacheMs <= 0 || this.held >= HELD_REFUSALS || mine >= HELD_REFUSALS_PER_USER) return;
    this.held++;
    this.heldOf.set(name, mine + 1);
    try {
      await delay(2 * this.cacheMs);
    } finally {
      this.held--;
      const left = (this.heldOf.get(name) ?? 1) - 1;
      if (left > 0) this.heldOf.set(name, left);
      else this.heldOf.delete(name);
    }
  }

  /**
   * A token's claims, once its MAC, expiry, binding (the request's proof of the device's CURVE
   * key, when the session is bound and `request` is given) and every revocation of its user are checked.
   */
  async check(token: string | undefined, request?: RequestContext): Promise<SessionClaims> {
    const claims = this.verifyToken(token);
    if (request) this.auth.checkBinding(token!, claims, request);
    const ended = await this.revocations(claims.name);
    for (const scope of ["*", `device:${claims.device}`, `key:${claims.keyTag}`]) {
      const before = ended.get(scope);
      if (before !== undefined && claims.issued < before) {
        throw new ZmqchatError(
          "unauthorized",
          scope.startsWith("key:")
            ? "this session was made for keys that have since been rotated; log in again"
            : "this session was ended by a logout; log in again",
        );
      }
    }
    return claims;
  }

  /**
   * A token's MAC checked once, its claims remembered until it expires: a token is immutable,
   * so the HMAC and parse per request (about 50 µs) are spent once per token.
   */
  private verifyToken(token: string | undefined): SessionClaims {
    const hit = token === undefined ? undefined : this.verified.get(token);
    if (hit && hit.expires >= this.auth.now()) return hit;
    const claims = this.auth.verify(token);
    if (this.verified.size >= CACHE_USERS) this.verified.clear();
    this.verified.set(token!, claims);
    return claims;
  }

  private readonly verified = new Map<string, SessionClaims>();

  /** A fresh token for a checked session, without a new signed login. */
  renew(claims: SessionClaims): { session: string; expires: string; lifetimeMs: number } {
    return { ...this.auth.renew(claims), lifetimeMs: this.auth.sessionTtlMs };
  }

  /** Ends the sessions (this one included, even if issued this very millisecond) of the device this session came from, or (all) every session of its user. */
  async logout(claims: SessionClaims, all: boolean): Promise<void> {
    await this.revoke(claims.name, all ? "*" : `device:${claims.device}`, this.auth.now() + 1);
  }

  /** A revoked device: its sessions end, and every session it could ever get (server/devices.ts). */
  async endDevice(name: string, device: string): Promise<void> {
    await this.revoke(name, `device:${device}`, FOREVER);
  }

  /** True when `device` of `name` was revoked for good (endDevice). */
  async deviceEnded(name: string, device: string): Promise<boolean> {
    return ((await this.revocations(name)).get(`device:${device}`) ?? 0) >= FOREVER;
  }

  /** After a key rotation: every session made with the earlier signing key ends. */
  async endKeyGeneration(name: string, oldSignKey: string): Promise<void> {
    await this.revoke(name, `key:${keyTag(oldSignKey)}`, FOREVER);
  }
}
