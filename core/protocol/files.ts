import { z } from "zod";
import { UUID_PATTERN } from "./ids.js";
import { NAME_PATTERN } from "./limits.js";

/**
 * Attachments on the wire (issue 18). A file is encrypted on the sender's machine and cut into
 * chunks of FILE_CHUNK_BYTES; each chunk travels as `IV (12) ‖ AES-256-GCM ciphertext ‖ tag (16)`
 * (core/client/files.ts), so the service stores and serves ciphertext only. Upload: `file.init`
 * (says which chunks the service has already, so a retry resumes), `file.put` per chunk,
 * `file.done`. Download: `file.get` per chunk, for the file's audience only.
 */

/** Plaintext bytes per chunk (the last one may be shorter): 256 KiB, well inside a 1 MiB frame as base64url. */
export const FILE_CHUNK_BYTES = 256 * 1024;
/** What a chunk adds to its plaintext: a 12-byte IV and a 16-byte GCM tag. */
export const FILE_CHUNK_OVERHEAD = 12 + 16;
/** The largest file any server accepts, whatever it is configured with (servers default to 100 MiB). */
export const MAX_FILE_BYTES_CEILING = 16 * 1024 ** 3;
/** Base64url characters of the largest chunk. */
const MAX_CHUNK_CHARS = Math.ceil(((FILE_CHUNK_BYTES + FILE_CHUNK_OVERHEAD) * 4) / 3);

/** How many chunks a file of `size` bytes has (an empty file has one, empty, chunk). */
export function chunkCount(size: number): number {
  return Math.max(1, Math.ceil(size / FILE_CHUNK_BYTES));
}

/** The plaintext bytes of chunk `index` of a file of `size` bytes. */
export function chunkPlainBytes(size: number, index: number): number {
  return Math.max(0, Math.min(FILE_CHUNK_BYTES, size - index * FILE_CHUNK_BYTES));
}

const fileId = z.string().regex(UUID_PATTERN, "a file id is a UUID");
const name = z.string().regex(NAME_PATTERN);
const index = z.number().int().nonnegative().max(1_000_000);
const chunkData = z
  .string()
  .regex(/^[A-Za-z0-9_-]*$/, "base64url expected")
  .max(MAX_CHUNK_CHARS);

export const fileRequestBodies = {
  /**
   * Starts (or resumes) an upload of `size` bytes in `chunks` chunks for the audience of a
   * message to `to` or to `group` (exactly one): only they and the uploader may fetch it.
   */
  "file.init": z.strictObject({
    id: fileId,
    size: z.number().int().nonnegative().max(MAX_FILE_BYTES_CEILING),
    chunks: z.number().int().min(1).max(1_000_000),
    to: name.nullable(),
    group: name.nullable(),
  }),
  /** One encrypted chunk, base64url. Putting a chunk again replaces it (a retry). */
  "file.put": z.strictObject({ id: fileId, index, data: chunkData }),
  /** Every chunk is there: the file can be fetched from now on. */
  "file.done": z.strictObject({ id: fileId }),
  /** One encrypted chunk of a complete file. */
  "file.get": z.strictObject({ id: fileId, index }),
  /** The uploader removes a file (its chunks, metadata and quota), as `zmqchat delete` of its message does. */
  "file.delete": z.strictObject({ id: fileId }),
} as const;

export const fileReplyBodies = {
  /** `have`: the chunk indexes the service holds already (empty for a new upload). */
  "file.init": z.object({ have: z.array(z.number().int().nonnegative()), complete: z.boolean() }),
  "file.put": z.object({ stored: z.literal(true) }),
  "file.done": z.object({ complete: z.literal(true) }),
  "file.get": z.object({ data: z.string(), chunks: z.number().int() }),
  "file.delete": z.object({ deleted: z.literal(true) }),
} as const;
