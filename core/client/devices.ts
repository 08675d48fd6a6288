import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
  randomInt,
  scryptSync,
  sign,
  verify,
} from "node:crypto";
import {
  type Identity,
  type IdentitySecrets,
  identityFromSecrets,
  identitySecrets,
  newPrivateKey,
} from "../crypto/keys.js";
import { x25519Private, x25519PublicRaw } from "../crypto/session-binding.js";
import { ZmqchatError } from "../errors.js";
import type { DeviceInfo } from "../protocol/devices.js";
import type { RequestOptions } from "./channel.js";
import type { ChatClient } from "./client.js";
import { deviceKeyClaim, deviceKeyTrusted } from "./device-keys.js";
import { type LoadedIdentity, newDeviceId } from "./profile.js";

export { deviceKeyClaim, deviceKeyTrusted } from "./device-keys.js";

/**
 * Several devices per user (issue #19), the client side: link codes, the identity sealed under a
 * code-derived key, each device's own X25519 key (its CURVE key, see bin/curve.ts) and the keys
 * pushed to the remaining devices after a revocation. Crypto is node:crypto with standard
 * constructions: scrypt (RFC 7914) + HKDF-SHA256 (RFC 5869) + AES-256-GCM for the link, and
 * X25519 + HKDF-SHA256 + AES-256-GCM (HPKE base mode's shape, RFC 9180) for the key push.
 */

/** Crockford base32 (no I, L, O, U): easy to read aloud and to type. */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** Public lookup part of a code: 4 characters (20 bits). */
const SLOT_CHARS = 4;
/** Secret part: 12 characters, 60 bits. */
const SECRET_CHARS = 12;
/**
 * scrypt cost of a code: 2^15 × 8 × 128 bytes = 32 MiB, ~50-100 ms per guess. With 60 bits of
 * secret, an offline search (by whoever kept the sealed blob: the server's operator) costs
 * about 2^59 of these: out of reach. Online, the server gives a code LINK_MISSES wrong tries
 * and 10 minutes, and hands its blob out once.
 */
const LINK_COST = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const LINK_INFO = "zmqchat-link-v1";

export interface LinkCode {
  slot: string;
  secret: string;
  /** As shown: four groups of four, e.g. `7K2M-Q9XD-4RTB-0HNA`. */
  text: string;
}

export function newLinkCode(): LinkCode {
  let chars = "";
  for (let i = 0; i < SLOT_CHARS + SECRET_CHARS; i++) chars += ALPHABET[randomInt(ALPHABET.length)];
  return codeOf(chars);
}

function codeOf(chars: string): LinkCode {
  return {
    slot: chars.slice(0, SLOT_CHARS),
    secret: chars.slice(SLOT_CHARS),
    text: chars.match(/.{4}/g)!.join("-"),
  };
}

/** Reads a typed code: case, dashes and spaces do not matter, O is 0 and I or L are 1 (Crockford). */
export function parseLinkCode(text: string): LinkCode {
  const chars = text.toUpperCase().replace(/[\s-]/g, "").replace(/O/g, "0").replace(/[IL]/g, "1");
  if (chars.length !== SLOT_CHARS + SECRET_CHARS || [...chars].some((c) => !ALPHABET.includes(c)))
    throw new ZmqchatError(
      "usage",
      `a link code is ${SLOT_CHARS + SECRET_CHARS} characters of ${ALPHABET} (dashes optional)`,
    );
  return codeOf(chars);
}

export interface LinkKeys {
  /** AES-256-GCM key the identity is sealed under. */
  enc: Buffer;
  /** What the new device shows the server to fetch the sealed identity. */
  proof: string;
  /** SHA-256 of the proof: all the server keeps. */
  verifier: string;
}

/** Keys of a code for one user: scrypt over the secret (salted with the user and the slot), then HKDF. */
export function linkKeys(name: string, code: LinkCode): LinkKeys {
  const salt = Buffer.from(`${LINK_INFO}\n${name}\n${code.slot}`);
  const ikm = scryptSync(code.secret, salt, 32, LINK_COST);
  const enc = Buffer.from(hkdfSync("sha256", ikm, salt, `${LINK_INFO} enc`, 32));
  const proof = Buffer.from(hkdfSync("sha256", ikm, salt, `${LINK_INFO} auth`, 32));
  return {
    enc,
    proof: proof.toString("base64url"),
    verifier: createHash("sha256").update(proof).digest("base64url"),
  };
}

/** What a link hands the new device. */
export interface LinkPayload {
  name: string;
  device: string;
  deviceName: string;
  secrets: IdentitySecrets;
  previous: IdentitySecrets[];
}

