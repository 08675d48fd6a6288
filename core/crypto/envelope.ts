import {
  createCipheriv,
  createDecipheriv,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import { ZmqchatError } from "../errors.js";
import type { Envelope, PublicKeys } from "../protocol/schema.js";
import { type Identity, PublicKeyCache } from "./keys.js";

/**
 * Suite 1: content encrypted once with a random AES-256-GCM key; that key wrapped for every
 * recipient (and the sender's own copy) with AES-256-GCM under a key derived by HKDF-SHA256
 * from X25519(sender, recipient) and both public keys (static-static, as NaCl's box and
 * HPKE's Auth mode authenticate the sender); the whole envelope signed with Ed25519.
 */
export const SUITE = "zc1-x25519-hkdf-sha256-aes256gcm-ed25519";

export interface Plaintext {
  text: string;
}

export interface SealInput {
  id: string;
  device: string;
  to: string | null;
  group: string | null;
  seq: number;
  sentAt: string;
  text: string;
  /** Every recipient with their keys; the sender is added when missing. */
  recipients: Array<{ name: string; keys: PublicKeys }>;
}

export type OpenResult =
  | { ok: true; text: string }
  | { ok: false; reason: "bad_signature" | "not_for_me" | "undecryptable" | "unknown_suite" };

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
const unb64 = (s: string) => Buffer.from(s, "base64url");

/** Holds one identity's derived pairwise keys, so sealing and opening skip repeated X25519. */
export class Sealer {
  private readonly pairKeys = new Map<string, Buffer>();
  readonly keys = new PublicKeyCache();

  constructor(readonly identity: Identity) {}

  seal(input: SealInput): Envelope {
    const me = this.identity;
    const recipients = input.recipients.some((r) => r.name === me.name)
      ? input.recipients
      : [...input.recipients, { name: me.name, keys: me.publicKeys }];
    const cek = randomBytes(32);
    const nonce = randomBytes(12);
    const header = { id: input.id, from: me.name, to: input.to, group: input.group };
    const aad = Buffer.from(JSON.stringify(header));
    const cipher = createCipheriv("aes-256-gcm", cek, nonce);
    cipher.setAAD(aad);
    const body = Buffer.concat([
      cipher.update(JSON.stringify({ text: input.text } satisfies Plaintext)),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    const keys = recipients.map((r) => ({
      to: r.name,
      wk: b64(this.wrap(cek, r.name, r.keys.enc, input.id)),
    }));
    const unsigned: Omit<Envelope, "sig"> = {
      v: 1,
      suite: SUITE,
      id: input.id,
      from: me.name,
      device: input.device,
      to: input.to,
      group: input.group,
      seq: input.seq,
      sentAt: input.sentAt,
      nonce: b64(nonce),
      ct: b64(body),
      keys,
    };
    const sig = sign(null, signedBytes(unsigned), me.signPrivate);
    return { ...unsigned, sig: b64(sig) };
  }

  /** Verifies the signature against the sender's (pinned) keys, then decrypts the copy for this identity. */
  open(env: Envelope, senderKeys: PublicKeys): OpenResult {
    if (env.suite !== SUITE || env.v !== 1) return { ok: false, reason: "unknown_suite" };
    const { sig, ...unsigned } = env;
    let good = false;
    try {
      good = verify(null, signedBytes(unsigned), this.keys.signKey(senderKeys.sign), unb64(sig));
    } catch {
      good = false;
    }
    if (!good) return { ok: false, reason: "bad_signature" };
    const mine = env.keys.find((k) => k.to === this.identity.name);
    if (!mine) return { ok: false, reason: "not_for_me" };
    try {
      const cek = this.unwrap(unb64(mine.wk), env.from, senderKeys.enc, env.id);
      const body = unb64(env.ct);
      if (body.length < 16) return { ok: false, reason: "undecryptable" };
      const decipher = createDecipheriv("aes-256-gcm", cek, unb64(env.nonce));
      decipher.setAAD(
        Buffer.from(JSON.stringify({ id: env.id, from: env.from, to: env.to, group: env.group })),
      );
      decipher.setAuthTag(body.subarray(body.length - 16));
      const plain = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
      const parsed = JSON.parse(plain.toString("utf8")) as Partial<Plaintext>;
      if (typeof parsed.text !== "string") return { ok: false, reason: "undecryptable" };
      return { ok: true, text: parsed.text };
    } catch {
      return { ok: false, reason: "undecryptable" };
    }
  }

  private wrap(cek: Buffer, peer: string, peerEnc: string, id: string): Buffer {
    const kek = this.pairKey(this.identity.name, this.identity.publicKeys.enc, peer, peerEnc);
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", kek, iv);
    c.setAAD(Buffer.from(id));
    return Buffer.concat([iv, c.update(cek), c.final(), c.getAuthTag()]);
  }

  private unwrap(wk: Buffer, sender: string, senderEnc: string, id: string): Buffer {
    if (wk.length !== 12 + 32 + 16) throw new ZmqchatError("bad_request", "wrapped key has the wrong size");
    const kek = this.pairKey(sender, senderEnc, this.identity.name, this.identity.publicKeys.enc);
    const d = createDecipheriv("aes-256-gcm", kek, wk.subarray(0, 12));
    d.setAAD(Buffer.from(id));
    d.setAuthTag(wk.subarray(44));
    return Buffer.concat([d.update(wk.subarray(12, 44)), d.final()]);
  }

  /** The key for messages from `sender` to `recipient`: HKDF over their X25519 secret and both identities. */
  private pairKey(sender: string, senderEnc: string, recipient: string, recipientEnc: string): Buffer {
    const cacheKey = `${sender}\0${senderEnc}\0${recipient}\0${recipientEnc}`;
    let k = this.pairKeys.get(cacheKey);
    if (!k) {
      const peerEnc =
        sender === this.identity.name && senderEnc === this.identity.publicKeys.enc
          ? recipientEnc
          : senderEnc;
      const shared = diffieHellman({
        privateKey: this.identity.encPrivate,
        publicKey: this.keys.encKey(peerEnc),
      });
      const info = Buffer.from(`zmqchat-wrap-v1\n${sender}\n${senderEnc}\n${recipient}\n${recipientEnc}`);
      k = Buffer.from(hkdfSync("sha256", shared, Buffer.from(SUITE), info, 32));
      this.pairKeys.set(cacheKey, k);
    }
    return k;
  }
}

/** The bytes the signature covers: every field but `sig`, in a fixed order. */
export function signedBytes(env: Omit<Envelope, "sig">): Buffer {
  return Buffer.from(
    JSON.stringify([
      env.v,
      env.suite,
      env.id,
      env.from,
      env.device,
      env.to,
      env.group,
      env.seq,
      env.sentAt,
      env.nonce,
      env.ct,
      env.keys.map((k) => [k.to, k.wk]),
    ]),
  );
}

export type { KeyObject };
