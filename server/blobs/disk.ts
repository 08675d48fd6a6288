import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync } from "node:fs";
import { open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type BlobEntry, type BlobStore, checkBlobKey } from "./store.js";

/**
 * The embedded blob store: one file per key under a root directory. Directories are 0700 and
 * files 0600 (the stack home's rule); a put writes a temporary file, syncs it and renames it
 * over the key, so a reader or a crash never sees part of a chunk.
 */
export class DiskBlobStore implements BlobStore {
  private constructor(private readonly root: string) {}

  static open(root: string): DiskBlobStore {
    const dir = resolve(root);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    return new DiskBlobStore(dir);
  }

  private path(key: string): string {
    checkBlobKey(key);
    return join(this.root, ...key.split("/"));
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const file = this.path(key);
    await this.mkdirs(dirname(file));
    const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Makes each missing directory from the root down with mode 0700 (mkdir's mode is masked by the umask). */
  private async mkdirs(dir: string): Promise<void> {
    const made = mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (made === undefined) return;
    for (let d = dir; d.length >= made.length; d = dirname(d)) chmodSync(d, 0o700);
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<BlobEntry[]> {
    const out: BlobEntry[] = [];
    // Walk only the directory the prefix's complete segments name.
    const cut = prefix.lastIndexOf("/");
    const base = cut < 0 ? "" : prefix.slice(0, cut);
    if (base !== "") checkBlobKey(base);
    const walk = async (dir: string, keyDir: string): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if (
          (err as NodeJS.ErrnoException).code === "ENOENT" ||
          (err as NodeJS.ErrnoException).code === "ENOTDIR"
        )
          return;
        throw err;
      }
      for (const name of names) {
        if (name.endsWith(".tmp")) continue;
        const key = keyDir === "" ? name : `${keyDir}/${name}`;
        if (!key.startsWith(prefix) && !prefix.startsWith(`${key}/`)) continue;
        const s = await stat(join(dir, name)).catch(() => null);
        if (!s) continue;
        if (s.isDirectory()) await walk(join(dir, name), key);
        else if (key.startsWith(prefix)) out.push({ key, size: s.size });
      }
    };
    await walk(base === "" ? this.root : join(this.root, ...base.split("/")), base);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async close(): Promise<void> {}
}
