import { randomUUID } from "node:crypto";
import { after, before } from "node:test";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { S3BlobStore } from "../../server/blobs/s3.js";
import { openBlobStore } from "../../server/blobs/store.js";
import { blobContract } from "../contract/blob-contract.js";
import { MOTO_ENV, type Moto, startMoto } from "../helpers/moto.js";

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
