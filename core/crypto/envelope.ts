import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
} from "node:crypto";
import { ZmqchatError } from "../errors.js";
import type { Envelope, PublicKeys } from "../protocol/schema.js";
import { type Identity, PublicKeyCache } from "./keys.js";

/**
 * Suite 1 (envelope `v: 1`, still opened, no longer sealed): content encrypted once with a
 * random AES-256-GCM key; that key wrapped for every recipient (and the sender's own copy) with
 * AES-256-GCM under a key derived by HKDF-SHA256 from X25519(sender, recipient) and both public
 * keys (static-static, as NaCl's box and HPKE's Auth mode authenticate the sender); the whole
 * envelope, every wrapped key included, signed with Ed25519. Every mailbox copy therefore had
 * to carry every member's wrapped key: storage grew with the square of a group.
 */
export const SUITE = "zc1-x25519-hkdf-sha256-aes256gcm-ed25519";

/**
 * Suite 2 (envelope `v: 2`, what is sealed now): the same content encryption and key wrapping,
 * plus a key commitment `kc` = HMAC-SHA256(content key, label ‖ id) (the "hash the key"
 * commitment that makes AES-GCM key-committing, after Albertini et al., USENIX Security 2022).
 * The Ed25519 signature covers every field except the wrapped keys: version, suite, id, sender,
 * device, recipient or group, sequence number, time, nonce, ciphertext with its GCM tag, and
 * `kc`. So the server may keep in each mailbox only the owner's own wrapped key (the sender's
 * copy: the sender's own), and storage grows linearly with a group.
 *
 * Why leaving the wrapped keys unsigned lets nobody alter or forge a message unnoticed:
 * - Any change to a signed field (text, ids, sender, audience, time, order) fails the signature.
 * - A wrapped key is AES-GCM under a key only the sender and that recipient can derive
 *   (X25519 of their two keys, bound by HKDF to both names and keys) with the message id as
 *   associated data. The server, or another member who knows this message's content key,
 *   cannot make a wrapped key the recipient will unwrap: its GCM tag fails ("undecryptable").
 * - Even a wrapped key that did unwrap (say, copied from another message between the same two
 *   users) yields a content key whose HMAC differs from the signed `kc` and under which the
 *   signed ciphertext fails its GCM tag: again "undecryptable", never another text.
 * - The commitment also binds the sender: without it AES-GCM is not key-committing, and a
 *   malicious sender could craft one ciphertext that opens to different texts under different
 *   content keys wrapped for different members; with `kc` every member opens the same text.
 * - Copied into another mailbox, a copy carries no wrapped key for that owner ("not_for_me").
 * What a recipient no longer sees is the list of the other members a group message was sealed
 * for; the signed `group` names the audience and the server checks it against the members.
 */
export const SUITE_V2 = "zc2-x25519-hkdf-sha256-aes256gcm-hmac-commit-ed25519";

/** An envelope without its signature, per version. */
export type UnsignedEnvelope = Envelope extends infer E
  ? E extends unknown
    ? Omit<E, "sig">
    : never
  : never;

export interface Plaintext {
  text: string;
  /**
   * What the client adds inside the sealed content beside the text (a reply reference, an
   * action on another message). Opaque here; older clients read only `text`.
   */
  extra?: unknown;
}

export interface SealInput {
  id: string;
  device: string;
  to: string | null;
  group: string | null;
  seq: number;
  sentAt: string;
  text: string;
  /** Sealed and signed with the text (Plaintext.extra), as JSON; absent for a plain message. */
  extra?: object;
  /** Every recipient with their keys; the sender is added when missing. */
  recipients: Array<{ name: string; keys: PublicKeys }>;
}

