/**
 * Key bindings as pure functions from a key press to an action (or nothing). Each pane maps
 * only its own keys; the global map takes the keys that work everywhere. Tested without a terminal.
 */

import type { EditOp } from "./editor.js";
import type { Action, ListPane, Pane, ScrollBy } from "./state.js";

/** The key as Ink's useInput reports it (the subset we read). */
export interface KeyPress {
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  return?: boolean;
  escape?: boolean;
  ctrl?: boolean;
  shift?: boolean;
  meta?: boolean;
  tab?: boolean;
  backspace?: boolean;
  delete?: boolean;
}

export interface KeyContext {
  focus: Pane;
  overlay: "help" | "prompt" | null;
}

/** Bracketed paste markers as they reach useInput (Ink strips the leading ESC). */
export const PASTE_START = "[200~";
export const PASTE_END = "[201~";

const scroll = (by: ScrollBy): Action => ({ type: "scroll", by });

/** Keys that work whatever has focus. Ctrl-C always quits, even over an overlay. */
export function globalKey(ctx: KeyContext, input: string, key: KeyPress): Action | null {
  if (key.ctrl && input === "c") return { type: "quit" };
  if (ctx.overlay) return null;
  if (key.tab) return key.shift ? { type: "focusPrev" } : { type: "focusNext" };
  if (key.ctrl && input === "n") return { type: "prompt", purpose: "chat" };
  if (key.ctrl && input === "g") return { type: "prompt", purpose: "group" };
  if (key.escape && input === "") return { type: "back" };
  if (key.pageUp) return scroll("pageUp");
  if (key.pageDown) return scroll("pageDown");
  if (ctx.focus !== "composer" && !key.ctrl && !key.meta) {
    if (input === "/") return { type: "slash" };
    if (input === "?") return { type: "help" };
  }
  return null;
}

/** Contacts and Groups: move the selection, Enter opens the conversation. */
export function listKey(pane: ListPane, input: string, key: KeyPress): Action | null {
  if (key.ctrl || key.meta) return null;
  if (key.upArrow || input === "k") return { type: "select", pane, by: -1 };
  if (key.downArrow || input === "j") return { type: "select", pane, by: 1 };
  if (key.home || input === "g") return { type: "select", pane, by: "first" };
  if (key.end || input === "G") return { type: "select", pane, by: "last" };
  if (key.return || input === "l" || key.rightArrow) return { type: "activate", pane };
  return null;
}

/** History: scroll by line, page, or to either end; Enter goes back to writing. */
export function historyKey(input: string, key: KeyPress): Action | null {
  if (key.ctrl || key.meta) return null;
  if (key.upArrow || input === "k") return scroll("lineUp");
  if (key.downArrow || input === "j") return scroll("lineDown");
  if (key.home || input === "g") return scroll("top");
  if (key.end || input === "G") return scroll("bottom");
  if (input === "b" || input === "u") return scroll("pageUp");
  if (input === " " || input === "d") return scroll("pageDown");
  if (key.return || input === "i") return { type: "focus", pane: "composer" };
  return null;
}

/** Editing keys shared by the composer and the one-line prompts. */
export function editKey(input: string, key: KeyPress): EditOp | null {
  if (key.backspace || key.delete) return key.meta ? { kind: "deleteWord" } : { kind: "backspace" };
  if (key.leftArrow) return key.ctrl || key.meta ? { kind: "wordLeft" } : { kind: "left" };
  if (key.rightArrow) return key.ctrl || key.meta ? { kind: "wordRight" } : { kind: "right" };
  if (key.upArrow) return { kind: "up" };
  if (key.downArrow) return { kind: "down" };
  if (key.home) return { kind: "home" };
  if (key.end) return { kind: "end" };
  if (key.ctrl) {
    switch (input) {
      case "a":
        return { kind: "home" };
      case "e":
        return { kind: "end" };
      case "u":
        return { kind: "killLine" };
      case "k":
        return { kind: "killEnd" };
      case "w":
        return { kind: "deleteWord" };
      case "d":
        return { kind: "delete" };
      case "b":
        return { kind: "left" };
      case "f":
        return { kind: "right" };
      default:
        return null;
    }
  }
  if (key.meta && input === "b") return { kind: "wordLeft" };
  if (key.meta && input === "f") return { kind: "wordRight" };
  if (key.tab || key.escape || key.pageUp || key.pageDown) return null;
  if (input === "") return null;
  return { kind: "insert", text: input };
}

