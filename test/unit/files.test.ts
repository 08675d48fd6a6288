import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { openChunk, sealChunk } from "../../core/client/file-ref.js";
import { safeFileName } from "../../core/client/files.js";
import { chunkCount, FILE_CHUNK_BYTES, FILE_CHUNK_OVERHEAD } from "../../core/protocol/files.js";
import { DiskBlobStore } from "../../server/blobs/disk.js";
import { ABANDONED_UPLOAD_MS, DEFAULT_FILE_LIMITS, FileService } from "../../server/blobs/files.js";
import { SqliteStore } from "../../server/store/sqlite.js";

const ID = "0190f000-0000-7000-8000-000000000001";
const OTHER = "0190f000-0000-7000-8000-000000000002";

describe("file chunks (AES-256-GCM bound to file id, index and count)", () => {
  const key = randomBytes(32);
  const plain = randomBytes(1000);

  it("open what was sealed, and refuse a chunk moved, from another file, of a cut file, or altered", () => {
    const sealed = sealChunk(key, ID, 3, 5, plain);
    assert.equal(sealed.length, plain.length + FILE_CHUNK_OVERHEAD);
    assert.deepEqual(openChunk(key, ID, 3, 5, sealed), plain);
    assert.throws(() => openChunk(key, ID, 2, 5, sealed), /does not open/, "swapped to another index");
    assert.throws(() => openChunk(key, OTHER, 3, 5, sealed), /does not open/, "taken from another file");
    assert.throws(() => openChunk(key, ID, 3, 4, sealed), /does not open/, "a file cut to fewer chunks");
    assert.throws(() => openChunk(randomBytes(32), ID, 3, 5, sealed), /does not open/, "another key");
    const flipped = Buffer.from(sealed);
    flipped[20]! ^= 1;
    assert.throws(() => openChunk(key, ID, 3, 5, flipped), /does not open/, "one bit altered");
  });

  it("a fresh IV each time: the same chunk sealed twice differs", () => {
    assert.notDeepEqual(sealChunk(key, ID, 0, 1, plain), sealChunk(key, ID, 0, 1, plain));
  });

  it("counts chunks (an empty file has one)", () => {
    assert.equal(chunkCount(0), 1);
    assert.equal(chunkCount(FILE_CHUNK_BYTES), 1);
    assert.equal(chunkCount(FILE_CHUNK_BYTES + 1), 2);
  });
});

describe("safeFileName (a sender's file name made safe to create)", () => {
  const cases: Array<[string, string]> = [
    ["report.pdf", "report.pdf"],
    ["../../etc/x", "x"],
    ["..\\..\\win.ini", "win.ini"],
    ["..", "__"],
    [".bashrc", "_bashrc"],
    ["/", "download"],
    ["", "download"],
    ["a\u001b[31mb", "a_[31mb"],
    ["evil\u202etxt.exe", "evil_txt.exe"],
    ["new\nline\u0000.txt", "new_line_.txt"],
    ["zero\u200bwidth", "zero_width"],
    ["héllo wörld.txt", "héllo wörld.txt"],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => assert.equal(safeFileName(input), want));
  }

  it("keeps at most 255 bytes", () => {
    assert.ok(Buffer.byteLength(safeFileName("é".repeat(400))) <= 255);
  });
});

