import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BlobStore } from "../../server/blobs/store.js";

/**
 * The contract every BlobStore passes (server/blobs/store.ts). `open` makes a fresh, empty
 * store; `reopen` opens the same data again, to prove durability.
 */
export function blobContract(
  name: string,
  open: () => Promise<{ store: BlobStore; reopen: () => Promise<BlobStore>; cleanup: () => Promise<void> }>,
): void {
  describe(`BlobStore contract: ${name}`, () => {
    async function withStore(fn: (store: BlobStore, reopen: () => Promise<BlobStore>) => Promise<void>) {
      const { store, reopen, cleanup } = await open();
      try {
        await fn(store, reopen);
      } finally {
        await store.close().catch(() => {});
        await cleanup();
      }
    }

    it("gives back exactly the bytes put, and null for a key never put", async () => {
      await withStore(async (store, reopen) => {
        const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 255));
        await store.put("f/abc/c/0", bytes);
        await store.put("f/abc/c/1", new Uint8Array(0));
        assert.deepEqual(await store.get("f/abc/c/0"), bytes);
        assert.deepEqual(
          await store.get("f/abc/c/1"),
          Buffer.alloc(0),
          "an empty object is not a missing one",
        );
        assert.equal(await store.get("f/abc/c/2"), null);
        assert.equal(await store.get("nothing"), null);
        const again = await reopen();
        try {
          assert.deepEqual(await again.get("f/abc/c/0"), bytes, "kept after a reopen");
        } finally {
          await again.close();
        }
      });
    });

    it("replaces what a key held", async () => {
      await withStore(async (store) => {
        await store.put("k/x", Buffer.from("first, longer value"));
        await store.put("k/x", Buffer.from("second"));
        assert.equal((await store.get("k/x"))?.toString(), "second");
      });
    });

    it("lists the keys under a prefix in key order with their sizes", async () => {
      await withStore(async (store) => {
        await store.put("u/bob/2", Buffer.alloc(3));
        await store.put("u/alice/2", Buffer.alloc(20));
        await store.put("u/alice/1", Buffer.alloc(10));
        await store.put("u/alicex/1", Buffer.alloc(5));
        await store.put("f/1/meta", Buffer.alloc(1));
        assert.deepEqual(await store.list("u/alice/"), [
          { key: "u/alice/1", size: 10 },
          { key: "u/alice/2", size: 20 },
        ]);
        assert.deepEqual(
          (await store.list("u/alice")).map((e) => e.key),
          ["u/alice/1", "u/alice/2", "u/alicex/1"],
          "a prefix is a string prefix, not only a folder",
        );
        assert.deepEqual(
          (await store.list("")).map((e) => e.key),
          ["f/1/meta", "u/alice/1", "u/alice/2", "u/alicex/1", "u/bob/2"],
        );
        assert.deepEqual(await store.list("nobody/"), []);
      });
    });

    it("deletes a key, and deleting a missing key is no error", async () => {
      await withStore(async (store) => {
        await store.put("d/1", Buffer.from("x"));
        await store.delete("d/1");
        await store.delete("d/never");
        assert.equal(await store.get("d/1"), null);
        assert.deepEqual(await store.list("d/"), []);
      });
    });

    it("refuses keys that could name a place outside the store", async () => {
      await withStore(async (store) => {
        for (const key of ["../x", "a/../../x", "/abs", "a//b", "a/./b", "", "a b", "a\u0000b", "a\\b"]) {
          await assert.rejects(
            store.put(key, Buffer.from("x")),
            /not a blob key/,
            `put ${JSON.stringify(key)}`,
          );
          await assert.rejects(store.get(key), /not a blob key/, `get ${JSON.stringify(key)}`);
        }
      });
    });

    it("never shows part of an object to concurrent readers", async () => {
      await withStore(async (store) => {
        const a = Buffer.alloc(256 * 1024, 1);
        const b = Buffer.alloc(256 * 1024, 2);
        await store.put("race", a);
        const seen = new Set<string>();
        await Promise.all([
          ...Array.from({ length: 6 }, (_, i) => store.put("race", i % 2 ? a : b)),
          ...Array.from({ length: 12 }, async () => {
            const got = await store.get("race");
            assert.ok(got, "the key never disappears while it is replaced");
            assert.equal(got.length, a.length);
            assert.ok(got.equals(a) || got.equals(b), "whole old or whole new bytes");
            seen.add(got[0] === 1 ? "a" : "b");
          }),
        ]);
        assert.ok(seen.size >= 1);
      });
    });
  });
}
