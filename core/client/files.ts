import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { link, open, rename, rm, stat, truncate, unlink } from "node:fs/promises";
import { basename, extname } from "node:path";
import { ZmqchatError } from "../errors.js";
import { chunkCount, chunkPlainBytes, FILE_CHUNK_BYTES } from "../protocol/files.js";
import { uuidv7 } from "../protocol/ids.js";
import type { ReplyBody, RequestBody, RequestType } from "../protocol/schema.js";
import type { RequestOptions } from "./channel.js";
import { type FileRef, MAX_FILE_NAME_BYTES, openChunk, sealChunk } from "./file-ref.js";

/**
 * Attachments on the client (issue 18): a file is encrypted here under a fresh AES-256-GCM key,
 * chunk by chunk (file-ref.ts), uploaded as ciphertext, and its key and digest travel inside
 * the sealed, signed message (`extra.file`). Both directions resume: an upload remembers its id
 * and key until its message is sent, and the service says which chunks it holds; a download
 * writes a `.part` file in order and continues after its last whole chunk.
 */

/** What the transfer functions need of a client: one request with retries (ChatClient.request). */
export interface FileRequester {
  request<T extends RequestType>(type: T, body: RequestBody<T>, opts?: RequestOptions): Promise<ReplyBody<T>>;
}

/** Where an unfinished upload's id and key are kept, so a retry resumes (the cache's state table). */
export interface UploadMemory {
  getState(key: string): string | null;
  setState(key: string, value: string): void;
}

export interface TransferOptions {
  /** Per request, retries included. */
  timeoutMs?: number;
  /** Chunks in flight at once (default 4). */
  inFlight?: number;
  /** Bytes done (plaintext) and total, after each chunk. */
  onProgress?: (done: number, total: number) => void;
}

const TYPES: Record<string, string> = {
  ".txt": "text/plain",
  ".md": "text/markdown",
  ".csv": "text/csv",
  ".json": "application/json",
  ".pdf": "application/pdf",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".svg": "image/svg+xml",
  ".mp3": "audio/mpeg",
  ".mp4": "video/mp4",
  ".zip": "application/zip",
  ".gz": "application/gzip",
  ".tar": "application/x-tar",
  ".html": "text/html",
};

/** A media type from the file name's extension (application/octet-stream when unknown). */
export function guessType(name: string): string {
  return TYPES[extname(name).toLowerCase()] ?? "application/octet-stream";
}

/** SHA-256 of a file, hex, read as a stream. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** A file's name sealed for its recipients: the last path segment, at most 255 bytes. */
export function sealedName(path: string): string {
  let name = basename(path) || "file";
  while (Buffer.byteLength(name) > MAX_FILE_NAME_BYTES) name = name.slice(0, -1);
  return name;
}

/**
 * A file name a sender chose, made safe to create in a directory: no path (the last segment of
 * `/` or `\`), no control, bidi or invisible formatting characters (each becomes `_`), not `.`
 * or `..` nor hidden by a leading dot, at most 255 bytes; `download` when nothing is left.
 */
export function safeFileName(name: string): string {
  const last = name.split(/[/\\]/).pop() ?? "";
  let out = last.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/gu,
    "_",
  );
  out = out.replace(/^\.+/, (dots) => "_".repeat(dots.length)).trim();
  while (Buffer.byteLength(out) > MAX_FILE_NAME_BYTES) out = [...out].slice(0, -1).join("");
  return out === "" ? "download" : out;
}

/** Runs `work(i)` for each index with at most `n` at once; stops at the first failure. */
async function pool(indexes: number[], n: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const runner = async () => {
    while (failed === null && next < indexes.length) {
      const i = indexes[next++]!;
      try {
        await work(i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, n) }, runner));
  if (failed !== null) throw failed;
}

/**
 * Encrypts and uploads the file at `path` for a message to `target`; resolves with the FileRef
 * to seal in that message once the service holds every chunk. Called again for the same file
 * and target after a failure (or in a new process with the same `memory`), it continues with
 * the same id and key and sends only the chunks the service lacks.
 */