function aead(key: Buffer, aad: string, plain: Buffer): string {
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, ct, c.getAuthTag()]).toString("base64url");
}

function unaead(key: Buffer, aad: string, blob: string): Buffer | null {
  const raw = Buffer.from(blob, "base64url");
  if (raw.length < 28) return null;
  try {
    const d = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]);
  } catch {
    return null;
  }
}

export function sealLink(keys: LinkKeys, code: LinkCode, payload: LinkPayload): string {
  return aead(keys.enc, `${LINK_INFO}\n${payload.name}\n${code.slot}`, Buffer.from(JSON.stringify(payload)));
}

export function openLink(keys: LinkKeys, name: string, code: LinkCode, blob: string): LinkPayload {
  const plain = unaead(keys.enc, `${LINK_INFO}\n${name}\n${code.slot}`, blob);
  if (!plain)
    throw new ZmqchatError(
      "unauthorized",
      "the linked identity does not open under this code: it was altered",
    );
  const p = JSON.parse(plain.toString("utf8")) as LinkPayload;
  if (p.name !== name) throw new ZmqchatError("unauthorized", `the link code is for ${p.name}, not ${name}`);
  return p;
}

// ---- device keys -----------------------------------------------------------------------

const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");

function x25519Public(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: "der", type: "spki" });
}

// ---- key push after a revocation -----------------------------------------------------

const REKEY_INFO = "zmqchat-rekey-v1";

interface RekeyBlob {
  eph: string;
  ct: string;
  /** Ed25519 by the keys the device holds (the ones being replaced) over the rest. */
  sig: string;
}

/** Seals the user's new keys (and every earlier key) to one device's X25519 key, signed by the keys being replaced. */
export function sealRekey(
  name: string,
  device: string,
  deviceKey: string,
  next: LoadedIdentity,
  signer: Identity,
): string {
  const eph = newPrivateKey("x25519");
  const ephRaw = x25519PublicRaw(eph);
  const devRaw = Buffer.from(deviceKey, "base64url");
  const shared = diffieHellman({ privateKey: eph, publicKey: x25519Public(devRaw) });
  const info = `${REKEY_INFO}\n${name}\n${device}`;
  const key = Buffer.from(hkdfSync("sha256", shared, Buffer.concat([ephRaw, devRaw]), info, 32));
  const plain = Buffer.from(
    JSON.stringify({
      secrets: identitySecrets(next.identity),
      previous: (next.previous ?? []).map(identitySecrets),
    }),
  );
  const ct = aead(key, info, plain);
  const e = ephRaw.toString("base64url");
  const sig = sign(null, Buffer.from(`${info}\n${e}\n${ct}`), signer.signPrivate).toString("base64url");
  return Buffer.from(JSON.stringify({ eph: e, ct, sig } satisfies RekeyBlob)).toString("base64url");
}

/** Opens keys pushed to this device; refuses what the keys this device holds did not sign. */
export function openRekey(
  name: string,
  device: string,
  secret: Buffer,
  blob: string,
  held: LoadedIdentity,
): LoadedIdentity {
  let b: RekeyBlob;
  try {
    b = JSON.parse(Buffer.from(blob, "base64url").toString("utf8")) as RekeyBlob;
  } catch {
    throw new ZmqchatError("unauthorized", "the pushed keys are malformed");
  }
  const info = `${REKEY_INFO}\n${name}\n${device}`;
  const signers = [held.identity, ...(held.previous ?? [])];
  const signed = signers.some((s) => {
    try {
      return verify(
        null,
        Buffer.from(`${info}\n${b.eph}\n${b.ct}`),
        s.signPublic,
        Buffer.from(b.sig, "base64url"),
      );
    } catch {
      return false;
    }
  });
  if (!signed) throw new ZmqchatError("unauthorized", "the pushed keys are not signed by your keys");
  const own = x25519Private(secret);
  const devRaw = x25519PublicRaw(own);
  const ephRaw = Buffer.from(b.eph, "base64url");
  const shared = diffieHellman({ privateKey: own, publicKey: x25519Public(ephRaw) });
  const key = Buffer.from(hkdfSync("sha256", shared, Buffer.concat([ephRaw, devRaw]), info, 32));
  const plain = unaead(key, info, b.ct);
  if (!plain) throw new ZmqchatError("unauthorized", "the pushed keys do not open with this device's key");
  const p = JSON.parse(plain.toString("utf8")) as { secrets: IdentitySecrets; previous: IdentitySecrets[] };
  const identity = identityFromSecrets(name, p.secrets);
  const previous = p.previous.map((s) => identityFromSecrets(name, s));
  // Keep every key this device held too: old messages were sealed for them.
  for (const h of [held.identity, ...(held.previous ?? [])])
    if (!previous.some((x) => x.publicKeys.sign === h.publicKeys.sign)) previous.push(h);
  return { identity, device, previous };
}

