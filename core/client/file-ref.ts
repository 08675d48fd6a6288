import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type Database from "better-sqlite3";
import { z } from "zod";
import { ZmqchatError } from "../errors.js";
import { FILE_CHUNK_OVERHEAD } from "../protocol/files.js";
import { UUID_PATTERN } from "../protocol/ids.js";

/**
 * What a file message seals beside its text (the envelope's `extra.file`, signed with it): where
 * the encrypted chunks are (`id`), the key that opens them, and what the recipient should get
 * (name, size, type, SHA-256 of the plaintext). The service never sees any of it.
 */
export interface FileRef {
  id: string;
  name: string;
  size: number;
  type: string;
  /** SHA-256 of the whole plaintext, hex. */
  sha256: string;
  /** The file's own AES-256-GCM key, base64url (32 bytes), fresh for each file. */
  key: string;
  chunks: number;
}

/** The most UTF-8 bytes of a file name as sealed (the name is sanitised again when written). */
export const MAX_FILE_NAME_BYTES = 255;

export const fileRefSchema = z
  .object({
    id: z.string().regex(UUID_PATTERN),
    name: z
      .string()
      .min(1)
      .refine((n) => Buffer.byteLength(n) <= MAX_FILE_NAME_BYTES, "a file name is at most 255 bytes"),
    size: z.number().int().nonnegative(),
    type: z.string().max(255),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    key: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    chunks: z.number().int().min(1),
  })
  .strict();

/** The file fields `history --json` shows (never the key). */
export function publicFileFields(f: FileRef): { name: string; size: number; type: string; sha256: string } {
  return { name: f.name, size: f.size, type: f.type, sha256: f.sha256 };
}

/**
 * The additional data each chunk is sealed with: a label, the file id, the chunk's index and the
 * chunk count. A chunk moved to another index or file, or a file cut short (fewer chunks than
 * sealed), fails its GCM tag check.
 */
function chunkAad(fileId: string, index: number, chunks: number): Buffer {
  const aad = Buffer.alloc(16 + 16 + 8);
  aad.write("zmqchat-file-v1\0", 0, "latin1");
  Buffer.from(fileId.replaceAll("-", ""), "hex").copy(aad, 16);
  aad.writeUInt32BE(index, 32);
  aad.writeUInt32BE(chunks, 36);
  return aad;
}

/** Encrypts one chunk with AES-256-GCM (NIST SP 800-38D): a random 96-bit IV ‖ ciphertext ‖ 128-bit tag. */
export function sealChunk(key: Buffer, fileId: string, index: number, chunks: number, plain: Buffer): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(chunkAad(fileId, index, chunks));
  return Buffer.concat([iv, c.update(plain), c.final(), c.getAuthTag()]);
}

/** Opens one chunk sealed by sealChunk; throws when it is not chunk `index` of `chunks` of this file under this key. */
export function openChunk(
  key: Buffer,
  fileId: string,
  index: number,
  chunks: number,
  sealed: Buffer,
): Buffer {
  if (sealed.length < FILE_CHUNK_OVERHEAD)
    throw new ZmqchatError("internal", `chunk ${index} of the file is too short`);
  try {
    const d = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, 12));
    d.setAAD(chunkAad(fileId, index, chunks));
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  } catch (cause) {
    throw new ZmqchatError(
      "internal",
      `chunk ${index} of the file does not open: altered, swapped or not its own`,
      {
        cause,
      },
    );
  }
}

const SCHEMA =
  "CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, conv TEXT NOT NULL, ref TEXT NOT NULL);";

/** The cache's record of file messages: message id → its FileRef (in the cache's own database). */
export class FileRefStore {
  private readonly stmts;

  constructor(db: Database.Database) {
    db.exec(SCHEMA);
    this.stmts = {
      insert: db.prepare("INSERT OR IGNORE INTO files (id, conv, ref) VALUES (?, ?, ?)"),
      get: db.prepare<[string], { ref: string }>("SELECT ref FROM files WHERE id = ?"),
      ofConv: db.prepare<[string], { id: string; ref: string }>("SELECT id, ref FROM files WHERE conv = ?"),
      forget: db.prepare("DELETE FROM files WHERE id = ? AND conv = ?"),
    };
  }

  /** Keeps a file message's reference (idempotent). */
  landed(m: { id: string; conv: string; file?: FileRef | null }): void {
    if (m.file) this.stmts.insert.run(m.id, m.conv, JSON.stringify(m.file));
  }

  /** Drops a deleted message's file reference: its key, name and digest leave the cache. */
  forget(messageId: string, conv: string): void {
    this.stmts.forget.run(messageId, conv);
  }

  /** The file a message carries, or null. */
  get(messageId: string): FileRef | null {
    const r = this.stmts.get.get(messageId);
    return r ? (JSON.parse(r.ref) as FileRef) : null;
  }

  /** Every file message of a conversation, by message id. */
  ofConv(conv: string): Map<string, FileRef> {
    return new Map(this.stmts.ofConv.all(conv).map((r) => [r.id, JSON.parse(r.ref) as FileRef]));
  }
}
