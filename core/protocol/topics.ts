import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { TOPIC_PATTERN } from "./limits.js";

/**
 * Delivery topics a balancer can check without the cluster secret. A topic is 64 hex characters,
 * 32 bytes: a 16-byte id that only the servers can compute (HMAC-SHA256 under the cluster secret,
 * truncated, server/auth.ts) and a 16-byte tag, HMAC-SHA256(K, id) truncated (RFC 2104, section 5:
 * a truncation to at least half the hash and 80 bits). K is derived from the cluster secret with
 * HKDF-SHA256 (RFC 5869; no salt, info "zmqchat-topic-tag"), and it is all a balancer holds: it can
 * tell a topic a server issued from a made-up one, so a client can no longer make the balancer and
 * every server hold a subscription for each of millions of random topics (about 6 KiB of balancer
 * and 3.4 KiB of server memory each, measured: test/integration/topic-flood.test.ts). K cannot
 * issue sessions or read anything: a balancer with it can only make topics pass its own check.
 */
export const TOPIC_ID_BYTES = 16;
const TAG_BYTES = 16;

/** The topic tag key K from the cluster secret (HKDF-SHA256, info "zmqchat-topic-tag"). */
export function topicTagKey(secret: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), "zmqchat-topic-tag", 32));
}

/** The topic for a 16-byte id: id and tag, hex. */
export function taggedTopic(key: Buffer, id: Buffer): string {
  if (id.length !== TOPIC_ID_BYTES) throw new Error("a topic id is 16 bytes");
  const tag = createHmac("sha256", key).update(id).digest().subarray(0, TAG_BYTES);
  return Buffer.concat([id, tag]).toString("hex");
}

/** Whether `topic` (the text, or its bytes as a subscription carries them) is a topic with a good tag. */
export function topicTagged(key: Buffer, topic: string | Buffer): boolean {
  const text = typeof topic === "string" ? topic : topic.toString("latin1");
  if (!TOPIC_PATTERN.test(text)) return false;
  const raw = Buffer.from(text, "hex");
  const id = raw.subarray(0, TOPIC_ID_BYTES);
  const want = createHmac("sha256", key).update(id).digest().subarray(0, TAG_BYTES);
  return timingSafeEqual(want, raw.subarray(TOPIC_ID_BYTES));
}

/** A topic tag key as a file holds it: 64 hex characters (a trailing newline allowed). */
export function parseTopicKey(text: string): Buffer | null {
  const hex = text.trim();
  return /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, "hex") : null;
}
