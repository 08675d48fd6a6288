import type { ErrorCode } from "../core/errors.js";
import { asZmqchatError } from "../core/errors.js";
import { sanitizeBody } from "../core/text/sanitize.js";

/** The CLI contract's exit statuses. */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  unreachable: 3,
  refused: 4,
  unknown: 5,
  rateLimited: 6,
} as const;

const EXIT_BY_CODE: Record<ErrorCode, number> = {
  usage: EXIT.usage,
  bad_request: EXIT.usage,
  too_large: EXIT.usage,
  timeout: EXIT.unreachable,
  unavailable: EXIT.unreachable,
  rate_limited: EXIT.rateLimited,
  unauthorized: EXIT.refused,
  forbidden: EXIT.refused,
  conflict: EXIT.refused,
  key_changed: EXIT.refused,
  not_found: EXIT.unknown,
  internal: EXIT.internal,
};

export function exitCodeFor(code: ErrorCode): number {
  return EXIT_BY_CODE[code];
}

/** The one place failures are reported: a clear line on stderr, a hint, a stack with --debug. */
export function report(err: unknown, debug: boolean, stderr: NodeJS.WritableStream = process.stderr): number {
  const e = asZmqchatError(err);
  // Messages may quote the service or user input: through the terminal sanitizer, like every output.
  stderr.write(`zmqchat: ${sanitizeBody(e.message)}\n`);
  if (e.hint) stderr.write(`  hint: ${sanitizeBody(e.hint)}\n`);
  if (debug) stderr.write(`${(e.cause instanceof Error ? e.cause : e).stack ?? ""}\n`);
  return exitCodeFor(e.code);
}
