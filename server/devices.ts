import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { ZmqchatError } from "../core/errors.js";
import type { DeviceInfo } from "../core/protocol/devices.js";
import type { RequestBody } from "../core/protocol/schema.js";
import { TokenBuckets } from "../core/token-bucket.js";
import type { Authority, SessionClaims } from "./auth.js";
import { RateLimitedError } from "./limits.js";
import type { SessionManager } from "./sessions.js";
import type { DeviceRecord, Store } from "./store/store.js";

/** One device's live topics: one delivery a frame (`plain`) and several a frame (`batched`). */
export interface DeviceTopics {
  device: string;
  plain: string[];
  batched: string[];
  /**
   * The topics logins gave before tagged topics (server/auth.ts), plain and batched: a client
   * logged in before an upgrade still holds one until its next login. Published to only while a
   * balancer holds a subscription to it (server/delivery-publisher.ts).
   */
  legacyPlain: string[];
  legacyBatched: string[];
}
/** How long a link code's sealed identity is kept at most. */
export const LINK_TTL_MAX_MS = 10 * 60_000;
/** Wrong proofs a link code survives; the next one makes it void. */
export const LINK_MISSES = 5;
/** How long the keys pushed to a device after a revocation wait for it. */
const REKEY_TTL_MS = 30 * 24 * 3600_000;
/** A login updates `lastSeen` when the one stored is older than this (one store write per minute, not per login). */
const SEEN_EVERY_MS = 60_000;
/** Most users whose device lists are cached at once. */
const CACHE_USERS = 50_000;

/** What travels in a link drop: only the proof's hash, the sealed identity and who it is for. */
interface LinkDrop {
  verifier: string;
  blob: string;
  device: string;
  deviceName: string;
  /** Names this drop's one-time tokens (its use and its misses). */
  nonce: string;
  expires: number;
}

/**
 * Several devices per user (issue #19): the device registry (each device its own id, name,
 * sessions and delivery topic), revocation, the link-code relay and the key push after a
 * revocation. The server never sees a key in clear: what it relays is sealed by the clients
 * (core/client/devices.ts).
 */
export class DeviceRegistry {
  private readonly cache = new Map<string, { at: number; devices: DeviceRecord[] }>();
  /** link.get attempts per user name, per server: bounds online guessing of a code. */
  private readonly linkTries = new TokenBuckets({ rate: 20 / 60, burst: 20 });
  /** link.put per user, per server: bounds the drops one session can pile up. */
  private readonly linkPuts = new TokenBuckets({ rate: 10 / 60, burst: 10 });

  /**
   * Device lists read from the store are reused for `cacheMs` (real time). A revoked device (and
   * one added by a link code) is acknowledged only `cacheMs` after the store took it, so once
   * acknowledged every server publishes to the device list that leaves out (or includes) it. A
   * device's first login is answered at once, with `cacheMs` as the time after which every
   * server's list holds it (`admit`): the client syncs once then (core/client/client.ts).
   */
  constructor(
    private readonly store: Store,
    private readonly auth: Authority,
    private readonly sessions: SessionManager,
    private readonly cacheMs = 1000,
  ) {}

  /** The user's devices as the store has them, with revocations from the session store applied. */
  private async fresh(name: string): Promise<DeviceRecord[]> {
    const devices = await this.store.listDevices(name);
    const out: DeviceRecord[] = [];
    for (const d of devices) {
      // A record written by a racing login may have lost the revocation; the session store's is for good.
      const ended = d.revoked === null && (await this.sessions.deviceEnded(name, d.id));
      out.push(ended ? { ...d, revoked: this.auth.now() } : d);
    }
    return out;
  }

  private async devicesOf(name: string): Promise<DeviceRecord[]> {
    const now = performance.now();
    const hit = this.cache.get(name);
    if (hit && now - hit.at < this.cacheMs) return hit.devices;
    const devices = await this.fresh(name);
    if (this.cache.size >= CACHE_USERS) this.cache.clear();
    this.cache.set(name, { at: now, devices });
    return devices;
  }

