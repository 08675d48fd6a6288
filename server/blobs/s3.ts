import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { ZmqchatError } from "../../core/errors.js";
import { type BlobEntry, type BlobStore, checkBlobKey } from "./store.js";

export interface S3BlobOptions {
  bucket: string;
  /** Prepended to every key (no leading or trailing slash), so several stacks may share a bucket. */
  prefix?: string;
  /** An S3-compatible endpoint (moto_server, MinIO); absent: AWS for the region. */
  endpoint?: string;
  region?: string;
}

/**
 * Blobs in an S3 bucket through the AWS SDK v3. A PutObject is atomic (a reader sees the old
 * object or the new one), which is the store's promise. Credentials come from the SDK's default
 * chain, so on EC2 the instance role gives the servers access (ansible/provision-ec2.yml).
 */
export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly prefix: string;

  constructor(private readonly options: S3BlobOptions) {
    this.client = new S3Client({
      region: options.region ?? process.env.AWS_REGION ?? "us-east-1",
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
    });
    this.prefix = options.prefix ? `${options.prefix}/` : "";
  }

  /** `s3://BUCKET[/PREFIX][?endpoint=URL&region=R]`. */
  static fromUrl(url: string): S3BlobStore {
    let u: URL;
    try {
      u = new URL(url);
    } catch (cause) {
      throw new ZmqchatError("usage", `not an S3 URL: ${url}`, { cause });
    }
    if (!u.hostname)
      throw new ZmqchatError("usage", `an S3 blob URL names its bucket: s3://BUCKET, not ${url}`);
    const prefix = u.pathname.replace(/^\/+|\/+$/g, "");
    if (prefix !== "") checkBlobKey(prefix);
    return new S3BlobStore({
      bucket: u.hostname,
      prefix: prefix || undefined,
      endpoint: u.searchParams.get("endpoint") ?? undefined,
      region: u.searchParams.get("region") ?? undefined,
    });
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    checkBlobKey(key);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.options.bucket, Key: this.prefix + key, Body: bytes }),
    );
  }

  async get(key: string): Promise<Buffer | null> {
    checkBlobKey(key);
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.prefix + key }),
      );
      if (!r.Body) return Buffer.alloc(0);
      return Buffer.from(await r.Body.transformToByteArray());
    } catch (err) {
      if (err instanceof NoSuchKey || (err as { name?: string }).name === "NoSuchKey") return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<BlobEntry[]> {
    const out: BlobEntry[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.options.bucket,
          Prefix: this.prefix + prefix,
          ContinuationToken: token,
        }),
      );
      for (const o of r.Contents ?? [])
        if (o.Key) out.push({ key: o.Key.slice(this.prefix.length), size: o.Size ?? 0 });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    checkBlobKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.prefix + key }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
