import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import { ZmqchatError } from "../errors.js";
import type { IdentitySecrets } from "./keys.js";

/** What a key backup holds: the identity's secrets and any earlier ones (to open old messages). */
export interface BackupContents {
  name: string;
  secrets: IdentitySecrets;
  previous: IdentitySecrets[];
}

interface BackupBlob {
  v: 1;
  kdf: "scrypt";
  N: number;
  r: number;
  p: number;
  salt: string;
  nonce: string;
  ct: string;
}

/** scrypt cost: 2^17 × 8 × 128 bytes = 128 MiB and about half a second per guess, to slow down guessing. */
const COST = { N: 2 ** 17, r: 8, p: 1 };

function deriveKey(passphrase: string, salt: Buffer, cost: { N: number; r: number; p: number }): Buffer {
  return scryptSync(passphrase.normalize("NFKC"), salt, 32, { ...cost, maxmem: 256 * 1024 * 1024 });
}

/** Encrypts an identity under a passphrase (scrypt + AES-256-GCM, the name as associated data). */
export function sealBackup(contents: BackupContents, passphrase: string, cost = COST): string {
  if (passphrase.length < 8) throw new ZmqchatError("usage", "the passphrase must be at least 8 characters");
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", deriveKey(passphrase, salt, cost), nonce);
  c.setAAD(Buffer.from(`zmqchat-backup-v1\n${contents.name}`));
  const ct = Buffer.concat([c.update(JSON.stringify(contents)), c.final(), c.getAuthTag()]);
  const blob: BackupBlob = {
    v: 1,
    kdf: "scrypt",
    ...cost,
    salt: salt.toString("base64url"),
    nonce: nonce.toString("base64url"),
    ct: ct.toString("base64url"),
  };
  return JSON.stringify(blob);
}

export function openBackup(text: string, name: string, passphrase: string): BackupContents {
  let blob: BackupBlob;
  try {
    blob = JSON.parse(text) as BackupBlob;
  } catch (cause) {
    throw new ZmqchatError("internal", "the stored key backup is not readable", { cause });
  }
  if (blob.v !== 1 || blob.kdf !== "scrypt") throw new ZmqchatError("internal", "unknown key backup format");
  if (blob.N > 2 ** 20 || blob.r > 16 || blob.p > 4)
    throw new ZmqchatError("internal", "the key backup asks for too costly a KDF");
  const ct = Buffer.from(blob.ct, "base64url");
  try {
    const key = deriveKey(passphrase, Buffer.from(blob.salt, "base64url"), blob);
    const d = createDecipheriv("aes-256-gcm", key, Buffer.from(blob.nonce, "base64url"));
    d.setAAD(Buffer.from(`zmqchat-backup-v1\n${name}`));
    d.setAuthTag(ct.subarray(ct.length - 16));
    const plain = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
    return JSON.parse(plain.toString("utf8")) as BackupContents;
  } catch (cause) {
    throw new ZmqchatError("unauthorized", "wrong passphrase (or the backup was altered)", { cause });
  }
}