  private async changed(name: string): Promise<void> {
    this.cache.delete(name);
    if (this.cacheMs > 0) await delay(this.cacheMs);
  }

  /**
   * Where a frame for `owner` is published (a group notice, a signal): both topics of every live
   * device (the user's own before any device logged in), so that a client on either gets it.
   */
  async topics(owner: string): Promise<string[]> {
    const devices = await this.deliveryTopics(owner);
    return [...devices.flatMap((d) => d.plain), ...devices.flatMap((d) => d.batched)];
  }

  /**
   * Where a delivery to `owner` is published: every live device's plain topic, one delivery a
   * frame (clients before batched topics), and its batched topic (server/delivery-publisher.ts).
   */
  async deliveryTopics(owner: string): Promise<DeviceTopics[]> {
    const live = (await this.devicesOf(owner)).filter((d) => d.revoked === null).map((d) => d.id);
    const devices = live.length > 0 ? live : ["-"];
    return devices.map((device) => ({
      device,
      plain: this.auth.deliveryTopics(owner, [device]),
      batched: this.auth.deliveryTopics(owner, [device], true),
      legacyPlain: this.auth.deliveryTopics(owner, [device], false, true),
      legacyBatched: this.auth.deliveryTopics(owner, [device], true, true),
    }));
  }

  /**
   * After a good login signature: refuses a revoked device, registers a device seen for the
   * first time (a profile made by `register` or `keys restore`) and notes when it was last seen.
   * Resolves to how many ms from now every server's cached device list holds the device: 0 for a
   * device seen before; for a new one (or one not yet seen settled) the cache time. Until then a
   * server may still publish the user's deliveries without this device's topics, so a client
   * that listens syncs once after it; a one-shot command waits for nothing (a device's first
   * login waited out the caches here before answering: each new profile's first command took
   * a second longer).
   */
  async admit(name: string, device: string, claim: () => Promise<void> = async () => {}): Promise<number> {
    if (await this.sessions.deviceEnded(name, device)) throw revokedError(name);
    const now = this.auth.now();
    const rec = (await this.store.listDevices(name)).find((d) => d.id === device);
    if (rec?.revoked) throw revokedError(name);
    if (!rec) {
      // The challenge is used up before anything is registered: the device id is not signed,
      // so a replayed login must not add devices.
      await claim();
      const added: DeviceRecord = {
        id: device,
        name: device === "-" ? "unnamed" : `device ${device.slice(0, 4)}`,
        added: now,
        lastSeen: null,
        revoked: null,
        key: null,
        keySig: null,
      };
      await this.store.putDevice(name, added);
      return this.settling(name, added);
    }
    if (rec.lastSeen === null) {
      // Never seen settled: registered by a link code (which waited already), or by a login
      // less than the cache time ago, or by one whose server died before noting it seen.
      // Counting from this read is safe in all of them, whatever the servers' clocks say:
      // every list read after it holds the device.
      return this.settling(name, rec);
    }
    if (now - rec.lastSeen >= SEEN_EVERY_MS) {
      await this.store.putDevice(name, { ...rec, lastSeen: now });
      this.cache.delete(name);
    }
    return 0;
  }

  /**
   * A device the store holds but the servers' cached lists may not yet: notes it seen once they
   * all do (in the background: a server that stops first leaves it unseen, and the next login
   * counts the cache time again) and returns how long that is.
   */
  private async settling(name: string, rec: DeviceRecord): Promise<number> {
    this.cache.delete(name);
    if (this.cacheMs <= 0) {
      await this.seen(name, rec);
      return 0;
    }
    setTimeout(() => {
      this.seen(name, rec).catch(() => {
        // The store is away or closed: the next login of the device notes it.
      });
    }, this.cacheMs).unref();
    return this.cacheMs;
  }

  /** Notes the device seen now, unless another login of it did so meanwhile. */
  private async seen(name: string, rec: DeviceRecord): Promise<void> {
    const cur = (await this.store.listDevices(name)).find((d) => d.id === rec.id);
    if (cur && cur.revoked === null && cur.lastSeen === null)
      await this.store.putDevice(name, { ...cur, lastSeen: this.auth.now() });
    this.cache.delete(name);
  }