export type OpenResult =
  | { ok: true; text: string; extra?: unknown }
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
    const cipher = createCipheriv("aes-256-gcm", cek, nonce);
    cipher.setAAD(contentAad(2, input.id, me.name, input.to, input.group));
    const body = Buffer.concat([
      cipher.update(
        JSON.stringify(
          (input.extra ? { text: input.text, extra: input.extra } : { text: input.text }) satisfies Plaintext,
        ),
      ),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    const keys = recipients.map((r) => ({
      to: r.name,
      wk: b64(this.wrap(cek, r.name, r.keys.enc, wrapAad(2, input.id))),
    }));
    const unsigned: Omit<Extract<Envelope, { v: 2 }>, "sig"> = {
      v: 2,
      suite: SUITE_V2,
      id: input.id,
      from: me.name,
      device: input.device,
      to: input.to,
      group: input.group,
      seq: input.seq,
      sentAt: input.sentAt,
      nonce: b64(nonce),
      ct: b64(body),
      kc: b64(keyCommitment(cek, input.id)),
      keys,
    };
    const sig = sign(null, signedBytes(unsigned), me.signPrivate);
    return { ...unsigned, sig: b64(sig) };
  }

  /**
   * Verifies the signature against the sender's public keys (the caller picks which: pinned,
   * or the key of the message's time), then decrypts the copy for this identity. Opens both
   * envelope versions.
   */
  open(env: Envelope, senderKeys: PublicKeys): OpenResult {
    if (!((env.v === 1 && env.suite === SUITE) || (env.v === 2 && env.suite === SUITE_V2)))
      return { ok: false, reason: "unknown_suite" };
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
      const cek = this.unwrap(unb64(mine.wk), env.from, senderKeys.enc, wrapAad(env.v, env.id));
      if (env.v === 2) {
        const kc = unb64(env.kc);
        const expected = keyCommitment(cek, env.id);
        if (kc.length !== expected.length || !timingSafeEqual(kc, expected))
          return { ok: false, reason: "undecryptable" };
      }
      const body = unb64(env.ct);
      if (body.length < 16) return { ok: false, reason: "undecryptable" };
      const decipher = createDecipheriv("aes-256-gcm", cek, unb64(env.nonce));
      decipher.setAAD(contentAad(env.v, env.id, env.from, env.to, env.group));
      decipher.setAuthTag(body.subarray(body.length - 16));
      const plain = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
      const parsed = JSON.parse(plain.toString("utf8")) as Partial<Plaintext>;
      if (typeof parsed.text !== "string") return { ok: false, reason: "undecryptable" };
      // `extra` is checked by the client (core/client/actions.ts), which can say what is wrong with it.
      return parsed.extra === undefined
        ? { ok: true, text: parsed.text }
        : { ok: true, text: parsed.text, extra: parsed.extra };
    } catch {
      return { ok: false, reason: "undecryptable" };
    }
  }

  private wrap(cek: Buffer, peer: string, peerEnc: string, aad: Buffer): Buffer {
    const kek = this.pairKey(this.identity.name, this.identity.publicKeys.enc, peer, peerEnc);
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", kek, iv);
    c.setAAD(aad);
    return Buffer.concat([iv, c.update(cek), c.final(), c.getAuthTag()]);
  }

  private unwrap(wk: Buffer, sender: string, senderEnc: string, aad: Buffer): Buffer {
    if (wk.length !== 12 + 32 + 16) throw new ZmqchatError("bad_request", "wrapped key has the wrong size");
    const kek = this.pairKey(sender, senderEnc, this.identity.name, this.identity.publicKeys.enc);
    const d = createDecipheriv("aes-256-gcm", kek, wk.subarray(0, 12));
    d.setAAD(aad);
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

/**
 * The bytes the signature covers, in a fixed order: in version 1 every field but `sig`; in
 * version 2 every field but `sig` and the wrapped keys (see SUITE_V2 for why that is safe).
 */
export function signedBytes(env: UnsignedEnvelope): Buffer {
  const common = [
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
  ];
  if (env.v === 1) return Buffer.from(JSON.stringify([...common, env.keys.map((k) => [k.to, k.wk])]));
  return Buffer.from(JSON.stringify(["zmqchat-envelope-v2", ...common, env.kc]));
}

/** The AES-GCM associated data of the content: the routing header (and, from v2, the version). */
function contentAad(v: 1 | 2, id: string, from: string, to: string | null, group: string | null): Buffer {
  return Buffer.from(JSON.stringify(v === 1 ? { id, from, to, group } : { v, id, from, to, group }));
}

/** The AES-GCM associated data of a wrapped key: the message id (with a version label from v2). */
function wrapAad(v: 1 | 2, id: string): Buffer {
  return Buffer.from(v === 1 ? id : `zmqchat-wrap-v2\n${id}`);
}

/** The key commitment of suite 2: HMAC-SHA256 keyed by the content key over a label and the id. */
function keyCommitment(cek: Buffer, id: string): Buffer {
  return createHmac("sha256", cek).update(`zmqchat-key-commitment-v2\n${id}`).digest();
}

/**
 * The copy of an envelope that `owner`'s mailbox keeps: from version 2, only the owner's own
 * wrapped key (the signature does not cover the others); version 1 copies keep every key.
 */
export function copyFor(env: Envelope, owner: string): Envelope {
  if (env.v === 1) return env;
  return { ...env, keys: env.keys.filter((k) => k.to === owner) };
}

export type { KeyObject };
