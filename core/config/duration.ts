import { ZmqchatError } from "../errors.js";

/** Parses `500ms`, `2s`, `1m`, `1h`, or a bare number of seconds, into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m)
    throw new ZmqchatError(
      "usage",
      `"${text}" is not a duration (examples: 500ms, 2s, 1m; a bare number is seconds)`,
    );
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  const ms = n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
  if (ms <= 0) throw new ZmqchatError("usage", `the duration "${text}" must be more than zero`);
  return Math.round(ms);
}