  async list(c: SessionClaims): Promise<{ devices: DeviceInfo[]; current: string }> {
    const devices = (await this.fresh(c.name)).map((d) => ({
      id: d.id,
      name: d.name,
      added: new Date(d.added).toISOString(),
      lastSeen: d.lastSeen === null ? null : new Date(d.lastSeen).toISOString(),
      revoked: d.revoked === null ? null : new Date(d.revoked).toISOString(),
    }));
    return { devices, current: c.device };
  }

  /** Names the caller's device; registers its key once (a key, once set, is never replaced). */
  async hello(c: SessionClaims, b: RequestBody<"devices.hello">): Promise<{ id: string }> {
    const rec = (await this.store.listDevices(c.name)).find((d) => d.id === c.device);
    if (!rec) throw new ZmqchatError("not_found", "this device is not registered; log in again");
    const next = { ...rec };
    if (b.name !== undefined) next.name = b.name;
    if (b.key !== undefined && rec.key === null) {
      if (b.keySig === undefined) throw new ZmqchatError("bad_request", "a device key needs its signature");
      next.key = b.key;
      next.keySig = b.keySig;
    }
    if (next.name !== rec.name || next.key !== rec.key) await this.store.putDevice(c.name, next);
    return { id: c.device };
  }

  /** Renames one of the caller's devices (any but a revoked one: its record stays as it was cut off). */
  async rename(c: SessionClaims, b: RequestBody<"devices.rename">): Promise<{ id: string; name: string }> {
    const rec = (await this.fresh(c.name)).find((d) => d.id === b.id);
    if (!rec) throw new ZmqchatError("not_found", `${c.name} has no device ${b.id}`);
    if (rec.revoked !== null) throw new ZmqchatError("conflict", `device ${b.id} is revoked`);
    if (rec.name !== b.name) await this.store.putDevice(c.name, { ...rec, name: b.name });
    this.cache.delete(c.name);
    return { id: b.id, name: b.name };
  }

  /** Revokes another device of the caller: its sessions end and it never logs in again. */
  async revoke(
    c: SessionClaims,
    id: string,
  ): Promise<{ revoked: true; remaining: Array<{ id: string; key: string | null; keySig: string | null }> }> {
    if (id === c.device)
      throw new ZmqchatError("bad_request", "that is the device you are on: revoke it from another device", {
        hint: "to end this device's sessions only: zmqchat logout",
      });
    const devices = await this.fresh(c.name);
    const rec = devices.find((d) => d.id === id);
    if (!rec) throw new ZmqchatError("not_found", `${c.name} has no device ${id}`);
    if (rec.revoked === null) await this.store.putDevice(c.name, { ...rec, revoked: this.auth.now() });
    await this.sessions.endDevice(c.name, id);
    await this.changed(c.name);
    const remaining = devices
      .filter((d) => d.revoked === null && d.id !== id && d.id !== c.device)
      .map((d) => ({ id: d.id, key: d.key, keySig: d.keySig ?? null }));
    return { revoked: true, remaining };
  }

  async rekeyPut(c: SessionClaims, b: RequestBody<"devices.rekey.put">): Promise<{ stored: true }> {
    const rec = (await this.fresh(c.name)).find((d) => d.id === b.device);
    if (!rec || rec.revoked !== null)
      throw new ZmqchatError("not_found", `${c.name} has no live device ${b.device}`);
    await this.store.putDrop(rekeyKey(c.name, b.device), b.blob, this.auth.now() + REKEY_TTL_MS);
    return { stored: true };
  }

  /** Public: the sealed keys waiting for one device (only that device's key opens them). */
  async rekeyGet(b: RequestBody<"devices.rekey.get">): Promise<{ blob: string }> {
    if (await this.sessions.deviceEnded(b.name, b.device)) throw revokedError(b.name);
    const blob = await this.store.getDrop(rekeyKey(b.name, b.device), this.auth.now());
    if (blob === null) throw new ZmqchatError("not_found", "no keys wait for this device");
    return { blob };
  }

