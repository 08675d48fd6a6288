import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  sign,
  timingSafeEqual,
  verify,
} from "node:crypto";
import { ZmqchatError } from "../errors.js";
import type { Envelope, PublicKeys } from "../protocol/schema.js";
import { type Identity, keyId, PublicKeyCache } from "./keys.js";
import { HASH_BYTES, leafHash, rootFromPath, treeWithPaths } from "./merkle.js";
import { RandomPool } from "./random-pool.js";

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

/**
 * Suite 3 (envelope `v: 3`, sealed by default for 1:1 messages; groups stay on suite 2): the
 * sender is authenticated by the AEAD under a pairwise key instead of an Ed25519 signature, as
 * NaCl's box (crypto_box_beforenm + AEAD) and HPKE's Auth mode (RFC 9180) authenticate it.
 * Standards: X25519 (RFC 7748), HKDF-SHA256 (RFC 5869), AES-256-GCM (NIST SP 800-38D),
 * HMAC-SHA256 (RFC 2104).
 *
 * - Pairwise keys: K(s→r) = HKDF-SHA256(X25519(s, r), salt = SUITE_V3, info = label ‖ s ‖ s's
 *   X25519 key ‖ r ‖ r's X25519 key), computed once per (sender key, recipient key) and cached:
 *   no Diffie-Hellman per message. The info is ordered, so K(a→b) ≠ K(b→a): the key is
 *   directional. The sender's own copy is wrapped under K(a→a) = HKDF(X25519(a, a), …), which
 *   only the holder of a's private key can compute (bob knows X25519(a, b), never X25519(a, a)).
 * - Header H = every routing field: version, suite, id, from, device, to, group (null), seq,
 *   sentAt, and the key ids of the sender's and the recipient's key generations it was sealed
 *   for (`fromKey`, `toKey`: SHA-256 over the public keys, 12 bytes). The content is
 *   {text, extra?} as JSON (so whether `extra` is present is authenticated with it), encrypted
 *   once with a random content key: AES-256-GCM, associated data H.
 * - Key commitment `kc` = HMAC-SHA256(content key, label ‖ H ‖ nonce ‖ ciphertext), the "hash
 *   the key" commitment of suite 2 extended over the whole message, so it also binds the exact
 *   ciphertext (AES-GCM under a known key is not collision resistant; HMAC is).
 * - Per copy owner o ∈ {recipient, sender}: `wk` = AES-256-GCM(K(from→o), random iv, content
 *   key, associated data label ‖ o ‖ H ‖ kc). This wrap is the sender authentication: only the
 *   two holders of K(from→o) can make a wrap that opens, and it covers every header field and
 *   (through kc) the ciphertext.
 *
 * What that gives, and what it does not:
 * - The server cannot alter any field (each is in H, bound by the wrap), move a copy into
 *   another conversation (`to`/`from` are in H and in the pairwise key), or replay a copy into
 *   another mailbox (the copy carries only its owner's wrap; relabelled, it names another owner
 *   in the wrap's associated data and needs another pairwise key): "not_for_me" or "forged".
 * - Reflection: a copy with from = me only ever opens under K(me→me). So bob, who knows
 *   X25519(a, b) and hence K(a→b) and K(b→a), cannot place a message "from alice" in alice's
 *   mailbox, and cannot reflect alice's message to him back to her as one of hers.
 * - Deniability (as NaCl box and Signal): the recipient can compute K(a→b) itself, so a 1:1
 *   message proves to its recipient that it came from the peer (or from the recipient), but
 *   proves nothing to a third party: bob could have made it. Suite 2's signature is
 *   transferable; suite 3's authentication is not.
 * - Key compromise impersonation, as in every static-static DH scheme (NaCl box, HPKE Auth):
 *   whoever holds bob's X25519 private key can make messages that bob's client accepts as from
 *   anyone, sealed for that key. A copy sealed for a key bob has rotated away opens with the
 *   old key bob keeps only if the server stored it within ROTATION_GRACE_MS (10 minutes) of the
 *   rotation, by bob's own key history (core/client/open.ts); later it is flagged as forged by
 *   open and verify-history. What remains: a key stolen while it is bob's current key (or in
 *   the grace after its rotation) lets the thief, with the server's help (the server stores
 *   only what a sender's session sends), make 1:1 messages to bob that bob's client accepts as
 *   from anyone, where suite 2's signature would have stopped him; the rotation time comes from
 *   the server, so a hostile operator can move it later (it cannot invent a rotation: those
 *   are signed). Rotating a key suspected stolen ends this after the grace.
 */
