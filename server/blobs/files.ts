import { ZmqchatError } from "../../core/errors.js";
import { chunkCount, chunkPlainBytes, FILE_CHUNK_OVERHEAD } from "../../core/protocol/files.js";
import type { RequestBody } from "../../core/protocol/schema.js";
import type { Store } from "../store/store.js";
import type { BlobEntry, BlobStore } from "./store.js";

/** How large files may be and how much one user may keep (issue 18; quotas as in server/limits.ts). */
export interface FileLimits {
  /** Largest file, in plaintext bytes. */
  maxFileBytes: number;
  /** Bytes of files (declared sizes, finished or not) one user may keep stored. */
  bytesPerUser: number;
  /** Uploads one user may have started and not finished. */
  openUploadsPerUser: number;
}

export const DEFAULT_FILE_LIMITS: FileLimits = {
  maxFileBytes: 100 * 1024 * 1024,
  bytesPerUser: 1024 * 1024 * 1024,
  openUploadsPerUser: 16,
};

/** Reads `ZMQCHAT_FILE_MAX_BYTES`, `ZMQCHAT_QUOTA_FILE_BYTES` and `ZMQCHAT_QUOTA_OPEN_UPLOADS` (positive integers). */
export function fileLimitsFromEnv(env: NodeJS.ProcessEnv): FileLimits {
  const read = (name: string, fallback: number): number => {
    const text = env[name];
    if (text === undefined || text === "") return fallback;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1)
      throw new ZmqchatError("usage", `${name} must be a positive whole number, not ${text}`);
    return n;
  };
  return {
    maxFileBytes: read("ZMQCHAT_FILE_MAX_BYTES", DEFAULT_FILE_LIMITS.maxFileBytes),
    bytesPerUser: read("ZMQCHAT_QUOTA_FILE_BYTES", DEFAULT_FILE_LIMITS.bytesPerUser),
    openUploadsPerUser: read("ZMQCHAT_QUOTA_OPEN_UPLOADS", DEFAULT_FILE_LIMITS.openUploadsPerUser),
  };
}

/** What the service keeps about a file beside its chunks: never its name, type, key or content. */
interface FileMeta {
  owner: string;
  size: number;
  chunks: number;
  /** Who may fetch it: the uploader and the recipients of the message it was declared for. */
  audience: string[];
  complete: boolean;
  /** The group a group file was sent to: who joins it between the upload and the message may fetch it too. */
  group?: string;
  /** When the upload started (ms since the epoch); absent in metadata written before it was kept. */
  started?: number;
}

/** An upload unfinished this long is abandoned: its uploader's next `file.init` removes it (quota and open-upload count freed). */
export const ABANDONED_UPLOAD_MS = 24 * 3600_000;

const metaKey = (id: string) => `f/${id}/meta`;
const chunkKey = (id: string, i: number) => `f/${id}/c/${i}`;
/** The uploader's ledger: one empty object per file, its declared size in the key, so a listing sums a user's bytes. */
const ledgerKey = (owner: string, id: string, size: number) => `u/${owner}/${id}=${size}`;
const COMPLETE_METAS_KEPT = 10_000;

/**
 * The service's side of attachments: upload (init, put, done) and download (get) of encrypted
 * chunks, kept in a BlobStore. The audience of a file is fixed when its upload starts, by the
 * same rules `send` applies to the message that will carry it (a user and the sender, or the
 * group's members, the uploader among them), so only that message's mailboxes' owners may fetch
 * the chunks. A finished file never changes.
 */
export class FileService {
  private readonly metas = new Map<string, FileMeta>();

