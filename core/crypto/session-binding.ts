import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  timingSafeEqual,
} from "node:crypto";

/**
 * Binding a session to a device's CurveZMQ key, by proof of possession (the idea of OAuth DPoP,
 * RFC 9449, with a MAC instead of a signature): the device's CURVE key is an X25519 key, so the
 * device and the cluster agree on a key by X25519 + HKDF-SHA256 (RFC 7748, RFC 5869), and every
 * request of a bound session carries an HMAC-SHA256 under it. A stolen token is useless without
 * the device's CURVE secret key.
 */

const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

export function x25519Private(raw: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: "der", type: "pkcs8" });
}

export function x25519PublicRaw(key: KeyObject): Buffer {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return Buffer.from(pub.export({ format: "jwk" }).x!, "base64url");
}

function x25519Public(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

const Z85_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/** Z85 (ZMQ RFC 32) decoding, as CURVE keys are written. */
export function z85Decode(text: string): Buffer {
  if (text.length % 5 !== 0) throw new Error("a Z85 text is a multiple of 5 characters");
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = Z85_CHARS.indexOf(text[i + j]!);
      if (digit < 0) throw new Error("not a Z85 character");
      value = value * 85 + digit;
    }
    out.writeUInt32BE(value >>> 0, (i / 5) * 4);
  }
  return out;
}

/** The key a device and the cluster share: X25519 between them, through HKDF-SHA256 over both public keys. */
export function bindingKey(own: KeyObject, peerRaw: Buffer, deviceRaw: Buffer, clusterRaw: Buffer): Buffer {
  const shared = diffieHellman({ privateKey: own, publicKey: x25519Public(peerRaw) });
  const info = Buffer.concat([Buffer.from("zmqchat-session-binding-v1"), deviceRaw, clusterRaw]);
  return Buffer.from(hkdfSync("sha256", shared, Buffer.alloc(0), info, 32));
}

/** At login: proves the device holds the CURVE secret key for the challenge being answered. */
export function loginBindingProof(key: Buffer, nonce: string): string {
  return createHmac("sha256", key).update(`zmqchat-bind-login-v1\n${nonce}`).digest("base64url");
}

/** On each request of a bound session: covers the request id, type, token and body. */
export function requestBindingProof(
  key: Buffer,
  id: string,
  type: string,
  session: string,
  body: unknown,
): string {
  const digest = (s: string) => createHash("sha256").update(s).digest("base64url");
  return createHmac("sha256", key)
    .update(
      `zmqchat-bind-request-v1\n${id}\n${type}\n${digest(session)}\n${digest(JSON.stringify(body ?? null))}`,
    )
    .digest("base64url");
}

export function proofsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