  async linkPut(c: SessionClaims, b: RequestBody<"link.put">): Promise<{ expires: string }> {
    const now = this.auth.now();
    const charge = this.linkPuts.take(c.name, now);
    if (!charge.ok)
      throw new RateLimitedError(
        `too many link codes for ${c.name}; retry after ${charge.retryAfterMs} ms`,
        charge.retryAfterMs,
      );
    if ((await this.store.listDevices(c.name)).some((d) => d.id === b.device))
      throw new ZmqchatError("conflict", `${c.name} already has a device ${b.device}`);
    const expires = now + Math.min(b.ttlMs, LINK_TTL_MAX_MS);
    const drop: LinkDrop = {
      verifier: b.verifier,
      blob: b.blob,
      device: b.device,
      deviceName: b.deviceName,
      nonce: randomBytes(12).toString("base64url"),
      expires,
    };
    await this.store.putDrop(linkKey(c.name, b.slot), JSON.stringify(drop), expires);
    return { expires: new Date(expires).toISOString() };
  }

  /**
   * Public: hands the sealed identity to whoever proves the code, once. Every attempt counts
   * against the user's attempts on this server; every wrong proof against the code's, which is
   * void after LINK_MISSES (tokens in the store, so across every server).
   */
  async linkGet(b: RequestBody<"link.get">): Promise<{ blob: string; device: string }> {
    const now = this.auth.now();
    const charge = this.linkTries.take(b.name, now);
    if (!charge.ok)
      throw new RateLimitedError(
        `too many link attempts for ${b.name}; retry after ${charge.retryAfterMs} ms`,
        charge.retryAfterMs,
      );
    const text = await this.store.getDrop(linkKey(b.name, b.slot), now);
    if (text === null)
      throw new ZmqchatError(
        "unauthorized",
        `no link code like this waits for ${b.name}: it is wrong, expired or was used`,
        { hint: `on a device of ${b.name}: zmqchat devices add` },
      );
    const drop = JSON.parse(text) as LinkDrop;
    const claim = (what: string) => this.store.claimOnce(`lk-${drop.nonce}-${what}`, drop.expires + 60_000);
    if (!sameHash(b.proof, drop.verifier)) {
      for (let i = 0; i < LINK_MISSES; i++) {
        if (!(await claim(`m${i}`))) continue;
        throw new ZmqchatError(
          "unauthorized",
          i === LINK_MISSES - 1
            ? `wrong link code; after ${LINK_MISSES} wrong tries it is void`
            : "wrong link code",
        );
      }
      throw voidError();
    }
    // The last miss token, taken by the right code, says fewer than LINK_MISSES misses came first.
    if (!(await claim(`m${LINK_MISSES - 1}`))) throw voidError();
    if (!(await claim("use")))
      throw new ZmqchatError("unauthorized", "this link code was already used", {
        hint: `on a device of ${b.name}: zmqchat devices add`,
      });
    await this.store.putDevice(b.name, {
      id: drop.device,
      name: drop.deviceName,
      added: now,
      lastSeen: null,
      revoked: null,
      key: null,
      keySig: null,
    });
    await this.changed(b.name);
    return { blob: drop.blob, device: drop.device };
  }
}

function linkKey(name: string, slot: string): string {
  return `link:${name}:${slot}`;
}

function rekeyKey(name: string, device: string): string {
  return `rekey:${name}:${device}`;
}

function sameHash(proof: string, verifier: string): boolean {
  const got = createHash("sha256").update(Buffer.from(proof, "base64url")).digest();
  const want = Buffer.from(verifier, "base64url");
  return want.length === got.length && timingSafeEqual(got, want);
}

function revokedError(name: string): ZmqchatError {
  return new ZmqchatError("unauthorized", `this device of ${name} was revoked and cannot log in`, {
    hint: `link it again from a device of ${name}: zmqchat devices add`,
  });
}

function voidError(): ZmqchatError {
  return new ZmqchatError("unauthorized", `this link code is void after ${LINK_MISSES} wrong tries`, {
    hint: "make a new one: zmqchat devices add",
  });
}