/**
 * The composer. Enter sends; Alt-Enter or Ctrl-J adds a line; text that arrives in one piece
 * (a paste) is inserted whole, its line breaks kept, and so is everything inside a bracketed paste.
 */
export function composerKey(pasting: boolean, input: string, key: KeyPress): Action | null {
  if (input === PASTE_START) return { type: "paste", on: true };
  if (input === PASTE_END) return { type: "paste", on: false };
  if (pasting) {
    if (key.return) return { type: "edit", op: { kind: "newline" } };
    if (key.tab) return { type: "edit", op: { kind: "insert", text: "  " } };
    return input === "" ? null : { type: "edit", op: { kind: "insert", text: input } };
  }
  if (key.return && key.meta) return { type: "edit", op: { kind: "newline" } };
  if (key.return) return { type: "submit" };
  if (input === "\n") return { type: "edit", op: { kind: "newline" } };
  // Several characters at once, line breaks among them: a paste without bracketed-paste markers.
  if (input.length > 1 && /[\r\n]/.test(input)) return { type: "edit", op: { kind: "insert", text: input } };
  if (key.ctrl && (input === "c" || input === "n" || input === "g")) return null;
  const op = editKey(input, key);
  return op ? { type: "edit", op } : null;
}

/** The one-line prompts (new chat, new group): Enter accepts, Esc cancels. */
export function promptKey(input: string, key: KeyPress): Action | null {
  if (key.return) return { type: "promptSubmit" };
  if (key.escape && input === "") return { type: "close" };
  if (input === PASTE_START || input === PASTE_END) return null;
  if (key.ctrl && input === "c") return null;
  const op = editKey(input.replace(/[\r\n]+/g, " "), key);
  return op ? { type: "edit", op } : null;
}

/** The help overlay: any of Esc, q, Enter or ? closes it. */
export function helpKey(input: string, key: KeyPress): Action | null {
  if ((key.escape && input === "") || key.return || input === "q" || input === "?") return { type: "close" };
  return null;
}

/** The sign-up screen: a name, Enter to go on, Ctrl-C to leave. */
export function signupKey(input: string, key: KeyPress): Action | null {
  if (key.ctrl && input === "c") return { type: "quit" };
  if (key.return) return { type: "signup/submit" };
  if (input === PASTE_START || input === PASTE_END) return null;
  const op = editKey(input.replace(/[\r\n]+/g, ""), key);
  return op ? { type: "signup/edit", op } : null;
}

/** Every key, for the help overlay. */
export const KEY_HELP: ReadonlyArray<[string, string]> = [
  ["Tab / Shift-Tab", "next / previous pane"],
  ["↑↓ or j k", "move in a list, scroll history by a line"],
  ["Enter", "open the selected conversation; in the composer: send"],
  ["Alt-Enter, Ctrl-J", "new line in the message (pasted text keeps its lines)"],
  ["PgUp / PgDn", "scroll history by a page (from any pane)"],
  ["Home / End", "oldest / newest message (in the history pane)"],
  ["Ctrl-N", "new chat with a user"],
  ["Ctrl-G", "new group"],
  ["/", "jump to the composer and start a command"],
  ["?", "this help (outside the composer)"],
  ["Esc", "back: close a dialog, or move between list and composer"],
  ["Ctrl-A Ctrl-E Ctrl-U Ctrl-W", "line start, line end, delete line, delete word"],
  ["Ctrl-C or /quit", "leave zmqchat"],
];
