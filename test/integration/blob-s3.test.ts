import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { openBlobStore } from "../../server/blobs/open.js";
import { S3BlobStore } from "../../server/blobs/s3.js";
import { blobContract } from "../contract/blob-contract.js";
import { MOTO_ENV, type Moto, startMoto } from "../helpers/moto.js";
import { startStack } from "../helpers/stack.js";

let moto: Moto;
Object.assign(process.env, MOTO_ENV);

before(async () => {
  moto = await startMoto();
});
after(async () => {
  await moto?.stop();
});

blobContract("s3 (moto_server)", async () => {
  const bucket = `zmqchat-${randomUUID()}`;
  const client = new S3Client({ region: "us-east-1", endpoint: moto.endpoint, forcePathStyle: true });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  // Through the URL a server is given, with a prefix, as a deployment would configure it.
  const url = `s3://${bucket}/stack1?endpoint=${encodeURIComponent(moto.endpoint)}&region=us-east-1`;
  const store = await openBlobStore(url);
  if (!(store instanceof S3BlobStore)) throw new Error("an s3:// URL opens the S3 store");
  return { store, reopen: () => openBlobStore(url), cleanup: async () => {} };
});

describe("a real stack keeping attachments in S3 (moto_server)", () => {
  it("send --file and download through servers given --blobs s3://…; the bucket holds ciphertext only", async () => {
    const bucket = `zmqchat-${randomUUID()}`;
    const client = new S3Client({ region: "us-east-1", endpoint: moto.endpoint, forcePathStyle: true });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const url = `s3://${bucket}?endpoint=${encodeURIComponent(moto.endpoint)}&region=us-east-1`;
    const stack = await startStack({ servers: 2, label: "s3", serverArgs: ["--blobs", url], env: MOTO_ENV });
    try {
      for (const u of ["alice", "bob"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
      const canary = `CANARY-${randomBytes(8).toString("hex")}`;
      const bytes = Buffer.concat([randomBytes(300_000), Buffer.from(canary), randomBytes(300_000)]);
      const src = join(stack.dir, "payload.bin");
      writeFileSync(src, bytes);
      const sent = await stack.cli("alice", ["send", "bob", "--file", src], { timeoutMs: 60_000 });
      assert.equal(sent.code, 0, sent.stderr);
      const id = sent.stdout.trim();
      const out = join(stack.dir, "got.bin");
      const got = await stack.cli("bob", ["download", id, "--out", out], { timeoutMs: 60_000 });
      assert.equal(got.code, 0, got.stderr);
      assert.ok(readFileSync(out).equals(bytes));
      const store = await openBlobStore(url);
      const keys = await store.list("");
      assert.ok(
        keys.some((k) => k.key === `f/${id}/c/2`),
        "the chunks are in the bucket",
      );
      for (const k of keys)
        assert.ok(!(await store.get(k.key))!.includes(canary), `${k.key} holds no plaintext`);
      assert.ok(!existsSync(join(stack.dir, "blobs")), "nothing went to the default disk store");
      await store.close();
    } finally {
      client.destroy();
      await stack.stop();
    }
  });
});
