import { WIRE_ERROR_CODES, type WireErrorCode, ZmqchatError } from "../core/errors.js";
import { RateLimitedError } from "./limits.js";

/** What an error reply (or one refused envelope of `send.many`) carries: never an internal detail. */
export function toWireError(err: unknown): { code: WireErrorCode; message: string; retryAfterMs?: number } {
  if (err instanceof ZmqchatError) {
    const code = (WIRE_ERROR_CODES as readonly string[]).includes(err.code)
      ? (err.code as WireErrorCode)
      : "internal";
    const retry = err instanceof RateLimitedError ? { retryAfterMs: err.retryAfterMs } : {};
    return { code, message: err.message.slice(0, 2000), ...retry };
  }
  return { code: "internal", message: "the server failed to handle the request" };
}