export async function uploadFile(
  req: FileRequester,
  path: string,
  target: { user: string } | { group: string },
  memory: UploadMemory,
  opts: TransferOptions = {},
): Promise<FileRef> {
  const info = await stat(path).catch((cause) => {
    throw new ZmqchatError("usage", `cannot read ${path}: ${(cause as Error).message}`, { cause });
  });
  if (!info.isFile()) throw new ZmqchatError("usage", `${path} is not a regular file`);
  const size = info.size;
  const chunks = chunkCount(size);
  const sha256 = await sha256File(path);
  const resumeKey = `upload:${sha256}:${"user" in target ? `u:${target.user}` : `g:${target.group}`}`;
  const kept = memory.getState(resumeKey);
  const { id, key } = kept
    ? (JSON.parse(kept) as { id: string; key: string })
    : { id: uuidv7(), key: randomBytes(32).toString("base64url") };
  if (!kept) memory.setState(resumeKey, JSON.stringify({ id, key }));
  const keyBytes = Buffer.from(key, "base64url");
  const ro = { timeoutMs: opts.timeoutMs };
  const init = await req.request(
    "file.init",
    {
      id,
      size,
      chunks,
      to: "user" in target ? target.user : null,
      group: "group" in target ? target.group : null,
    },
    ro,
  );
  const have = new Set(init.have);
  let done = 0;
  for (const i of have) done += chunkPlainBytes(size, i);
  opts.onProgress?.(done, size);
  if (!init.complete) {
    const fh = await open(path, "r");
    try {
      const missing = Array.from({ length: chunks }, (_, i) => i).filter((i) => !have.has(i));
      await pool(missing, opts.inFlight ?? 4, async (i) => {
        const plain = Buffer.alloc(chunkPlainBytes(size, i));
        const { bytesRead } = await fh.read(plain, 0, plain.length, i * FILE_CHUNK_BYTES);
        if (bytesRead !== plain.length)
          throw new ZmqchatError("conflict", `${path} changed while it was sent`);
        const data = sealChunk(keyBytes, id, i, chunks, plain).toString("base64url");
        await req.request("file.put", { id, index: i, data }, ro);
        done += plain.length;
        opts.onProgress?.(done, size);
      });
    } finally {
      await fh.close();
    }
    await req.request("file.done", { id }, ro);
  }
  // The file must still be what was hashed: a change while it was read would reach the recipients as a bad digest.
  if ((await sha256File(path)) !== sha256)
    throw new ZmqchatError("conflict", `${path} changed while it was sent`);
  return { id, name: sealedName(path), size, type: guessType(path), sha256, key, chunks };
}

/** Forgets an upload's id and key once its message is stored (a new send of the file is a new upload). */
export function forgetUpload(
  memory: UploadMemory,
  ref: FileRef,
  target: { user: string } | { group: string },
): void {
  memory.setState(`upload:${ref.sha256}:${"user" in target ? `u:${target.user}` : `g:${target.group}`}`, "");
}

/** True when `memory` holds an upload of this digest and target (for tests and status). */
export function uploadKept(
  memory: UploadMemory,
  sha256: string,
  target: { user: string } | { group: string },
): boolean {
  return Boolean(
    memory.getState(`upload:${sha256}:${"user" in target ? `u:${target.user}` : `g:${target.group}`}`),
  );
}

/**
 * After its author deleted a file message for everyone: removes the file from the service, so
 * nobody fetches it any more and the uploader's quota is freed. "gone": it was removed before;
 * "kept": the service cannot remove files (no blob store, or a server older than `file.delete`).
 * Copies already downloaded stay where they were saved.
 */
