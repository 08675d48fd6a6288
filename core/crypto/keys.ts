import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import type { PublicKeys } from "../protocol/schema.js";

/** A user's identity: Ed25519 for signing, X25519 for encryption. Private halves never leave the client. */
export interface Identity {
  name: string;
  signPrivate: KeyObject;
  signPublic: KeyObject;
  encPrivate: KeyObject;
  encPublic: KeyObject;
  publicKeys: PublicKeys;
}

/** The private key material as stored on disk (raw base64url, as in JWK `d`). */
export interface IdentitySecrets {
  sign: { d: string; x: string };
  enc: { d: string; x: string };
}

export function generateIdentity(name: string): Identity {
  return fromKeyObjects(name, newPrivateKey("ed25519"), newPrivateKey("x25519"));
}

/**
 * A new private key in a KeyObject of its own. Node 20 (seen on 20.20.2, not on 22 or 24) can
 * deadlock when a garbage collection that runs while a key is exported as JWK destroys the
 * generation job that made that key: the job's destructor takes the key's mutex, which the export
 * holds, and the process hangs for good (a `register` of the CLI, or 600 identities made by a
 * test, seen in CI). Generating into DER and importing it shares nothing with the job.
 */
export function newPrivateKey(type: "ed25519" | "x25519"): KeyObject {
  const der: Buffer = generateKeyPairSync(type as "ed25519", {
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "der" },
  }).privateKey;
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
}

export function identityFromSecrets(name: string, secrets: IdentitySecrets): Identity {
  const signPrivate = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: secrets.sign.d, x: secrets.sign.x },
    format: "jwk",
  });
  const encPrivate = createPrivateKey({
    key: { kty: "OKP", crv: "X25519", d: secrets.enc.d, x: secrets.enc.x },
    format: "jwk",
  });
  return fromKeyObjects(name, signPrivate, encPrivate);
}

export function identitySecrets(identity: Identity): IdentitySecrets {
  const s = identity.signPrivate.export({ format: "jwk" });
  const e = identity.encPrivate.export({ format: "jwk" });
  return { sign: { d: s.d!, x: s.x! }, enc: { d: e.d!, x: e.x! } };
}

function fromKeyObjects(name: string, signPrivate: KeyObject, encPrivate: KeyObject): Identity {
  const signPublic = createPublicKey(signPrivate);
  const encPublic = createPublicKey(encPrivate);
  return {
    name,
    signPrivate,
    signPublic,
    encPrivate,
    encPublic,
    publicKeys: {
      sign: signPublic.export({ format: "jwk" }).x!,
      enc: encPublic.export({ format: "jwk" }).x!,
    },
  };
}

/** Public key objects made from a contact's raw keys, cached because parsing costs ~10 µs each. */
export class PublicKeyCache {
  private readonly sign = new Map<string, KeyObject>();
  private readonly enc = new Map<string, KeyObject>();
  private readonly ids = new Map<string, string>();

  /** keyId(keys), cached (a SHA-256 per message otherwise). */
  keyId(keys: PublicKeys): string {
    const raw = `${keys.sign}.${keys.enc}`;
    let id = this.ids.get(raw);
    if (id === undefined) {
      id = keyId(keys);
      this.ids.set(raw, id);
    }
    return id;
  }

  signKey(raw: string): KeyObject {
    return cachedKey(this.sign, "Ed25519", raw);
  }

  encKey(raw: string): KeyObject {
    return cachedKey(this.enc, "X25519", raw);
  }
}

function cachedKey(cache: Map<string, KeyObject>, crv: "Ed25519" | "X25519", raw: string): KeyObject {
  let k = cache.get(raw);
  if (!k) {
    k = createPublicKey({ key: { kty: "OKP", crv, x: raw }, format: "jwk" });
    cache.set(raw, k);
  }
  return k;
}

/**
 * A key generation's id (envelope suite 3's `fromKey`, `toKey`): SHA-256 over a label and both
 * public keys, first 12 bytes, base64url (16 characters).
 */
export function keyId(keys: PublicKeys): string {
  return createHash("sha256")
    .update(`zmqchat-key-id-v1\n${keys.sign}\n${keys.enc}`)
    .digest()
    .subarray(0, 12)
    .toString("base64url");
}

/**
 * A fingerprint (safety number) of a user's public keys: SHA-512 over name and both keys,
 * shown as 12 groups of 5 digits, as Signal does, so two people can compare it aloud.
 */
export function fingerprint(name: string, keys: PublicKeys): string {
  const digest = createHash("sha512").update(`zmqchat-fp-v1\n${name}\n${keys.sign}\n${keys.enc}`).digest();
  const groups: string[] = [];
  for (let i = 0; i < 12; i++) {
    const n = digest.readUIntBE(i * 5, 5) % 100000;
    groups.push(String(n).padStart(5, "0"));
  }
  return groups.join(" ");
}
