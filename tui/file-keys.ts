/**
 * Attachment keys in the TUI (issue 18), as pure functions over the state: `s` on a selected
 * file message saves it, Tab in the composer completes the path of `/file PATH`. The worker
 * does the reading and writing (tui/worker/files.ts); nothing here touches the disk.
 */

import type { Editor } from "./editor.js";
import type { HistoryItem } from "./history-layout.js";

/**
 * The part of the TUI state these keys read (tui/state.ts's State has it). Named here rather
 * than imported, so that state.ts, which reduces these actions, and this file form no import cycle.
 */
export interface FileKeyState {
  history: { conv: string; items: HistoryItem[]; selected?: string | null } | null;
  composer: Editor;
  notice: { id: number; text: string; level: "info" | "warn" | "error" } | null;
  nextId: number;
}

export type FileKeyAction =
  /** `s` in the history: save the selected message's file (the worker downloads it). */
  | { type: "saveSelected" }
  /** Tab in the composer on `/file PATH`: complete PATH's last segment (the worker lists the directory). */
  | { type: "completePath" };

/** The composer text Tab completes: `/file ` and a path, the cursor at its end. */
const FILE_ARG = /^\/file +(.*)$/s;

/** The path being typed after `/file`, or null when Tab is not a completion here. */
export function pathToComplete(s: FileKeyState): string | null {
  const e = s.composer;
  if (e.cursor !== e.text.length) return null;
  const m = FILE_ARG.exec(e.text);
  return m && !m[1]!.includes("\n") ? m[1]! : null;
}

/** The selected message of the open conversation (as message-actions.ts's, without importing it: no cycle). */
function selectedItem(s: FileKeyState): HistoryItem | null {
  const h = s.history;
  return h?.selected ? (h.items.find((i) => i.id === h.selected) ?? null) : null;
}

function notice<S extends FileKeyState>(s: S, text: string, level: "info" | "warn"): S {
  return { ...s, notice: { id: s.nextId, text, level }, nextId: s.nextId + 1 };
}

/** The file message `s` saves, or null; the reducer explains a refusal in the status bar. */
export function fileToSave(s: FileKeyState): { conv: string; id: string } | null {
  const i = selectedItem(s);
  if (!i || !s.history || !i.file || i.deleted) return null;
  return { conv: s.history.conv, id: i.id };
}

export function reduceFileKey<S extends FileKeyState>(s: S, a: FileKeyAction): S {
  switch (a.type) {
    case "saveSelected": {
      if (!selectedItem(s)) return notice(s, "select a message first (↑ in the history)", "warn");
      if (!fileToSave(s)) return notice(s, "that message has no file to save", "warn");
      return s;
    }
    case "completePath":
      return s;
  }
}

/** A directory entry as completion needs it. */
export interface DirEntry {
  name: string;
  dir: boolean;
}

/**
 * What Tab adds to `typed` (the path so far) given the entries of its directory: the rest of a
 * unique match (a directory gets a trailing `/`), else the longest common prefix of the
 * matches. Hidden entries only when the segment starts with `.`. `matches` lists the candidates.
 */
export function completeSegment(typed: string, entries: DirEntry[]): { add: string; matches: string[] } {
  const seg = typed.slice(typed.lastIndexOf("/") + 1);
  const found = entries
    .filter((e) => e.name.startsWith(seg) && (seg.startsWith(".") || !e.name.startsWith(".")))
    .filter((e) => e.name !== "." && e.name !== "..")
    .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const matches = found.map((e) => (e.dir ? `${e.name}/` : e.name));
  if (found.length === 0) return { add: "", matches };
  if (found.length === 1) return { add: matches[0]!.slice(seg.length), matches };
  let common = found[0]!.name;
  for (const e of found) {
    let n = 0;
    while (n < common.length && n < e.name.length && common[n] === e.name[n]) n++;
    common = common.slice(0, n);
  }
  // Never end inside a surrogate pair.
  const last = common.charCodeAt(common.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) common = common.slice(0, -1);
  return { add: common.slice(seg.length), matches };
}