// ---- operations over a client ----------------------------------------------------------

/** Names this device on the service and registers its key (signed by the user's keys). */
export async function helloDevice(
  client: ChatClient,
  loaded: LoadedIdentity,
  secret: Buffer,
  name?: string,
  opts: RequestOptions = {},
): Promise<void> {
  await client.login(opts);
  const claim = deviceKeyClaim(loaded.identity, loaded.device, secret);
  await client.request("devices.hello", { ...(name ? { name } : {}), ...claim }, opts);
}

/** `devices add`: makes a code and leaves the identity sealed under it with the service. */
export async function offerLink(
  client: ChatClient,
  loaded: LoadedIdentity,
  secret: Buffer,
  opts: { deviceName?: string; ttlMs?: number } = {},
): Promise<{ code: string; expires: string; device: string }> {
  await helloDevice(client, loaded, secret);
  const code = newLinkCode();
  const keys = linkKeys(client.name, code);
  const device = newDeviceId();
  const deviceName = opts.deviceName ?? `device ${device.slice(0, 4)}`;
  const blob = sealLink(keys, code, {
    name: client.name,
    device,
    deviceName,
    secrets: identitySecrets(loaded.identity),
    previous: (loaded.previous ?? []).map(identitySecrets),
  });
  const r = await client.request("link.put", {
    slot: code.slot,
    verifier: keys.verifier,
    blob,
    device,
    deviceName,
    ttlMs: opts.ttlMs ?? 600_000,
  });
  return { code: code.text, expires: r.expires, device };
}

/** `devices link CODE` on the new machine: fetches and opens the identity (the client may be a throwaway one). */
export async function takeLink(client: ChatClient, name: string, codeText: string): Promise<LoadedIdentity> {
  const code = parseLinkCode(codeText);
  const keys = linkKeys(name, code);
  const r = await client.request("link.get", { name, slot: code.slot, proof: keys.proof });
  const p = openLink(keys, name, code, r.blob);
  if (p.device !== r.device)
    throw new ZmqchatError("unauthorized", "the service named another device than the sealed link");
  return {
    identity: identityFromSecrets(name, p.secrets),
    device: p.device,
    previous: p.previous.map((s) => identityFromSecrets(name, s)),
  };
}

/** Renames one of the user's devices (this one or another; not a revoked one). */
export async function renameDevice(
  client: ChatClient,
  id: string,
  name: string,
): Promise<{ id: string; name: string }> {
  await client.login();
  return client.request("devices.rename", { id, name });
}

export async function listDevices(client: ChatClient): Promise<{ devices: DeviceInfo[]; current: string }> {
  await client.login();
  return client.request("devices.list", {});
}

/**
 * Revokes a device, then rotates the user's keys (the revoked device held them) and pushes the
 * new keys, sealed, to each remaining device whose key the user signed. `reopen` gives a client
 * of the new keys (the old keys' sessions end with the rotation); `save` keeps them on disk.
 */
export async function revokeDevice(
  client: ChatClient,
  loaded: LoadedIdentity,
  id: string,
  reopen: (next: LoadedIdentity) => { client: ChatClient; close(): Promise<void> },
  save: (next: LoadedIdentity) => void,
): Promise<{ next: LoadedIdentity; pushed: string[]; unreachable: string[] }> {
  await client.login();
  const r = await client.request("devices.revoke", { id });
  const next = await client.rotateKeys();
  save(next);
  const signers = [loaded.identity, ...(loaded.previous ?? [])];
  const pushed: string[] = [];
  const unreachable: string[] = [];
  const session = reopen(next);
  const fresh = session.client;
  try {
    await fresh.login();
    for (const d of r.remaining) {
      if (!d.key || !d.keySig || !deviceKeyTrusted(client.name, d.id, d.key, d.keySig, signers)) {
        unreachable.push(d.id);
        continue;
      }
      const blob = sealRekey(client.name, d.id, d.key, next, loaded.identity);
      await fresh.request("devices.rekey.put", { device: d.id, blob });
      pushed.push(d.id);
    }
  } finally {
    await session.close();
  }
  return { next, pushed, unreachable };
}

/** On a device whose keys another device rotated: fetches the new keys pushed to it. */
export async function fetchPushedKeys(
  client: ChatClient,
  loaded: LoadedIdentity,
  secret: Buffer,
): Promise<LoadedIdentity> {
  const r = await client.request("devices.rekey.get", { name: client.name, device: loaded.device });
  return openRekey(client.name, loaded.device, secret, r.blob, loaded);
}
