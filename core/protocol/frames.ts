import { decodeJson } from "./codec.js";

/** What a failed reply carries: one of the wire error codes, a message, and for `rate_limited` when to retry. */
export interface WireError {
  code: string;
  message: string;
  retryAfterMs?: number;
}

/** Request ids are client-made; longer ones are cut here before they are echoed back. */
const MAX_ID_CHARS = 64;

/**
 * Every reply frame is built here, so the balancer, the servers and the memory transport
 * cannot drift apart: `{v: 1, id, ok: true, body}`.
 */
export function okFrame(id: string | null, body: unknown): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, id, ok: true, body }));
}

/** An `ok` reply whose body is already JSON text (the server serialises large pages once). */
export function okFrameJson(id: string | null, bodyJson: string): Buffer {
  return Buffer.from(`{"v":1,"id":${JSON.stringify(id)},"ok":true,"body":${bodyJson}}`);
}

/** A failed reply: `{v: 1, id, ok: false, error: {code, message, retryAfterMs?}}`. */
export function errorFrame(id: string | null, error: WireError): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, id, ok: false, error }));
}

/**
 * The id of a request frame, cut to 64 characters, so a refusal can name the request it
 * refuses; null when the frame is not JSON or has no string id.
 */
export function requestIdOf(frame: Uint8Array | string): string | null {
  try {
    const id = (decodeJson(frame) as { id?: unknown } | null)?.id;
    return typeof id === "string" ? id.slice(0, MAX_ID_CHARS) : null;
  } catch {
    return null;
  }
}