  constructor(
    private readonly blobs: BlobStore | null,
    private readonly store: Store,
    private readonly limits: FileLimits = DEFAULT_FILE_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** One init at a time per user on this server: concurrent inits must not together pass the quotas. */
  private readonly initsOf = new Map<string, Promise<unknown>>();

  async init(b: RequestBody<"file.init">, user: string): Promise<{ have: number[]; complete: boolean }> {
    const before = this.initsOf.get(user) ?? Promise.resolve();
    const run = before.then(
      () => this.initNow(b, user),
      () => this.initNow(b, user),
    );
    const tail = run.catch(() => undefined);
    this.initsOf.set(user, tail);
    void tail.then(() => {
      if (this.initsOf.get(user) === tail) this.initsOf.delete(user);
    });
    return run;
  }

  private async initNow(
    b: RequestBody<"file.init">,
    user: string,
  ): Promise<{ have: number[]; complete: boolean }> {
    const blobs = this.need();
    if (b.size > this.limits.maxFileBytes)
      throw new ZmqchatError(
        "too_large",
        `a file is at most ${this.limits.maxFileBytes} bytes; this one has ${b.size}`,
      );
    if (b.chunks !== chunkCount(b.size))
      throw new ZmqchatError(
        "bad_request",
        `a file of ${b.size} bytes has ${chunkCount(b.size)} chunks, not ${b.chunks}`,
      );
    const existing = await this.meta(b.id);
    if (existing) {
      if (existing.owner !== user || existing.size !== b.size || existing.chunks !== b.chunks)
        throw new ZmqchatError("conflict", `a different upload has the id ${b.id}`);
      const audience = await this.audience(b, user);
      if (!sameSet(audience, existing.audience))
        throw new ZmqchatError("conflict", `the upload ${b.id} was started for other recipients`);
      return {
        have: existing.complete ? range(b.chunks) : await this.have(b.id),
        complete: existing.complete,
      };
    }
    const audience = await this.audience(b, user);
    const ledger = await this.sweep(user, await blobs.list(`u/${user}/`));
    const used = ledger.reduce((n, e) => n + Number(e.key.split("=")[1] ?? 0), 0);
    if (used + b.size > this.limits.bytesPerUser)
      throw new ZmqchatError(
        "forbidden",
        `${user} keeps ${used} bytes of files; ${b.size} more would pass the quota of ${this.limits.bytesPerUser}`,
      );
    const open = await Promise.all(
      ledger.map((e) => this.meta(e.key.slice(`u/${user}/`.length).split("=")[0]!)),
    );
    if (open.filter((m) => m && !m.complete).length >= this.limits.openUploadsPerUser)
      throw new ZmqchatError(
        "forbidden",
        `${user} has ${this.limits.openUploadsPerUser} unfinished uploads; finish one first`,
      );
    // The ledger first: a crash between the two leaves bytes counted, never bytes uncounted.
    await blobs.put(ledgerKey(user, b.id, b.size), new Uint8Array(0));
    const meta: FileMeta = {
      owner: user,
      size: b.size,
      chunks: b.chunks,
      audience,
      complete: false,
      ...(b.group !== null ? { group: b.group } : {}),
      started: this.now(),
    };
    await blobs.put(metaKey(b.id), Buffer.from(JSON.stringify(meta)));
    return { have: [], complete: false };
  }

  async put(b: RequestBody<"file.put">, user: string): Promise<{ stored: true }> {
    const blobs = this.need();
    const meta = await this.meta(b.id);
    if (!meta || meta.owner !== user)
      throw new ZmqchatError("not_found", `no upload ${b.id} of yours; start it with file.init`);
    if (b.index >= meta.chunks)
      throw new ZmqchatError(
        "bad_request",
        `the file has ${meta.chunks} chunks; there is no chunk ${b.index}`,
      );
    const bytes = Buffer.from(b.data, "base64url");
    const want = chunkPlainBytes(meta.size, b.index) + FILE_CHUNK_OVERHEAD;
    if (bytes.length !== want)
      throw new ZmqchatError("bad_request", `chunk ${b.index} must hold ${want} bytes, not ${bytes.length}`);
    // A finished file never changes: a late retry of a chunk is acknowledged and dropped.
    if (!meta.complete) await blobs.put(chunkKey(b.id, b.index), bytes);
    return { stored: true };
  }

  async done(b: RequestBody<"file.done">, user: string): Promise<{ complete: true }> {
    const blobs = this.need();
    const meta = await this.meta(b.id);
    if (!meta || meta.owner !== user) throw new ZmqchatError("not_found", `no upload ${b.id} of yours`);
    if (meta.complete) return { complete: true };
    const have = new Set(await this.have(b.id));
    const missing = range(meta.chunks).filter((i) => !have.has(i));
    if (missing.length > 0)
      throw new ZmqchatError(
        "conflict",
        `the upload ${b.id} lacks ${missing.length} chunks (${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ", …" : ""})`,
      );
    const finished = { ...meta, complete: true };
    await blobs.put(metaKey(b.id), Buffer.from(JSON.stringify(finished)));
    this.remember(b.id, finished);
    return { complete: true };
  }

  async get(b: RequestBody<"file.get">, user: string): Promise<{ data: string; chunks: number }> {
    const blobs = this.need();
    const meta = await this.meta(b.id);
    if (!meta || (!meta.complete && meta.owner !== user))
      throw new ZmqchatError("not_found", `no file ${b.id}`);
    if (!meta.audience.includes(user) && !(await this.joinedSince(meta, user)))
      throw new ZmqchatError("forbidden", `the file ${b.id} was not sent to you`);
    if (!meta.complete) throw new ZmqchatError("not_found", `the upload of ${b.id} is not finished`);
    if (b.index >= meta.chunks)
      throw new ZmqchatError(
        "bad_request",
        `the file has ${meta.chunks} chunks; there is no chunk ${b.index}`,
      );
    const bytes = await blobs.get(chunkKey(b.id, b.index));
    if (!bytes) {
      // Deleted through another server since this one cached the file's metadata.
      if (!(await this.meta(b.id, true))) throw new ZmqchatError("not_found", `no file ${b.id}`);
      throw new ZmqchatError("internal", `chunk ${b.index} of ${b.id} is missing from the blob store`);
    }
    return { data: bytes.toString("base64url"), chunks: meta.chunks };
  }

  /**
   * The uploader removes a file: its metadata first (from then on nobody can fetch it), then its
   * chunks, then its ledger entry (a crash between leaves bytes counted, never bytes uncounted;
   * deleting again finishes the job). Anyone else is answered as if there were no such file.
   */
  async delete(b: RequestBody<"file.delete">, user: string): Promise<{ deleted: true }> {
    const blobs = this.need();
    const meta = await this.meta(b.id, true);
    const ledger = (await blobs.list(`u/${user}/${b.id}=`))[0];
    if ((!meta && !ledger) || (meta && meta.owner !== user))
      throw new ZmqchatError("not_found", `no file ${b.id} of yours`);
    this.metas.delete(b.id);
    await blobs.delete(metaKey(b.id));
    for (const e of await blobs.list(`f/${b.id}/`)) await blobs.delete(e.key);
    if (ledger) await blobs.delete(ledger.key);
    return { deleted: true };
  }

  /**
   * A member of a group file's group who was not in it when the upload started: the message may
   * have been sealed for them (they joined before it was sent). Someone who joined later holds
   * ciphertext without the file's key, which is sealed only in that message.
   */
  private async joinedSince(meta: FileMeta, user: string): Promise<boolean> {
    if (meta.group === undefined) return false;
    return (await this.store.getGroup(meta.group))?.members.includes(user) ?? false;
  }

  /**
   * Removes `user`'s abandoned uploads (unfinished for ABANDONED_UPLOAD_MS, or from before start
   * times were kept) and returns the ledger entries left. A sender that resumes one later starts
   * it again under the same id.
   */
  private async sweep(user: string, ledger: BlobEntry[]): Promise<BlobEntry[]> {
    const kept: BlobEntry[] = [];
    for (const e of ledger) {
      const id = e.key.slice(`u/${user}/`.length).split("=")[0]!;
      const meta = await this.meta(id);
      if (meta && !meta.complete && this.now() - (meta.started ?? 0) >= ABANDONED_UPLOAD_MS)
        await this.delete({ id }, user);
      else kept.push(e);
    }
    return kept;
  }

  /** The mailboxes a message to `to` or `group` from `user` goes to, as `send` decides them. */
  private async audience(b: RequestBody<"file.init">, user: string): Promise<string[]> {
    if (b.to !== null && b.group === null) {
      const [peer] = await this.store.getUsers([b.to]);
      if (!peer) throw new ZmqchatError("not_found", `no user named ${b.to}`);
      return [...new Set([b.to, user])].sort();
    }
    if (b.group !== null && b.to === null) {
      const group = await this.store.getGroup(b.group);
      if (!group) throw new ZmqchatError("not_found", `no group named ${b.group}`);
      if (!group.members.includes(user))
        throw new ZmqchatError("forbidden", `you are not a member of ${b.group}`);
      return [...group.members].sort();
    }
    throw new ZmqchatError("bad_request", "a file goes to exactly one of a user (to) or a group");
  }

  private async have(id: string): Promise<number[]> {
    const prefix = `f/${id}/c/`;
    return (await this.need().list(prefix))
      .map((e) => Number(e.key.slice(prefix.length)))
      .filter((n) => Number.isInteger(n))
      .sort((a, b) => a - b);
  }

  /** A file's metadata (a finished file's from memory unless `fresh`), or null when there is none. */
  private async meta(id: string, fresh = false): Promise<FileMeta | null> {
    const kept = fresh ? undefined : this.metas.get(id);
    if (kept) return kept;
    const bytes = await this.need().get(metaKey(id));
    if (!bytes) {
      this.metas.delete(id);
      return null;
    }
    const meta = JSON.parse(bytes.toString()) as FileMeta;
    if (meta.complete) this.remember(id, meta);
    return meta;
  }

  /** Keeps a finished file's meta (it never changes again), the oldest forgotten first. */
  private remember(id: string, meta: FileMeta): void {
    if (this.metas.size >= COMPLETE_METAS_KEPT) this.metas.delete(this.metas.keys().next().value as string);
    this.metas.set(id, meta);
  }

  private need(): BlobStore {
    if (!this.blobs)
      throw new ZmqchatError("forbidden", "this service keeps no files (its servers have no blob store)");
    return this.blobs;
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
}
