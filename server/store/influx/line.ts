/**
 * Line protocol for the two points every message writes (its mailbox copies and their index
 * points), built straight into strings. The same text as @influxdata/influxdb-client's `Point`
 * makes (test/unit/influx-line.test.ts checks it against `Point`), without its per-point objects
 * and per-character escaping: for envelopes of some 700 characters that escaping alone took 3%
 * of a server's time in the 1:1 InfluxDB benchmark. Other points still go through `Point`.
 */

const TAG_SPECIAL = /[, =\n\r\t]/;
const TAG_ESCAPES: Record<string, string> = {
  ",": "\\,",
  " ": "\\ ",
  "=": "\\=",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

/** A tag key or value, escaped as `Point` escapes it. */
export function tag(value: string): string {
  return TAG_SPECIAL.test(value) ? value.replace(/[, =\n\r\t]/g, (c) => TAG_ESCAPES[c]!) : value;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON.stringify escapes and line protocol does not
const NOT_AS_JSON = /[\u0000-\u001f\ud800-\udfff]/;

/**
 * A string field value: quoted, with `"` and `\` escaped. That is JSON.stringify's text for a
 * string without control characters and surrogates (which it would escape too): natively, 1.6 µs
 * for an envelope against 3.8 µs by a regular expression (measured here; the envelope JSON has
 * some 40 quotes to escape, on every copy).
 */
export function quoted(value: string): string {
  if (!NOT_AS_JSON.test(value)) return JSON.stringify(value);
  return /["\\]/.test(value) ? `"${value.replace(/["\\]/g, "\\$&")}"` : `"${value}"`;
}

/** A mailbox copy: measurement `mailbox`, tag `owner`, fields `envelope` and `id` (docs/influx-schema.md). */
export function mailboxLine(owner: string, id: string, envelope: string, ts: bigint): string {
  return `mailbox,owner=${tag(owner)} envelope=${quoted(envelope)},id=${quoted(id)} ${ts}`;
}

/** A copy's index point: measurement `msg_ids`, tag `owner`, fields `at` and `id` (id-index.ts). */
export function indexLine(owner: string, id: string, at: bigint, slot: bigint): string {
  return `msg_ids,owner=${tag(owner)} at="${at}",id=${quoted(id)} ${slot}`;
}
