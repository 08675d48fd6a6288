/**
 * Building InfluxQL text safely. Every name and value that reaches a query passes through one of
 * these; callers validate names against the protocol first, so this is the second line of defence.
 */

/** A double-quoted identifier (database, retention policy, measurement, tag or field key). */
export function ident(name: string): string {
  assertPrintable(name, "identifier");
  return `"${name.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A single-quoted string literal. */
export function str(value: string): string {
  assertPrintable(value, "string");
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A nanosecond timestamp literal: only decimal digits pass. */
export function nanos(value: string | bigint): string {
  const text = typeof value === "bigint" ? value.toString() : value;
  if (!/^(0|[1-9][0-9]{0,18})$/.test(text))
    throw new Error(`not a nanosecond timestamp: ${JSON.stringify(text)}`);
  return text;
}

/** A duration literal for retention policies (`30d`, `12h`, `INF`). */
export function duration(value: string): string {
  if (!DURATION.test(value)) throw new Error(`not an InfluxQL duration: ${JSON.stringify(value)}`);
  return value;
}

export const DURATION = /^(INF|inf|[1-9][0-9]{0,9}(ns|u|ms|s|m|h|d|w))$/;

/** Milliseconds in a Go duration as InfluxDB prints it (`720h0m0s`, `0s` means infinite). */
export function goDurationMs(text: string): number {
  if (text === "0s" || text === "0") return Number.POSITIVE_INFINITY;
  let ms = 0;
  for (const m of text.matchAll(/([0-9.]+)(ns|us|µs|ms|s|m|h)/g)) {
    const unit = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }[m[2] as "ns"];
    ms += Number(m[1]) * unit;
  }
  return ms;
}

/** Milliseconds in an InfluxQL duration literal (see {@link DURATION}). */
export function durationMs(text: string): number {
  if (/^inf$/i.test(text)) return Number.POSITIVE_INFINITY;
  const m = /^([0-9]+)(ns|u|ms|s|m|h|d|w)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { ns: 1e-6, u: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[
    m[2] as "ns"
  ];
  return Number(m[1]) * unit;
}

function assertPrintable(value: string, what: string): void {
  // InfluxQL strings cannot hold raw line breaks or NULs; nothing we store by name needs them.
  if ([...value].some((c) => c.charCodeAt(0) < 0x20 || c === "\u007f"))
    throw new Error(`control character in an InfluxQL ${what}`);
}
