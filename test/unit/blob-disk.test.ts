import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { DiskBlobStore } from "../../server/blobs/disk.js";
import { defaultBlobUrl, openBlobStore } from "../../server/blobs/open.js";
import { blobContract } from "../contract/blob-contract.js";

blobContract("disk", async () => {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-blobs-"));
  const root = join(dir, "blobs");
  return {
    store: DiskBlobStore.open(root),
    reopen: async () => DiskBlobStore.open(root),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

it("the disk store keeps directories 0700 and files 0600, whatever the umask, and leaves no temporary files", async () => {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-blobs-"));
  const old = process.umask(0o022);
  try {
    const store = await openBlobStore(`file:${join(dir, "blobs")}`);
    await store.put("f/0190f000-0000-7000-8000-000000000001/c/0", Buffer.from("chunk"));
    const walk = (p: string): string[] => [
      p,
      ...(statSync(p).isDirectory() ? readdirSync(p).flatMap((n) => walk(join(p, n))) : []),
    ];
    const paths = walk(join(dir, "blobs"));
    assert.equal(paths.length, 5, "root, f, the file's directory, c and the chunk");
    for (const p of paths) {
      const mode = statSync(p).mode & 0o777;
      assert.equal(mode, statSync(p).isDirectory() ? 0o700 : 0o600, p);
    }
    assert.ok(!paths.some((p) => p.endsWith(".tmp")));
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});

it("a server's default blob store sits beside its SQLite file, and other stores have none", () => {
  assert.equal(defaultBlobUrl("sqlite:/x/stack/store.db"), "/x/stack/blobs");
  assert.equal(defaultBlobUrl("/x/store.db"), "/x/blobs");
  assert.equal(defaultBlobUrl("influx://127.0.0.1:8086/zmqchat"), null);
});
