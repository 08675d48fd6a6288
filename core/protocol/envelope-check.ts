import { UUID_PATTERN } from "./ids.js";
import {
  MAX_BATCH_LEAVES,
  MAX_BATCH_PATH_CHARS,
  MAX_GROUP_MEMBERS,
  MAX_SEND_MANY,
  NAME_PATTERN,
} from "./limits.js";
import type { Envelope, RequestBody } from "./schema.js";

const B64 = /^[A-Za-z0-9_-]+$/;
const B64_OR_EMPTY = /^[A-Za-z0-9_-]*$/;
const KEY32 = /^[A-Za-z0-9_-]{43}$/;
const DEVICE = /^[0-9a-f]{16}$/;
const V1_KEYS = [
  "v",
  "suite",
  "id",
  "from",
  "device",
  "to",
  "group",
  "seq",
  "sentAt",
  "nonce",
  "ct",
  "keys",
  "sig",
];
const V2_KEYS = [...V1_KEYS, "kc"];
const V3_KEYS = [...V1_KEYS.filter((k) => k !== "sig"), "kc", "fromKey", "toKey"];
const V4_KEYS = [...V2_KEYS, "batch"];
const BATCH_KEYS = ["size", "index", "path"];
const KEY_ID = /^[A-Za-z0-9_-]{16}$/;

const isName = (x: unknown): boolean => typeof x === "string" && NAME_PATTERN.test(x);
const isB64 = (x: unknown): boolean => typeof x === "string" && x.length <= 8192 && B64.test(x);

/** A JSON object (not an array, not null): what every hand check starts from. */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Exactly these own keys, each present (undefined values are not JSON, so presence is enough). */
function hasExactly(o: Record<string, unknown>, keys: readonly string[]): boolean {
  let n = 0;
  for (const k in o) {
    if (!Object.hasOwn(o, k)) continue;
    if (!keys.includes(k)) return false;
    n++;
  }
  return n === keys.length;
}

/**
 * True when `x` is an envelope that schema.ts's envelopeSchema accepts, checked by hand: the
 * send path's validation without Zod's cost per field (about a third of a server's request
 * handling in the profile). It only ever says yes to what the schema says yes to
 * (test/unit/envelope-check.test.ts holds the two to the same answers); a no sends the caller
 * to the schema, which gives the error message.
 */
export function isEnvelope(x: unknown): x is Envelope {
  if (!isPlainObject(x)) return false;
  if (x.v === 1) {
    if (!hasExactly(x, V1_KEYS)) return false;
  } else if (x.v === 2) {
    if (!hasExactly(x, V2_KEYS) || typeof x.kc !== "string" || !KEY32.test(x.kc)) return false;
  } else if (x.v === 3) {
    // 1:1 only, unsigned: the pairwise key ids name the keys the wrapped key is under.
    if (!hasExactly(x, V3_KEYS) || typeof x.kc !== "string" || !KEY32.test(x.kc)) return false;
    if (typeof x.fromKey !== "string" || !KEY_ID.test(x.fromKey)) return false;
    if (typeof x.toKey !== "string" || !KEY_ID.test(x.toKey)) return false;
    if (x.to === null || x.group !== null || !Array.isArray(x.keys) || x.keys.length > 2) return false;
  } else if (x.v === 4) {
    if (!hasExactly(x, V4_KEYS) || typeof x.kc !== "string" || !KEY32.test(x.kc)) return false;
    if (!isBatch(x.batch)) return false;
  } else return false;
  const { suite, id, from, device, to, group, seq, sentAt, nonce, ct, keys, sig } = x;
  if (typeof suite !== "string" || suite.length > 64) return false;
  if (typeof id !== "string" || !UUID_PATTERN.test(id)) return false;
  if (!isName(from)) return false;
  if (typeof device !== "string" || !DEVICE.test(device)) return false;
  if (to !== null && !isName(to)) return false;
  if (group !== null && !isName(group)) return false;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) return false;
  if (typeof sentAt !== "string" || sentAt.length > 40) return false;
  if (!isB64(nonce) || (x.v !== 3 && !isB64(sig))) return false;
  if (typeof ct !== "string" || !B64_OR_EMPTY.test(ct)) return false;
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > MAX_GROUP_MEMBERS + 1) return false;
  for (const k of keys) {
    // Not strict: the schema's key entries drop unknown members, and so does serialisation.
    if (!isPlainObject(k) || !isName(k.to) || !isB64(k.wk)) return false;
  }
  return true;
}

/** Envelope v4's place in its batch's tree, as batchSchema has it. */
function isBatch(b: unknown): boolean {
  if (!isPlainObject(b) || !hasExactly(b, BATCH_KEYS)) return false;
  const { size, index, path } = b;
  if (typeof size !== "number" || !Number.isInteger(size) || size < 1 || size > MAX_BATCH_LEAVES)
    return false;
  if (typeof index !== "number" || !Number.isSafeInteger(index) || index < 0) return false;
  return typeof path === "string" && path.length <= MAX_BATCH_PATH_CHARS && B64_OR_EMPTY.test(path);
}

/**
 * The body of a `send` or `send.many` when it passes the schema by the hand check above; null
 * for any other request, or any doubt (the caller then parses with the schema).
 */
export function fastSendBody(
  type: string,
  body: unknown,
): RequestBody<"send"> | RequestBody<"send.many"> | null {
  if (!isPlainObject(body)) return null;
  if (type === "send") {
    return hasExactly(body, ["envelope"]) && isEnvelope(body.envelope) ? (body as RequestBody<"send">) : null;
  }
  if (type === "send.many") {
    const list = body.envelopes;
    const keys = ["envelopes"];
    if (body.follows !== undefined) keys.push("follows");
    if (body.quiet !== undefined) {
      if (body.quiet !== true) return null;
      keys.push("quiet");
    }
    if (!hasExactly(body, keys) || !Array.isArray(list)) return null;
    if (body.follows !== undefined && (typeof body.follows !== "string" || !UUID_PATTERN.test(body.follows)))
      return null;
    if (list.length < 1 || list.length > MAX_SEND_MANY) return null;
    for (const e of list) if (!isEnvelope(e)) return null;
    return body as RequestBody<"send.many">;
  }
  return null;
}