export const SUITE_V3 = "zc3-x25519-hkdf-sha256-aes256gcm-hmac-commit-pairwise";

/**
 * Suite 4 (envelope `v: 4`, sealed by default for group messages): suite 2's construction with one
 * Ed25519 signature for a batch of envelopes instead of one per envelope, as Merkle-tree batch
 * signing does it (the tree of RFC 9162 §2.1, core/crypto/merkle.ts; the scheme of the IETF's
 * TLS batch-signing draft): a client signs the root of the tree over the envelopes of one
 * request, and each envelope carries its place (`batch.size`, `batch.index`) and its inclusion
 * path. Standards: X25519 (RFC 7748), HKDF-SHA256 (RFC 5869), AES-256-GCM (NIST SP 800-38D),
 * HMAC-SHA256 (RFC 2104), Ed25519 (RFC 8032), SHA-256 Merkle tree (RFC 9162).
 *
 * - Leaf: SHA-256(0x00 ‖ S) where S is what suite 2 signs (version, suite, id, sender, device,
 *   recipient or group, sequence number, time, nonce, ciphertext with its tag, and `kc`) under
 *   the label "zmqchat-envelope-v4"; the wrapped keys stay outside, as in suite 2.
 * - Signature: Ed25519 over "zmqchat-batch-v4\n" ‖ size (uint32, big-endian) ‖ root.
 * - Verifying one envelope: its leaf and inclusion path give a root (RFC 9162 §2.1.3.2; a path
 *   that cannot belong to that place in a tree of that size proves nothing), and the signature
 *   must verify over that root and size. A receiver keeps the (key, size, root, signature) it
 *   verified, so the other envelopes of the batch cost two SHA-256 blocks per level instead of
 *   an Ed25519 verification (73 µs here, half of a group member's work per message).
 *
 * Everything suite 2 gives holds: each envelope verifies alone (a mailbox holds one copy of each
 * envelope, a sync page any subset), the proof is transferable (anyone with the sender's key can
 * check it), and a change to any signed field changes the leaf and so the root. What a copy
 * shows beyond suite 2: how many envelopes its sender signed at once and the hashes of its
 * siblings, which say nothing of their contents (each covers a fresh nonce and ciphertext).
 */
export const SUITE_V4 = "zc4-x25519-hkdf-sha256-aes256gcm-hmac-commit-ed25519-merkle";

/** An envelope without its signature, per version (suite 3 has none; suite 4 signs a batch). */
export type UnsignedEnvelope =
  | (Extract<Envelope, { v: 1 | 2 }> extends infer E ? (E extends unknown ? Omit<E, "sig"> : never) : never)
  | Omit<BatchEnvelope, "sig" | "batch">;

type BatchEnvelope = Extract<Envelope, { v: 4 }>;

/** Verified batch signatures a Sealer keeps (each names its key, tree size, root and signature). */
const VERIFIED_BATCHES_KEPT = 4096;

/**
 * Room to leave in a frame for the signature and inclusion path a suite 4 draft gets when its
 * batch is signed (JSON of `sig` and `batch` for a tree of up to 1,024 leaves).
 */
export const BATCH_SIGNATURE_ROOM = 640;

type PairwiseEnvelope = Extract<Envelope, { v: 3 }>;

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
  /** The envelope version: by default 3 for a 1:1 message and 4 for a group (3 is 1:1 only). */
  version?: 2 | 3 | 4;
  /**
   * Suite 4 only: leave the envelope unsigned (a draft), for `signBatch` to sign with the others
   * of its request. Without it a suite 4 envelope is signed at once, as a batch of one.
   */
  draft?: boolean;
}

export type OpenResult =
  | { ok: true; text: string; extra?: unknown }
  | {
      ok: false;
      /**
       * bad_signature: not made with these sender keys (suites 1, 2: the signature fails; suite 3:
       * `fromKey` names another key generation). forged: suite 3's AEAD under the pairwise key
       * fails, so the envelope was altered or forged. undecryptable: not sealed for this key of
       * mine (or, in suites 1 and 2, a signed envelope whose content does not decrypt).
       */
      reason: "bad_signature" | "forged" | "not_for_me" | "undecryptable" | "unknown_suite";
    };