describe("FileService (upload, resume, audience, limits)", () => {
  async function withService(
    fn: (files: FileService, store: SqliteStore) => Promise<void>,
    limits = DEFAULT_FILE_LIMITS,
  ): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-files-"));
    const store = new SqliteStore(join(dir, "store.db"));
    await store.init();
    const keys = (n: number) => ({
      sign: Buffer.alloc(32, n).toString("base64url"),
      enc: Buffer.alloc(32, n + 1).toString("base64url"),
    });
    for (const [i, name] of ["alice", "bob", "carol", "eve"].entries())
      await store.registerUser({ name, keys: keys(i * 2) });
    await store.createGroup({ name: "team", owner: "alice", members: ["alice", "bob", "carol"] });
    try {
      await fn(new FileService(DiskBlobStore.open(join(dir, "blobs")), store, limits), store);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const chunk = (size: number) => randomBytes(size + FILE_CHUNK_OVERHEAD).toString("base64url");

  it("resumes: init says which chunks are held; only the audience fetches, and only when complete", async () => {
    await withService(async (files) => {
      const size = FILE_CHUNK_BYTES + 10;
      const init = { id: ID, size, chunks: 2, to: null, group: "team" };
      assert.deepEqual(await files.init(init, "alice"), { have: [], complete: false });
      const c0 = chunk(FILE_CHUNK_BYTES);
      await files.put({ id: ID, index: 0, data: c0 }, "alice");
      assert.deepEqual(await files.init(init, "alice"), { have: [0], complete: false });
      await assert.rejects(files.done({ id: ID }, "alice"), /lacks 1 chunks \(1\)/);
      await assert.rejects(files.get({ id: ID, index: 0 }, "bob"), /not finished|no file/);
      await assert.rejects(files.put({ id: ID, index: 1, data: chunk(11) }, "alice"), /must hold 38 bytes/);
      await assert.rejects(
        files.put({ id: ID, index: 1, data: chunk(10) }, "bob"),
        /no upload/,
        "only its uploader adds chunks",
      );
      await files.put({ id: ID, index: 1, data: chunk(10) }, "alice");
      await files.done({ id: ID }, "alice");
      for (const u of ["alice", "bob", "carol"])
        assert.equal((await files.get({ id: ID, index: 0 }, u)).data, c0);
      await assert.rejects(files.get({ id: ID, index: 0 }, "eve"), /not sent to you/);
      await assert.rejects(files.get({ id: OTHER, index: 0 }, "eve"), /no file/);
      await assert.rejects(files.init({ ...init, to: "bob", group: null }, "alice"), /other recipients/);
      await assert.rejects(files.init(init, "bob"), /different upload/, "nobody else takes over an id");
    });
  });

  it("refuses a file over the size limit, past the byte quota, and an upload for a group one is not in", async () => {
    await withService(
      async (files) => {
        await assert.rejects(
          files.init({ id: ID, size: 5000, chunks: 1, to: "bob", group: null }, "alice"),
          (e) => (e as { code: string }).code === "too_large",
        );
        await files.init({ id: ID, size: 3000, chunks: 1, to: "bob", group: null }, "alice");
        await assert.rejects(
          files.init({ id: OTHER, size: 3000, chunks: 1, to: "bob", group: null }, "alice"),
          /pass the quota/,
        );
        await assert.rejects(
          files.init({ id: OTHER, size: 10, chunks: 1, to: null, group: "team" }, "eve"),
          /not a member/,
        );
        await assert.rejects(
          files.init({ id: OTHER, size: 10, chunks: 2, to: "bob", group: null }, "bob"),
          /has 1 chunks/,
        );
      },
      { maxFileBytes: 4000, bytesPerUser: 5000, openUploadsPerUser: 4 },
    );
  });

  it("a group file: a member who joined after the upload started fetches it; a non-member still cannot", async () => {
    await withService(async (files, store) => {
      await files.init({ id: ID, size: 10, chunks: 1, to: null, group: "team" }, "alice");
      await files.put({ id: ID, index: 0, data: chunk(10) }, "alice");
      await files.done({ id: ID }, "alice");
      await assert.rejects(
        files.get({ id: ID, index: 0 }, "eve"),
        /not sent to you/,
        "control: eve is outside",
      );
      await store.setMembers("team", ["alice", "bob", "carol", "eve"]);
      assert.ok(
        (await files.get({ id: ID, index: 0 }, "eve")).data,
        "eve joined before the message was sent",
      );
      await store.setMembers("team", ["alice", "bob", "carol"]);
      await assert.rejects(files.get({ id: ID, index: 0 }, "eve"), /not sent to you/, "and left again");
    });
  });

  it("an upload left unfinished for a day is removed at its uploader's next init, freeing the open-upload count; finished files stay", async () => {
    await withService(async (_files, store) => {
      let now = Date.parse("2026-12-01T00:00:00Z");
      const limits = { maxFileBytes: 4000, bytesPerUser: 100_000, openUploadsPerUser: 2 };
      const files = new FileService(_files["blobs"], store, limits, () => now);
      const ids = Array.from({ length: 4 }, (_, i) => `0190f000-0000-7000-8000-00000000010${i}`);
      const init = (id: string) => files.init({ id, size: 10, chunks: 1, to: "bob", group: null }, "alice");
      await init(ids[0]!);
      await files.put({ id: ids[0]!, index: 0, data: chunk(10) }, "alice");
      await files.done({ id: ids[0]! }, "alice");
      await init(ids[1]!);
      await init(ids[2]!);
      now += ABANDONED_UPLOAD_MS - 1;
      await assert.rejects(init(ids[3]!), /2 unfinished uploads/, "not yet abandoned");
      now += 1;
      assert.deepEqual(await init(ids[3]!), { have: [], complete: false });
      assert.ok((await files.get({ id: ids[0]!, index: 0 }, "bob")).data, "the finished file stays");
      await assert.rejects(files.put({ id: ids[1]!, index: 0, data: chunk(10) }, "alice"), /no upload/);
      // The sender of an abandoned upload that comes back starts it again under the same id.
      assert.deepEqual(await init(ids[1]!), { have: [], complete: false });
    }, DEFAULT_FILE_LIMITS);
  });

  it("file.delete: only the uploader removes a file; it frees the quota and no server serves it any more", async () => {
    await withService(
      async (files, store) => {
        const other = new FileService(files["blobs"], store, {
          maxFileBytes: 4000,
          bytesPerUser: 5000,
          openUploadsPerUser: 4,
        });
        await files.init({ id: ID, size: 3000, chunks: 1, to: "bob", group: null }, "alice");
        await files.put({ id: ID, index: 0, data: chunk(3000) }, "alice");
        await files.done({ id: ID }, "alice");
        // Another server has the finished file's metadata in memory.
        assert.ok((await other.get({ id: ID, index: 0 }, "bob")).data);
        await assert.rejects(
          files.init({ id: OTHER, size: 3000, chunks: 1, to: "bob", group: null }, "alice"),
          /pass the quota/,
          "control: the quota is taken",
        );
        for (const u of ["bob", "eve"])
          await assert.rejects(files.delete({ id: ID }, u), /no file .* of yours/, `${u} may not remove it`);
        assert.ok((await files.get({ id: ID, index: 0 }, "bob")).data, "still there after their attempts");
        assert.deepEqual(await files.delete({ id: ID }, "alice"), { deleted: true });
        await assert.rejects(files.get({ id: ID, index: 0 }, "bob"), /no file/);
        await assert.rejects(
          other.get({ id: ID, index: 0 }, "bob"),
          /no file/,
          "nor the server that cached it",
        );
        await assert.rejects(files.delete({ id: ID }, "alice"), /no file/, "a second delete: already gone");
        await files.init({ id: OTHER, size: 3000, chunks: 1, to: "bob", group: null }, "alice");
      },
      { maxFileBytes: 4000, bytesPerUser: 5000, openUploadsPerUser: 4 },
    );
  });
});

describe("TUI /file and /save", () => {
  it("parse into values, keeping spaces in the path", async () => {
    const { parseCommand } = await import("../../tui/commands.js");
    assert.deepEqual(parseCommand("/file ~/My Documents/a b.pdf"), {
      kind: "file",
      path: "~/My Documents/a b.pdf",
    });
    assert.equal(parseCommand("/file").kind, "invalid");
    assert.deepEqual(parseCommand("/save"), { kind: "save", id: null });
    assert.deepEqual(parseCommand(`/save ${ID}`), { kind: "save", id: ID });
  });
});

describe("TUI history rows of a file message", () => {
  it("show the file's name, size and type (sanitised) and how to save it", async () => {
    const { itemRows } = await import("../../tui/history-layout.js");
    const rows = itemRows(
      {
        id: ID,
        from: "alice",
        text: "the report",
        time: "2026-12-01T10:00:00.000Z",
        ord: "1",
        verified: true,
        problem: null,
        delivery: null,
        error: null,
        file: { name: "r\u001b[2Jeport.pdf", size: 1234, type: "application/pdf" },
      },
      undefined,
      200,
    );
    const text = JSON.stringify(rows);
    assert.ok(text.includes("1234 bytes, application/pdf"), text);
    assert.ok(text.includes(`/save ${ID}`), text);
    assert.ok(!text.includes("\\u001b["), "the escape is shown escaped, never raw");
  });
});
