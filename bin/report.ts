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

/**
 * The one place failures are reported: a clear line on stderr, a hint, a stack with --debug.
 * `writeLine` is the command's `Io.err` (stderr, or what a test passes).
 */
export function report(
  err: unknown,
  debug: boolean,
  writeLine: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): number {
  const e = asZmqchatError(err);
  // Messages may quote the service or user input: through the terminal sanitizer, like every output.
  writeLine(`zmqchat: ${sanitizeBody(e.message)}`);
  if (e.hint) writeLine(`  hint: ${sanitizeBody(e.hint)}`);
  if (debug) writeLine((e.cause instanceof Error ? e.cause : e).stack ?? "");
  return exitCodeFor(e.code);
}
