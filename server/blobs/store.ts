import { dirname, join } from "node:path";
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

/**
 * Opens the blob store a URL names: `file:PATH` or a bare path (the embedded store on disk),
 * `s3://BUCKET[/PREFIX][?endpoint=URL&region=R]` (S3 or an S3-compatible service; credentials
 * from the AWS SDK's default chain: environment, profile, or the EC2 instance role).
 */
export async function openBlobStore(url: string): Promise<BlobStore> {
  if (url.startsWith("s3://")) {
    const { S3BlobStore } = await import("./s3.js");
    return S3BlobStore.fromUrl(url);
  }
  const { DiskBlobStore } = await import("./disk.js");
  if (url.startsWith("file:"))
    return DiskBlobStore.open(url.slice("file:".length).replace(/^\/\/(?=\/)/, ""));
  if (url.includes("://"))
    throw new ZmqchatError("usage", `unknown blob store URL ${url}`, {
      hint: "use file:PATH, a bare path, or s3://BUCKET[/PREFIX]?endpoint=URL&region=R",
    });
  return DiskBlobStore.open(url);
}

/**
 * The blob store a server uses when none is configured: `blobs/` beside an SQLite store file
 * (so the local stack keeps files under HOME/stack/blobs), none for other stores.
 */
export function defaultBlobUrl(storeUrl: string): string | null {
  const path = storeUrl.startsWith("sqlite:") ? storeUrl.slice("sqlite:".length) : storeUrl;
  if (path.includes("://") || path === ":memory:" || path === "") return null;
  return join(dirname(path), "blobs");
}
