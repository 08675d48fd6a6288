import { ZmqchatError } from "../../core/errors.js";

/** One stored object as a listing names it. */
export interface BlobEntry {
  key: string;
  size: number;
}

/**
 * Where the servers keep file chunks (issue 18): bytes under keys, nothing more. What a key
 * means (a file's metadata, its chunks, its uploader's ledger) is decided by server/blobs/files.ts,
 * so that every implementation holds the same shape and passes one contract suite
 * (test/contract/blob-contract.ts). Everything put here is ciphertext or routing metadata:
 * the servers never see a file's content.
 *
 * Keys are `/`-separated segments of `[A-Za-z0-9_.=-]`, none `.` or `..` (checkBlobKey), so no
 * key can name a path outside the store.
 */
export interface BlobStore {
  /** Stores `bytes` under `key`, replacing what was there; a reader sees the old or the new bytes, never a part. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** The bytes under `key`, or null when there are none. */
  get(key: string): Promise<Buffer | null>;
  /** Every key that starts with `prefix`, in key order, with its size in bytes. */
  list(prefix: string): Promise<BlobEntry[]>;
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9_.=-]{1,200}$/;

/** Refuses a key that is not made of safe segments (so none can escape the store's root). */
export function checkBlobKey(key: string): void {
  const parts = key.split("/");
  if (key.length > 1024 || parts.some((p) => !SEGMENT.test(p) || p === "." || p === ".."))
    throw new ZmqchatError("bad_request", `not a blob key: ${JSON.stringify(key.slice(0, 80))}`);
}
