/**
 * Attacks on what landed in session 4 (attachments, devices), each with a positive control.
 * Bounded: a handful of requests, in process, no network.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { linkKeys, newLinkCode } from "../../core/client/devices.js";
import type { ZmqchatError } from "../../core/errors.js";
import { FILE_CHUNK_OVERHEAD } from "../../core/protocol/files.js";
import { Authority, type SessionClaims } from "../../server/auth.js";
import { DiskBlobStore } from "../../server/blobs/disk.js";
import { DEFAULT_FILE_LIMITS, type FileLimits, FileService } from "../../server/blobs/files.js";
import { DeviceRegistry } from "../../server/devices.js";
import { SessionManager } from "../../server/sessions.js";
import { SqliteStore } from "../../server/store/sqlite.js";

const id = (n: number) => `0190f000-0000-7000-8000-${String(n).padStart(12, "0")}`;

async function withFiles(limits: FileLimits, fn: (files: FileService) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-attacks-"));
  const store = new SqliteStore(join(dir, "store.db"));
  await store.init();
  for (const [i, name] of ["alice", "bob"].entries())
    await store.registerUser({
      name,
      keys: {
        sign: Buffer.alloc(32, 2 * i + 1).toString("base64url"),
        enc: Buffer.alloc(32, 2 * i + 2).toString("base64url"),
      },
    });
  try {
    await fn(new FileService(DiskBlobStore.open(join(dir, "blobs")), store, limits));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const settled = async (ps: Array<Promise<unknown>>) =>
  (await Promise.allSettled(ps)).map((r) => r.status === "fulfilled");

describe("attack: a hostile user against attachment quotas and finished files", () => {
  it("concurrent file.init requests cannot together pass the byte quota (control: the same inits one by one)", async () => {
    const limits = { ...DEFAULT_FILE_LIMITS, bytesPerUser: 3000 };
    const init = (n: number) => ({ id: id(n), size: 1000, chunks: 1, to: "bob", group: null });
    // Control: one by one, exactly three fit.
    await withFiles(limits, async (files) => {
      const ok: boolean[] = [];
      for (let n = 1; n <= 5; n++) ok.push((await settled([files.init(init(n), "alice")]))[0]!);
      assert.deepEqual(ok, [true, true, true, false, false]);
    });
    // Attack: eight at once (bounded), still three.
    await withFiles(limits, async (files) => {
      const ok = await settled(Array.from({ length: 8 }, (_, k) => files.init(init(k + 1), "alice")));
      assert.equal(
        ok.filter(Boolean).length,
        3,
        `accepted ${ok.filter(Boolean).length} of 8 inits of 1000 bytes under a 3000-byte quota`,
      );
    });
  });

  it("concurrent file.init requests cannot together pass the open-uploads limit (control: one by one)", async () => {
    const limits = { ...DEFAULT_FILE_LIMITS, openUploadsPerUser: 2 };
    const init = (n: number) => ({ id: id(n), size: 10, chunks: 1, to: "bob", group: null });
    await withFiles(limits, async (files) => {
      const ok: boolean[] = [];
      for (let n = 1; n <= 4; n++) ok.push((await settled([files.init(init(n), "alice")]))[0]!);
      assert.deepEqual(ok, [true, true, false, false]);
    });
    await withFiles(limits, async (files) => {
      const ok = await settled(Array.from({ length: 6 }, (_, k) => files.init(init(k + 1), "alice")));
      assert.equal(ok.filter(Boolean).length, 2);
    });
  });

  it("the uploader cannot change a finished file under its recipients (control: before done a put replaces the chunk)", async () => {
    await withFiles(DEFAULT_FILE_LIMITS, async (files) => {
      const chunk = () => randomBytes(10 + FILE_CHUNK_OVERHEAD).toString("base64url");
      await files.init({ id: id(1), size: 10, chunks: 1, to: "bob", group: null }, "alice");
      const first = chunk();
      const second = chunk();
      await files.put({ id: id(1), index: 0, data: first }, "alice");
      await files.put({ id: id(1), index: 0, data: second }, "alice");
      await files.done({ id: id(1) }, "alice");
      assert.equal(
        (await files.get({ id: id(1), index: 0 }, "bob")).data,
        second,
        "control: a retry replaced it",
      );
      await files.put({ id: id(1), index: 0, data: first }, "alice");
      assert.equal((await files.get({ id: id(1), index: 0 }, "bob")).data, second);
    });
  });
});

describe("attack: racing the link code and the device key", () => {
  const setup = async () => {
    const store = new SqliteStore(":memory:");
    await store.init();
    const at = Date.now();
    const auth = new Authority(Buffer.from("unit-test-cluster-secret-0123456789"), { now: () => at });
    const registry = new DeviceRegistry(store, auth, new SessionManager(auth, store, 0), 0);
    const claims = (device: string): SessionClaims => ({
      name: "alice",
      device,
      keyTag: "k",
      issued: Date.now(),
      expires: Date.now() + 60_000,
    });
    await registry.admit("alice", "0000000000000001");
    const code = newLinkCode();
    const keys = linkKeys("alice", code);
    await registry.linkPut(claims("0000000000000001"), {
      slot: code.slot,
      verifier: keys.verifier,
      blob: "c2VhbGVk",
      device: "00000000000000ff",
      deviceName: "laptop",
      ttlMs: 600_000,
    });
    const get = (proof: string) => registry.linkGet({ name: "alice", slot: code.slot, proof });
    return { store, registry, claims, right: keys.proof, get };
  };
  const wrong = () => randomBytes(32).toString("base64url");

  it("two devices racing with the right code (one looked over a shoulder): exactly one gets the identity", async () => {
    const { store, right, get } = await setup();
    try {
      const ok = await settled(Array.from({ length: 4 }, () => get(right)));
      assert.equal(ok.filter(Boolean).length, 1);
    } finally {
      await store.close();
    }
  });

  it("five wrong proofs sent at once void the code (control: after four the right code still works)", async () => {
    const control = await setup();
    try {
      assert.deepEqual(await settled(Array.from({ length: 4 }, () => control.get(wrong()))), [
        false,
        false,
        false,
        false,
      ]);
      assert.equal((await control.get(control.right)).device, "00000000000000ff");
    } finally {
      await control.store.close();
    }
    const attack = await setup();
    try {
      await settled(Array.from({ length: 5 }, () => attack.get(wrong())));
      await assert.rejects(attack.get(attack.right), (e: ZmqchatError) => /void/.test(e.message));
    } finally {
      await attack.store.close();
    }
  });

  it("a device key, once registered, is not replaced by a later hello (control: the first one is kept)", async () => {
    const { store, registry, claims } = await setup();
    try {
      const k1 = Buffer.alloc(32, 1).toString("base64url");
      const k2 = Buffer.alloc(32, 2).toString("base64url");
      const sig = Buffer.alloc(64, 3).toString("base64url");
      await registry.hello(claims("0000000000000001"), { key: k1, keySig: sig });
      const keyOf = async () =>
        (await store.listDevices("alice")).find((d) => d.id === "0000000000000001")!.key;
      assert.equal(await keyOf(), k1);
      await registry.hello(claims("0000000000000001"), { key: k2, keySig: sig });
      assert.equal(await keyOf(), k1);
    } finally {
      await store.close();
    }
  });
});
