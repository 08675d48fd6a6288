/**
 * The one sanitizer for untrusted text shown on a terminal (CLI human output and the TUI).
 * Nothing a sender wrote may drive the terminal: C0 and C1 controls (so ESC and every escape
 * sequence, BEL, CR, backspace), DEL, the bidirectional overrides, embeddings, isolates and
 * marks (which reorder what follows them, as in "Trojan Source", CVE-2021-42574) and the
 * Unicode line and paragraph separators are made visible as `\xNN` / `\uNNNN`, never passed
 * through. `--json` output does not go through here: it stays exact.
 */

/** Code points that are shown as an escape instead of being written to the terminal. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_BUT_LAYOUT =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function visible(ch: string): string {
  const cp = ch.codePointAt(0)!;
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, "0")}` : `\\u${cp.toString(16).padStart(4, "0")}`;
}

/**
 * A message body for the terminal: newlines and tabs are kept (they only lay text out), every
 * other unsafe code point becomes visible.
 */
export function sanitizeBody(text: string): string {
  return text.replace(UNSAFE_BUT_LAYOUT, visible);
}

/** A one-line field (a name, a time, a problem): every unsafe code point, newline and tab included, becomes visible. */
export function sanitizeLine(text: string): string {
  return text.replace(UNSAFE, visible);
}

/** ISO 8601 date-time as clients write `sentAt` (`Date.toISOString`, or with an offset). */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** True when `s` is an ISO 8601 date-time that names a real instant. */
export function isIsoTime(s: string): boolean {
  return ISO_8601.test(s) && !Number.isNaN(Date.parse(s));
}
