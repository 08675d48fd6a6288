/** Codes a server may put in an error reply. */
export const WIRE_ERROR_CODES = [
  "bad_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "conflict",
  "too_large",
  "unavailable",
  "rate_limited",
  "internal",
] as const;

/** Error codes shared by the wire protocol, the client core and the CLI reporter: the wire's and the client's own. */
export const ERROR_CODES = [...WIRE_ERROR_CODES, "timeout", "key_changed", "usage"] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number];

/** The one error type of zmqchat: a code for programs, a message and an optional hint for people. */
export class ZmqchatError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ZmqchatError";
    this.code = code;
    this.hint = options.hint;
  }
}

/** Wraps anything thrown into a ZmqchatError, keeping the original as `cause`. */
export function asZmqchatError(err: unknown, fallback: ErrorCode = "internal"): ZmqchatError {
  if (err instanceof ZmqchatError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ZmqchatError(fallback, message, { cause: err });
}

/** A "not now" whose retry-after the caller's deadline does not allow waiting out. */
export function rateLimited(message: string, retryAfterMs: number): ZmqchatError {
  return new ZmqchatError("rate_limited", message, {
    hint: `too many requests: try again in ${Math.ceil(retryAfterMs / 1000)} s`,
  });
}