export async function removeFromService(
  req: FileRequester,
  ref: FileRef,
  opts: RequestOptions = {},
): Promise<"removed" | "gone" | "kept"> {
  try {
    await req.request("file.delete", { id: ref.id }, opts);
    return "removed";
  } catch (err) {
    if (!(err instanceof ZmqchatError)) throw err;
    if (err.code === "not_found") return "gone";
    if (err.code === "bad_request" || err.code === "forbidden") return "kept";
    throw err;
  }
}

/** The `.part` file a download of `out` writes before it is checked and renamed. */
export function partPath(out: string): string {
  return `${out}.zmqchat-part`;
}

/**
 * Downloads, decrypts and checks the file `ref` into `out`. Chunks are fetched several at a
 * time but written in order to `out.zmqchat-part`, so a download cut at any point continues
 * after the part's last whole chunk when retried. The SHA-256 must match the sealed one before
 * the file takes its name; `out` is never replaced unless `force`.
 */
export async function downloadFile(
  req: FileRequester,
  ref: FileRef,
  out: string,
  opts: TransferOptions & { force?: boolean } = {},
): Promise<{ path: string; bytes: number }> {
  if (!opts.force && (await exists(out)))
    throw new ZmqchatError("conflict", `${out} exists`, {
      hint: "give --force to replace it, or --out PATH",
    });
  const part = partPath(out);
  const key = Buffer.from(ref.key, "base64url");
  const partSize = (await stat(part).catch(() => null))?.size ?? 0;
  // Only whole chunks count: a chunk written in part when the download stopped is fetched again.
  const start = Math.min(Math.floor(partSize / FILE_CHUNK_BYTES), ref.chunks);
  await truncateOrCreate(part, start * FILE_CHUNK_BYTES);
  const fh = await open(part, "r+", 0o600);
  const ro = { timeoutMs: opts.timeoutMs };
  try {
    let done = start * FILE_CHUNK_BYTES;
    opts.onProgress?.(Math.min(done, ref.size), ref.size);
    const window = Math.max(1, opts.inFlight ?? 4);
    const pending = new Map<number, Promise<Buffer>>();
    const fetch = (i: number) =>
      req.request("file.get", { id: ref.id, index: i }, ro).then((r) => {
        if (r.chunks !== ref.chunks)
          throw new ZmqchatError(
            "internal",
            `the service holds ${r.chunks} chunks of a file sealed with ${ref.chunks}`,
          );
        return openChunk(key, ref.id, i, ref.chunks, Buffer.from(r.data, "base64url"));
      });
    let ahead = start;
    for (let i = start; i < ref.chunks; i++) {
      while (ahead < ref.chunks && ahead < i + window) {
        const p = fetch(ahead);
        p.catch(() => {});
        pending.set(ahead++, p);
      }
      const plain = await pending.get(i)!;
      pending.delete(i);
      if (plain.length !== chunkPlainBytes(ref.size, i))
        throw new ZmqchatError(
          "internal",
          `chunk ${i} has ${plain.length} bytes, not ${chunkPlainBytes(ref.size, i)}`,
        );
      await fh.write(plain, 0, plain.length, i * FILE_CHUNK_BYTES);
      done += plain.length;
      opts.onProgress?.(done, ref.size);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  const digest = await sha256File(part);
  if (digest !== ref.sha256) {
    await rm(part, { force: true });
    throw new ZmqchatError(
      "internal",
      `the file's SHA-256 is ${digest}, not the sealed ${ref.sha256}; nothing was written`,
    );
  }
  if (opts.force) await rename(part, out);
  else {
    // link fails when `out` appeared meanwhile: never replace a file without --force.
    try {
      await link(part, out);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === "EEXIST")
        throw new ZmqchatError("conflict", `${out} exists`, { hint: "give --force to replace it", cause });
      throw cause;
    }
    await unlink(part);
  }
  return { path: out, bytes: ref.size };
}

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null)) !== null;
}

async function truncateOrCreate(p: string, size: number): Promise<void> {
  if (await exists(p)) await truncate(p, size);
  else await (await open(p, "wx", 0o600)).close();
}
