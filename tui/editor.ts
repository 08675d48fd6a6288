/** A small text editor value (composer, prompts): text plus a cursor, edited by pure operations. */

import { charWidth } from "./text.js";

export interface Editor {
  text: string;
  /** Index into `text` (UTF-16 units, never inside a surrogate pair). */
  cursor: number;
}

export type EditOp =
  | { kind: "insert"; text: string }
  | { kind: "newline" }
  | { kind: "backspace" }
  | { kind: "delete" }
  | { kind: "deleteWord" }
  | { kind: "killLine" }
  | { kind: "killEnd" }
  | { kind: "left" }
  | { kind: "right" }
  | { kind: "wordLeft" }
  | { kind: "wordRight" }
  | { kind: "home" }
  | { kind: "end" }
  | { kind: "up" }
  | { kind: "down" }
  | { kind: "clear" };

export const emptyEditor: Editor = { text: "", cursor: 0 };

export function editorOf(text: string): Editor {
  return { text, cursor: text.length };
}

function prevIndex(text: string, i: number): number {
  if (i <= 0) return 0;
  const c = text.charCodeAt(i - 1);
  return c >= 0xdc00 && c <= 0xdfff && i >= 2 ? i - 2 : i - 1;
}

function nextIndex(text: string, i: number): number {
  if (i >= text.length) return text.length;
  const c = text.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? i + 2 : i + 1;
}

function lineStart(text: string, i: number): number {
  return text.lastIndexOf("\n", i - 1) + 1;
}

function lineEnd(text: string, i: number): number {
  const n = text.indexOf("\n", i);
  return n === -1 ? text.length : n;
}

/** Pasted or typed text as the editor keeps it: CR LF and lone CR become LF. */
export function normalizeInput(s: string): string {
  return s.replace(/\r\n?/g, "\n");
}

export function edit(e: Editor, op: EditOp, opts: { multiline?: boolean } = {}): Editor {
  const { text, cursor } = e;
  const multiline = opts.multiline ?? true;
  switch (op.kind) {
    case "insert": {
      let ins = normalizeInput(op.text);
      if (!multiline) ins = ins.replace(/\n/g, " ");
      if (ins === "") return e;
      return { text: text.slice(0, cursor) + ins + text.slice(cursor), cursor: cursor + ins.length };
    }
    case "newline":
      return multiline ? edit(e, { kind: "insert", text: "\n" }) : e;
    case "backspace": {
      if (cursor === 0) return e;
      const p = prevIndex(text, cursor);
      return { text: text.slice(0, p) + text.slice(cursor), cursor: p };
    }
    case "delete": {
      if (cursor >= text.length) return e;
      return { text: text.slice(0, cursor) + text.slice(nextIndex(text, cursor)), cursor };
    }
    case "deleteWord": {
      let p = cursor;
      while (p > 0 && /\s/.test(text[p - 1]!)) p--;
      while (p > 0 && !/\s/.test(text[p - 1]!)) p--;
      return { text: text.slice(0, p) + text.slice(cursor), cursor: p };
    }
    case "killLine": {
      const s = lineStart(text, cursor);
      return { text: text.slice(0, s) + text.slice(cursor), cursor: s };
    }
    case "killEnd":
      return { text: text.slice(0, cursor) + text.slice(lineEnd(text, cursor)), cursor };
    case "left":
      return { text, cursor: prevIndex(text, cursor) };
    case "right":
      return { text, cursor: nextIndex(text, cursor) };
    case "wordLeft": {
      let p = cursor;
      while (p > 0 && /\s/.test(text[p - 1]!)) p--;
      while (p > 0 && !/\s/.test(text[p - 1]!)) p--;
      return { text, cursor: p };
    }
    case "wordRight": {
      let p = cursor;
      while (p < text.length && /\s/.test(text[p]!)) p++;
      while (p < text.length && !/\s/.test(text[p]!)) p++;
      return { text, cursor: p };
    }
    case "home":
      return { text, cursor: lineStart(text, cursor) };
    case "end":
      return { text, cursor: lineEnd(text, cursor) };
    case "up":
    case "down": {
      const s = lineStart(text, cursor);
      const col = cursor - s;
      if (op.kind === "up") {
        if (s === 0) return { text, cursor: 0 };
        const ps = lineStart(text, s - 1);
        return { text, cursor: Math.min(ps + col, s - 1) };
      }
      const end = lineEnd(text, cursor);
      if (end === text.length) return { text, cursor: text.length };
      return { text, cursor: Math.min(end + 1 + col, lineEnd(text, end + 1)) };
    }
    case "clear":
      return emptyEditor;
  }
}

export interface EditorRow {
  text: string;
  /** Column of the cursor in this row, or -1 when the cursor is elsewhere. */
  cursorCol: number;
}

/** The editor's text broken into display rows of `width` columns (hard wrap), with the cursor placed. */
export function editorRows(e: Editor, width: number): EditorRow[] {
  const w = Math.max(2, width);
  const rows: EditorRow[] = [];
  let offset = 0;
  for (const line of e.text.split("\n")) {
    let row = "";
    let rowW = 0;
    let cursorCol = -1;
    let i = offset;
    for (const ch of line) {
      const cw = charWidth(ch.codePointAt(0)!);
      // Keep one column free at the end of a row for the cursor.
      if (rowW + cw > w - 1) {
        rows.push({ text: row, cursorCol });
        row = "";
        rowW = 0;
        cursorCol = -1;
      }
      if (i === e.cursor) cursorCol = rowW;
      row += ch;
      rowW += cw;
      i += ch.length;
    }
    if (i === e.cursor && cursorCol === -1) cursorCol = rowW;
    rows.push({ text: row, cursorCol });
    offset += line.length + 1;
  }
  return rows;
}
