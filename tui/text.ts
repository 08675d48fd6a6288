/** Terminal text helpers: sanitising untrusted text, display widths, wrapping. Pure. */

import { sanitizeBody } from "../core/text/sanitize.js";

/**
 * Untrusted text for the screen, through the one sanitizer (core/text/sanitize.ts): controls,
 * escape sequences and bidi controls become visible; tabs become two spaces; newlines stay.
 */
export function sanitize(text: string): string {
  return sanitizeBody(text).replace(/\t/g, "  ");
}

/** Columns one code point takes: 2 for wide (CJK, most emoji), 0 for combining marks, else 1. */
export function charWidth(cp: number): number {
  if (cp >= 0x300 && cp <= 0x36f) return 0;
  if (cp === 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

export function textWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/** Cuts a string to at most `width` columns. */
export function truncate(s: string, width: number): string {
  if (width <= 0) return "";
  let w = 0;
  let out = "";
  for (const ch of s) {
    const cw = charWidth(ch.codePointAt(0)!);
    if (w + cw > width) return out;
    out += ch;
    w += cw;
  }
  return out;
}

/** Pads (or cuts) a string to exactly `width` columns. */
export function fit(s: string, width: number): string {
  const t = truncate(s, width);
  return t + " ".repeat(Math.max(0, width - textWidth(t)));
}

/**
 * Wraps one logical line (no newlines) into rows of at most `width` columns: greedy by
 * words, hard-splitting words longer than a row. Always returns at least one row.
 */
export function wrapLine(line: string, width: number): string[] {
  const w = Math.max(1, width);
  if (textWidth(line) <= w) return [line];
  const rows: string[] = [];
  let row = "";
  let rowW = 0;
  for (const word of line.split(/(\s+)/)) {
    if (word === "") continue;
    const ww = textWidth(word);
    if (rowW + ww <= w) {
      row += word;
      rowW += ww;
      continue;
    }
    if (/^\s+$/.test(word)) {
      // Break at the space; it does not start the next row.
      rows.push(row);
      row = "";
      rowW = 0;
      continue;
    }
    if (ww <= w) {
      if (row.trim() !== "") rows.push(row.trimEnd());
      row = word;
      rowW = ww;
      continue;
    }
    for (const ch of word) {
      const cw = charWidth(ch.codePointAt(0)!);
      if (rowW + cw > w) {
        rows.push(row);
        row = "";
        rowW = 0;
      }
      row += ch;
      rowW += cw;
    }
  }
  if (row !== "" || rows.length === 0) rows.push(row);
  return rows;
}

/** Wraps text with newlines: each logical line wrapped on its own. */
export function wrapText(text: string, width: number): string[] {
  return text.split("\n").flatMap((l) => wrapLine(l, width));
}
