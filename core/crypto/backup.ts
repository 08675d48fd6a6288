import {
  createCipheriv,
  createDecipheriv,
  createHash,
  hkdfSync,
  randomBytes,
  scryptSync,
  timingSafeEqual,
} from "node:crypto";
import { ZmqchatError } from "../errors.js";
import type { IdentitySecrets } from "./keys.js";

/** What a key backup holds: the identity's secrets and any earlier ones (to open old messages). */
export interface BackupContents {
  name: string;
  secrets: IdentitySecrets;
  previous: IdentitySecrets[];
}

/** The public part of a backup: how to derive its keys from the passphrase. */
export interface BackupParams {
  kdf: "scrypt";
  N: number;
  r: number;
  p: number;
  salt: string;
}

interface BackupBlob extends BackupParams {
  /** 1: scrypt output is the AES key (no proof possible). 2: scrypt, then HKDF into an encryption and an auth key. */
  v: 1 | 2;
  nonce: string;
  ct: string;
}

/** scrypt cost: 2^17 × 8 × 128 bytes = 128 MiB and about half a second per guess, to slow down guessing. */
const COST = { N: 2 ** 17, r: 8, p: 1 };

function scrypt(passphrase: string, salt: Buffer, cost: { N: number; r: number; p: number }): Buffer {
  return scryptSync(passphrase.normalize("NFKC"), salt, 32, { ...cost, maxmem: 256 * 1024 * 1024 });
}

/**
 * The keys of a v2 backup. scrypt (RFC 7914) makes a master secret from the passphrase; HKDF-SHA256
 * (RFC 5869) splits it into an encryption key, which never leaves the client, and an auth key,
 * which the client shows the server to fetch the backup. The server keeps only SHA-256 of the
 * auth key (the "verifier"): the split of Bitwarden's master key / master password hash, so the
 * server can check a proof without learning the passphrase or the encryption key.
 */
export interface BackupKeys {
  enc: Buffer;
  auth: Buffer;
}

export function deriveBackupKeys(passphrase: string, params: BackupParams): BackupKeys {
  checkCost(params);
  const salt = Buffer.from(params.salt, "base64url");
  const master = scrypt(passphrase, salt, params);
  const split = (info: string) => Buffer.from(hkdfSync("sha256", master, salt, info, 32));
  return { enc: split("zmqchat-backup-v2 encryption"), auth: split("zmqchat-backup-v2 auth") };
}

/** The proof a client shows to fetch a backup: the auth key. */
export function backupProof(keys: BackupKeys): string {
  return keys.auth.toString("base64url");
}

/** What the server keeps to check a proof: SHA-256 of the auth key. */
export function backupVerifier(proof: string): string {
  return createHash("sha256").update(Buffer.from(proof, "base64url")).digest("base64url");
}

/** Compares a proof with a stored verifier in constant time. */
export function proofMatches(proof: string, verifier: string): boolean {
  const a = Buffer.from(backupVerifier(proof), "base64url");
  const b = Buffer.from(verifier, "base64url");
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Encrypts an identity under a passphrase (v2: scrypt → HKDF-SHA256 → AES-256-GCM, the name as
 * associated data). Returns the blob and the verifier the server keeps to check proofs.
 */
export function sealBackup(
  contents: BackupContents,
  passphrase: string,
  cost = COST,
): { blob: string; verifier: string } {
  if (passphrase.length < 8) throw new ZmqchatError("usage", "the passphrase must be at least 8 characters");
  const params: BackupParams = { kdf: "scrypt", ...cost, salt: randomBytes(16).toString("base64url") };
  const keys = deriveBackupKeys(passphrase, params);
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", keys.enc, nonce);
  c.setAAD(Buffer.from(`zmqchat-backup-v2\n${contents.name}`));
  const ct = Buffer.concat([c.update(JSON.stringify(contents)), c.final(), c.getAuthTag()]);
  const blob: BackupBlob = {
    v: 2,
    ...params,
    nonce: nonce.toString("base64url"),
    ct: ct.toString("base64url"),
  };
  return { blob: JSON.stringify(blob), verifier: backupVerifier(backupProof(keys)) };
}

/** The public derivation parameters of a blob (null when it is not a backup this code knows). */
export function backupParamsOf(text: string): (BackupParams & { v: 1 | 2 }) | null {
  try {
    const b = JSON.parse(text) as Partial<BackupBlob>;
    if ((b.v !== 1 && b.v !== 2) || b.kdf !== "scrypt") return null;
    if (typeof b.N !== "number" || typeof b.r !== "number" || typeof b.p !== "number") return null;
    if (typeof b.salt !== "string") return null;
    return { v: b.v, kdf: "scrypt", N: b.N, r: b.r, p: b.p, salt: b.salt };
  } catch {
    return null;
  }
}

function checkCost(c: { N: number; r: number; p: number }): void {
  if (c.N > 2 ** 20 || c.r > 16 || c.p > 4)
    throw new ZmqchatError("internal", "the key backup asks for too costly a KDF");
}

/**
 * Opens a backup of either format: v2 (keys from `deriveBackupKeys`, which the caller may pass
 * when it already derived them for the proof) or v1 (scrypt output as the AES key).
 */
export function openBackup(
  text: string,
  name: string,
  passphrase: string,
  keys?: BackupKeys,
): BackupContents {
  let blob: BackupBlob;
  try {
    blob = JSON.parse(text) as BackupBlob;
  } catch (cause) {
    throw new ZmqchatError("internal", "the stored key backup is not readable", { cause });
  }
  if ((blob.v !== 1 && blob.v !== 2) || blob.kdf !== "scrypt")
    throw new ZmqchatError("internal", "unknown key backup format");
  checkCost(blob);
  const ct = Buffer.from(blob.ct, "base64url");
  try {
    const key =
      blob.v === 2
        ? (keys ?? deriveBackupKeys(passphrase, blob)).enc
        : scrypt(passphrase, Buffer.from(blob.salt, "base64url"), blob);
    const d = createDecipheriv("aes-256-gcm", key, Buffer.from(blob.nonce, "base64url"));
    d.setAAD(Buffer.from(`zmqchat-backup-v${blob.v}\n${name}`));
    d.setAuthTag(ct.subarray(ct.length - 16));
    const plain = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
    return JSON.parse(plain.toString("utf8")) as BackupContents;
  } catch (cause) {
    throw new ZmqchatError("unauthorized", "wrong passphrase (or the backup was altered)", { cause });
  }
}