/** base64url of the bytes, without copying them first (a view when they are not a Buffer). */
const b64 = (b: Uint8Array) =>
  (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString("base64url");
const unb64 = (s: string) => Buffer.from(s, "base64url");

/** Holds one identity's derived pairwise keys, so sealing and opening skip repeated X25519. */
export class Sealer {
  private readonly pairKeys = new Map<string, Buffer>();
  /** Content keys, nonces and ivs (the CSPRNG a block at a time, random-pool.ts). */
  private readonly random = new RandomPool();
  readonly keys = new PublicKeyCache();
  /** The key id (suite 3's `fromKey`/`toKey`) of this identity's keys. */
  readonly keyId: string;
  /** Suite 4 batch signatures verified: sender's key, tree size, root, signature. */
  private readonly verifiedBatches = new Set<string>();
  /** Ed25519 verifications this sealer made (a batch of suite 4 costs one). */
  signatureChecks = 0;

  constructor(readonly identity: Identity) {
    this.keyId = keyId(identity.publicKeys);
  }

  seal(input: SealInput): Envelope {
    const me = this.identity;
    const recipients = input.recipients.some((r) => r.name === me.name)
      ? input.recipients
      : [...input.recipients, { name: me.name, keys: me.publicKeys }];
    const version = input.version ?? (input.group === null && input.to !== null ? 3 : 4);
    if (version === 3) return this.sealPairwise(input, recipients);
    if (version === 4) {
      const draft = this.sealSigned(input, recipients, 4);
      if (!input.draft) this.signBatch([draft]);
      return draft;
    }
    return this.sealSigned(input, recipients, 2);
  }

  /**
   * Suites 2 and 4: content encrypted once, its key wrapped per recipient; suite 2 signed here,
   * suite 4 returned as a draft (`sig` empty) for signBatch.
   */
  private sealSigned(input: SealInput, recipients: SealInput["recipients"], version: 2 | 4): Envelope {
    const me = this.identity;
    const cek = this.random.take(32);
    const nonce = this.random.take(12);
    const cipher = createCipheriv("aes-256-gcm", cek, nonce);
    cipher.setAAD(contentAad(version, input.id, me.name, input.to, input.group));
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
      wk: b64(this.wrap(cek, r.name, r.keys.enc, wrapAad(version, input.id))),
    }));
    if (version === 4) {
      // Field by field, in the order of suite 2 and of the stored form (server/send.ts); signed by signBatch.
      return {
        v: 4,
        suite: SUITE_V4,
        id: input.id,
        from: me.name,
        device: input.device,
        to: input.to,
        group: input.group,
        seq: input.seq,
        sentAt: input.sentAt,
        nonce: b64(nonce),
        ct: b64(body),
        kc: b64(keyCommitment(cek, input.id, 4)),
        keys,
        sig: "",
        batch: { size: 1, index: 0, path: "" },
      };
    }
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
      kc: b64(keyCommitment(cek, input.id, 2)),
      keys,
    };
    const sig = sign(null, signedBytes(unsigned), me.signPrivate);
    return {
      v: unsigned.v,
      suite: unsigned.suite,
      id: unsigned.id,
      from: unsigned.from,
      device: unsigned.device,
      to: unsigned.to,
      group: unsigned.group,
      seq: unsigned.seq,
      sentAt: unsigned.sentAt,
      nonce: unsigned.nonce,
      ct: unsigned.ct,
      kc: unsigned.kc,
      keys: unsigned.keys,
      sig: b64(sig),
    };
  }

  /**
   * Signs the suite 4 drafts of this identity among `envelopes` with one signature over the
   * Merkle root of their tree, in their order, and gives each its place and inclusion path. The
   * others (signed already, other suites) are left as they are.
   */
  signBatch(envelopes: readonly Envelope[]): void {
    const drafts = envelopes.filter((e): e is BatchEnvelope => isDraft(e) && e.from === this.identity.name);
    if (drafts.length === 0) return;
    const { root, paths } = treeWithPaths(drafts.map((e) => leafHash(signedBytes(e))));
    const sig = b64(sign(null, batchMessage(drafts.length, root), this.identity.signPrivate));
    drafts.forEach((e, i) => {
      e.sig = sig;
      e.batch = { size: drafts.length, index: i, path: b64(Buffer.concat(paths[i]!)) };
    });
  }

  /**
   * Verifies the signature against the sender's public keys (the caller picks which: pinned,
   * or the key of the message's time), then decrypts the copy for this identity. Opens every
   * envelope version.
   */
  open(env: Envelope, senderKeys: PublicKeys): OpenResult {
    if (env.v === 3) return env.suite === SUITE_V3 ? this.openPairwise(env, senderKeys) : unknownSuite;
    if (
      !(
        (env.v === 1 && env.suite === SUITE) ||
        (env.v === 2 && env.suite === SUITE_V2) ||
        (env.v === 4 && env.suite === SUITE_V4)
      )
    )
      return { ok: false, reason: "unknown_suite" };
    let good = false;
    if (env.v === 4) good = this.batchVerified(env, senderKeys);
    else {
      this.signatureChecks++;
      try {
        // signedBytes reads the signed fields by name: the envelope itself, not a copy without `sig`.
        good = verify(null, signedBytes(env), this.keys.signKey(senderKeys.sign), unb64(env.sig));
      } catch {
        good = false;
      }
    }
    if (!good) return { ok: false, reason: "bad_signature" };
    const mine = env.keys.find((k) => k.to === this.identity.name);
    if (!mine) return { ok: false, reason: "not_for_me" };
    try {
      const cek = this.unwrap(unb64(mine.wk), env.from, senderKeys.enc, wrapAad(env.v, env.id));
      if (env.v !== 1) {
        const kc = unb64(env.kc);
        const expected = keyCommitment(cek, env.id, env.v);
        if (kc.length !== expected.length || !timingSafeEqual(kc, expected))
          return { ok: false, reason: "undecryptable" };
      }
      const body = unb64(env.ct);
      if (body.length < 16) return { ok: false, reason: "undecryptable" };
      const decipher = createDecipheriv("aes-256-gcm", cek, unb64(env.nonce));
      decipher.setAAD(contentAad(env.v, env.id, env.from, env.to, env.group));
      decipher.setAuthTag(body.subarray(body.length - 16));
      // GCM's final() only checks the tag and returns nothing: update's output is the whole text.
      const plain = decipher.update(body.subarray(0, body.length - 16));
      decipher.final();
      return readPlaintext(plain);
    } catch {
      return { ok: false, reason: "undecryptable" };
    }
  }

  /**
   * Suite 4: whether the envelope's leaf, by its inclusion path, leads to a root its sender
   * signed. A batch verified before is known by its key, size, root and signature, and costs no
   * Ed25519 verification again.
   */
  private batchVerified(env: BatchEnvelope, senderKeys: PublicKeys): boolean {
    const { size, index } = env.batch;
    const pathBytes = unb64(env.batch.path);
    if (pathBytes.length % HASH_BYTES !== 0) return false;
    const path: Buffer[] = [];
    for (let at = 0; at < pathBytes.length; at += HASH_BYTES)
      path.push(pathBytes.subarray(at, at + HASH_BYTES));
    const root = rootFromPath(leafHash(signedBytes(env)), index, size, path);
    if (root === null) return false;
    const known = `${senderKeys.sign}\0${size}\0${b64(root)}\0${env.sig}`;
    if (this.verifiedBatches.has(known)) return true;
    this.signatureChecks++;
    let good = false;
    try {
      good = verify(null, batchMessage(size, root), this.keys.signKey(senderKeys.sign), unb64(env.sig));
    } catch {
      good = false;
    }
    if (good) {
      if (this.verifiedBatches.size >= VERIFIED_BATCHES_KEPT) {
        const oldest = this.verifiedBatches.values().next().value;
        if (oldest !== undefined) this.verifiedBatches.delete(oldest);
      }
      this.verifiedBatches.add(known);
    }
    return good;
  }

  /** Suite 3 (see SUITE_V3): one content key, wrapped under K(me→to) and K(me→me). */
  private sealPairwise(input: SealInput, recipients: SealInput["recipients"]): PairwiseEnvelope {
    const me = this.identity;
    const to = input.to;
    const peer = recipients.find((r) => r.name === to);
    if (to === null || input.group !== null || !peer || recipients.length > 2)
      throw new ZmqchatError("bad_request", "envelope v3 seals 1:1 messages only");
    const header = {
      v: 3 as const,
      suite: SUITE_V3,
      id: input.id,
      from: me.name,
      device: input.device,
      to,
      group: null,
      seq: input.seq,
      sentAt: input.sentAt,
      fromKey: this.keyId,
      toKey: peer.name === me.name ? this.keyId : this.keys.keyId(peer.keys),
    };
    const h = headerBytes(header);
    // One call for the content key, the nonce and each wrap's iv (each call to the CSPRNG costs).
    const fresh = this.random.take(44 + 12 * recipients.length);
    const cek = fresh.subarray(0, 32);
    const nonce = fresh.subarray(32, 44);
    const cipher = createCipheriv("aes-256-gcm", cek, nonce);
    cipher.setAAD(h);
    const body = Buffer.concat([
      cipher.update(
        JSON.stringify(
          (input.extra ? { text: input.text, extra: input.extra } : { text: input.text }) satisfies Plaintext,
        ),
      ),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    const kc = pairwiseCommitment(cek, h, nonce, body);
    const keys = recipients.map((r, i) => {
      const kek = this.pairwiseKey(me.name, me.publicKeys.enc, r.name, r.keys.enc);
      const iv = fresh.subarray(44 + 12 * i, 56 + 12 * i);
      return { to: r.name, wk: b64(sealKey(kek, iv, cek, pairwiseWrapAad(r.name, h, kc))) };
    });
    // Written out in the header's order (an object spread costs microseconds per message here).
    return {
      v: header.v,
      suite: header.suite,
      id: header.id,
      from: header.from,
      device: header.device,
      to: header.to,
      group: header.group,
      seq: header.seq,
      sentAt: header.sentAt,
      fromKey: header.fromKey,
      toKey: header.toKey,
      nonce: b64(nonce),
      ct: b64(body),
      kc: b64(kc),
      keys,
    };
  }

  /**
   * Suite 3: the copy for this identity opens only under K(from→me), and a copy from this
   * identity only under K(me→me), for the key generations the envelope names.
   */
  private openPairwise(env: PairwiseEnvelope, senderKeys: PublicKeys): OpenResult {
    const me = this.identity;
    if (this.keys.keyId(senderKeys) !== env.fromKey) return { ok: false, reason: "bad_signature" };
    if (env.from === me.name) {
      // My own copy: sealed by one of my key generations for itself; another sealer may hold it.
      if (senderKeys.enc !== me.publicKeys.enc || senderKeys.sign !== me.publicKeys.sign)
        return { ok: false, reason: "undecryptable" };
    } else {
      if (env.to !== me.name) return { ok: false, reason: "not_for_me" };
      if (env.toKey !== this.keyId) return { ok: false, reason: "undecryptable" };
    }
    const mine = env.keys.find((k) => k.to === me.name);
    if (!mine) return { ok: false, reason: "not_for_me" };
    const h = headerBytes(env);
    let cek: Buffer;
    let nonce: Buffer;
    let body: Buffer;
    const kc = unb64(env.kc);
    try {
      nonce = unb64(env.nonce);
      body = unb64(env.ct);
      const kek = this.pairwiseKey(env.from, senderKeys.enc, me.name, me.publicKeys.enc);
      cek = openKey(kek, unb64(mine.wk), pairwiseWrapAad(me.name, h, kc));
    } catch {
      return { ok: false, reason: "forged" };
    }
    const expected = pairwiseCommitment(cek, h, nonce, body);
    if (kc.length !== expected.length || !timingSafeEqual(kc, expected))
      return { ok: false, reason: "forged" };
    try {
      if (body.length < 16 || nonce.length !== 12) return { ok: false, reason: "forged" };
      const decipher = createDecipheriv("aes-256-gcm", cek, nonce);
      decipher.setAAD(h);
      decipher.setAuthTag(body.subarray(body.length - 16));
      const plain = decipher.update(body.subarray(0, body.length - 16));
      decipher.final();
      return readPlaintext(plain);
    } catch {
      return { ok: false, reason: "forged" };
    }
  }

  /**
   * Suite 3's key for messages from `sender` to `recipient` (directional: the info names the
   * sender first). X25519 with this identity's private key and the other party's public key, or
   * with its own public key when this identity is both (K(me→me)).
   */
  private pairwiseKey(sender: string, senderEnc: string, recipient: string, recipientEnc: string): Buffer {
    const cacheKey = `3\0${sender}\0${senderEnc}\0${recipient}\0${recipientEnc}`;
    let k = this.pairKeys.get(cacheKey);
    if (!k) {
      const me = this.identity;
      const mineAsSender = sender === me.name && senderEnc === me.publicKeys.enc;
      const mineAsRecipient = recipient === me.name && recipientEnc === me.publicKeys.enc;
      if (!mineAsSender && !mineAsRecipient)
        throw new ZmqchatError("bad_request", "a pairwise key of two other identities");
      const shared = diffieHellman({
        privateKey: me.encPrivate,
        publicKey: this.keys.encKey(mineAsSender ? recipientEnc : senderEnc),
      });
      const info = Buffer.from(`zmqchat-pair-v3\n${sender}\n${senderEnc}\n${recipient}\n${recipientEnc}`);
      k = Buffer.from(hkdfSync("sha256", shared, Buffer.from(SUITE_V3), info, 32));
      this.pairKeys.set(cacheKey, k);
    }
    return k;
  }

  private wrap(cek: Buffer, peer: string, peerEnc: string, aad: Buffer): Buffer {
    const kek = this.pairKey(this.identity.name, this.identity.publicKeys.enc, peer, peerEnc);
    const iv = this.random.take(12);
    const c = createCipheriv("aes-256-gcm", kek, iv);
    c.setAAD(aad);
    return Buffer.concat([iv, c.update(cek), c.final(), c.getAuthTag()]);
  }

  /**
   * The sender whose wrapped keys this identity unwrapped last, with their pair key: a run of
   * deliveries mostly comes from one sender (a group's burst), and pairKey's cache key is a new
   * string of ~130 characters to build and hash per message.
   */
  private unwrapFrom: { sender: string; enc: string; kek: Buffer } | null = null;

  private unwrap(wk: Buffer, sender: string, senderEnc: string, aad: Buffer): Buffer {
    let last = this.unwrapFrom;
    if (last === null || last.sender !== sender || last.enc !== senderEnc) {
      const kek = this.pairKey(sender, senderEnc, this.identity.name, this.identity.publicKeys.enc);
      last = { sender, enc: senderEnc, kek };
      this.unwrapFrom = last;
    }
    return openKey(last.kek, wk, aad);
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

const unknownSuite: OpenResult = { ok: false, reason: "unknown_suite" };

/** The sealed content, {text, extra?}; a content that is not one is "undecryptable". */
function readPlaintext(plain: Buffer): OpenResult {
  const parsed = JSON.parse(plain.toString("utf8")) as Partial<Plaintext>;
  if (typeof parsed.text !== "string") return { ok: false, reason: "undecryptable" };
  // `extra` is checked by the client (core/client/actions.ts), which can say what is wrong with it.
  return parsed.extra === undefined
    ? { ok: true, text: parsed.text }
    : { ok: true, text: parsed.text, extra: parsed.extra };
}

/** AES-256-GCM of a 32-byte key under `kek` with a fresh 12-byte `iv`: iv ‖ ciphertext ‖ tag (60 bytes). */
function sealKey(kek: Buffer, iv: Buffer, key: Buffer, aad: Buffer): Buffer {
  const c = createCipheriv("aes-256-gcm", kek, iv);
  c.setAAD(aad);
  return Buffer.concat([iv, c.update(key), c.final(), c.getAuthTag()]);
}

function openKey(kek: Buffer, wk: Buffer, aad: Buffer): Buffer {
  if (wk.length !== 12 + 32 + 16) throw new ZmqchatError("bad_request", "wrapped key has the wrong size");
  const d = createDecipheriv("aes-256-gcm", kek, wk.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(wk.subarray(44));
  const key = d.update(wk.subarray(12, 44));
  // Checks the tag (throws when it fails); GCM has nothing left to give.
  d.final();
  return key;
}

/** Suite 3's header H: every field but the nonce, ciphertext, commitment and wrapped keys, in a fixed order. */
function headerBytes(env: Omit<PairwiseEnvelope, "nonce" | "ct" | "kc" | "keys">): Buffer {
  return Buffer.from(
    JSON.stringify([
      "zmqchat-envelope-v3",
      env.v,
      env.suite,
      env.id,
      env.from,
      env.device,
      env.to,
      env.group,
      env.seq,
      env.sentAt,
      env.fromKey,
      env.toKey,
    ]),
  );
}

/** Suite 3's key commitment: HMAC-SHA256 keyed by the content key over H, the nonce and the ciphertext. */
function pairwiseCommitment(cek: Buffer, h: Buffer, nonce: Buffer, body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(h.length);
  return createHmac("sha256", cek)
    .update("zmqchat-key-commitment-v3\n")
    .update(len)
    .update(h)
    .update(nonce)
    .update(body)
    .digest();
}

/** The associated data of suite 3's wrapped key for `owner`: the owner, H and the commitment. */
function pairwiseWrapAad(owner: string, h: Buffer, kc: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`zmqchat-wrap-v3\n${owner}\n`), h, kc]);
}

/** A suite 4 envelope sealed with `draft` and not signed yet (Sealer.signBatch signs it). */
export function isDraft(env: Envelope): boolean {
  return env.v === 4 && env.sig === "";
}

/**
 * What identifies one sealing of a message: the signature (suites 1, 2) or the key commitment
 * (suites 3, 4), both fresh per sealing, with every field a client takes from its own send when
 * it comes back (core/client/client.ts takes the text from the send, without opening the copy):
 * the service cannot hand a device its own envelope back with another audience, number, time
 * or ciphertext and have it shown as sent, where the signature or commitment alone left those
 * unchecked on that path.
 */
export function sealTag(env: Envelope): string {
  // Suite 4's signature is made after sealing, for the whole batch: its commitment is the tag.
  const fresh = env.v === 3 || env.v === 4 ? env.kc : env.sig;
  return `${env.v}\0${fresh}\0${env.from}\0${env.device}\0${env.to}\0${env.group}\0${env.seq}\0${env.sentAt}\0${env.nonce}\0${env.ct}`;
}

/**
 * The bytes the signature covers, in a fixed order: in version 1 every field but `sig`; in
 * version 2 every field but `sig` and the wrapped keys (see SUITE_V2 for why that is safe).
 */
export function signedBytes(env: UnsignedEnvelope): Buffer {
  // Each array written out (no spread of a shared prefix): built for every group message opened.
  if (env.v === 1)
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
  return Buffer.from(
    JSON.stringify([
      env.v === 4 ? "zmqchat-envelope-v4" : "zmqchat-envelope-v2",
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
      env.kc,
    ]),
  );
}

/** What suite 4's signature signs: a label, the tree size and the root. */
function batchMessage(size: number, root: Buffer): Buffer {
  const head = Buffer.from("zmqchat-batch-v4\n\0\0\0\0");
  head.writeUInt32BE(size, head.length - 4);
  return Buffer.concat([head, root]);
}

/** The AES-GCM associated data of the content: the routing header (and, from v2, the version). */
function contentAad(v: 1 | 2 | 4, id: string, from: string, to: string | null, group: string | null): Buffer {
  return Buffer.from(JSON.stringify(v === 1 ? { id, from, to, group } : { v, id, from, to, group }));
}

/** The AES-GCM associated data of a wrapped key: the message id (with a version label from v2). */
function wrapAad(v: 1 | 2 | 4, id: string): Buffer {
  return Buffer.from(v === 1 ? id : `zmqchat-wrap-v${v}\n${id}`);
}

/** The key commitment of suites 2 and 4: HMAC-SHA256 keyed by the content key over a label and the id. */
function keyCommitment(cek: Buffer, id: string, v: 2 | 4): Buffer {
  return createHmac("sha256", cek).update(`zmqchat-key-commitment-v${v}\n${id}`).digest();
}

/**
 * The copy of an envelope that `owner`'s mailbox keeps: from version 2, only the owner's own
 * wrapped key (neither the signature nor, in version 3, the other wraps cover the others);
 * version 1 copies keep every key.
 */
export function copyFor(env: Envelope, owner: string): Envelope {
  if (env.v === 1) return env;
  return { ...env, keys: env.keys.filter((k) => k.to === owner) };
}

export type { KeyObject };
