import { dirname, join } from "node:path";
import { ZmqchatError } from "../../core/errors.js";
import type { BlobStore } from "./store.js";

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
