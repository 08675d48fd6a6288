import { generateKeyPairSync } from "node:crypto";
import { type Identity, type IdentitySecrets, identityFromSecrets } from "../../core/crypto/keys.js";

/** A key pair as raw base64url halves, taken from DER (in both encodings the raw key is the last 32 bytes, RFC 8410). */
function keyPair(kind: "ed25519" | "x25519"): { d: string; x: string } {
  const { publicKey, privateKey } = generateKeyPairSync(kind as "ed25519", {
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "der" },
  });
  const raw = (der: Buffer) => der.subarray(der.length - 32).toString("base64url");
  return { d: raw(privateKey), x: raw(publicKey) };
}

/**
 * A new identity made without `generateKeyPairSync`. On Node 20 the process can deadlock when
 * a garbage collection finalises a key-generation job while its key is being exported as JWK
 * (seen here: `KeyGenJob::~KeyGenJob` waiting on the mutex `ExportJWKEdKey` holds, inside
 * core/crypto/keys.ts generateIdentity). Making many identities in a loop hits it. Here the
 * generated keys come out DER-encoded, never as KeyObjects, so no JWK export shares their lock.
 */
export function benchIdentity(name: string): Identity {
  const secrets: IdentitySecrets = { sign: keyPair("ed25519"), enc: keyPair("x25519") };
  return identityFromSecrets(name, secrets);
}
