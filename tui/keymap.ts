/**
 * Key bindings as pure functions from a key press to actions. Each pane maps only its own
 * keys; the global map takes the keys that work everywhere; `routeKey` sends a key to the
 * focused pane. Tested without a terminal.
 */

import { devicesKey } from "./devices-view.js";
import type { EditOp } from "./editor.js";
import { pathToComplete } from "./file-keys.js";
import { REACTIONS } from "./message-actions.js";
import type { Action, ListPane, Pane, ScrollBy, State } from "./state.js";

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
  overlay: "help" | "prompt" | "react" | "confirm" | "devices" | null;
}

/** Bracketed paste markers as they reach useInput (Ink strips the leading ESC). */
export const PASTE_START = "[200~";
export const PASTE_END = "[201~";

/** What is left of an escape sequence Ink did not name (it strips the ESC): never text to insert. */
const ESCAPE_REMNANT = /^(\[[\d;:?<>=]*[~A-Za-z]|O[A-Za-z])$/;

const scroll = (by: ScrollBy): Action => ({ type: "scroll", by });

/** Keys that work whatever has focus. Ctrl-C always quits, even over an overlay. */
export function globalKey(ctx: KeyContext, input: string, key: KeyPress): Action | null {
  if (key.ctrl && input === "c") return { type: "quit" };
  if (ctx.overlay) return null;
  if (key.tab) return key.shift ? { type: "focusPrev" } : { type: "focusNext" };
  if (key.ctrl && input === "n") return { type: "prompt", purpose: "chat" };
  if (key.ctrl && input === "g") return { type: "prompt", purpose: "group" };
  if (key.ctrl && input === "r") return { type: "retry" };
  if (key.escape && input === "") return { type: "back" };
  if (key.pageUp && key.shift) return { type: "jumpUnread" };
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
  if (pane === "groups" && input === "a") return { type: "answerInvite", answer: "accept" };
  if (pane === "groups" && input === "x") return { type: "answerInvite", answer: "decline" };
  return null;
}

/**
 * History: ↑↓ select a message, PgUp/PgDn and Home/End scroll; Enter goes back to writing.
 * Letters are text here (they go to the composer, see `routeKey`), except n/N while a search
 * is shown and r e d + s while a message is selected (reply, edit, delete, react, save its file).
 */
export function historyKey(input: string, key: KeyPress, searching = false, selected = false): Action | null {
  if (key.ctrl || key.meta) return null;
  if (key.upArrow) return { type: "pick", by: -1 };
  if (key.downArrow) return { type: "pick", by: 1 };
  if (selected && input === "r") return { type: "startReply" };
  if (selected && input === "e") return { type: "startEdit" };
  if (selected && input === "d") return { type: "askDelete" };
  if (selected && input === "+") return { type: "pickReaction" };
  if (selected && input === "s") return { type: "saveSelected" };
  if (key.home) return scroll("top");
  if (key.end) return scroll("bottom");
  if (searching && input === "n") return { type: "searchStep", by: "older" };
  if (searching && input === "N") return { type: "searchStep", by: "newer" };
  if (key.return) return { type: "focus", pane: "composer" };
  return null;
}

/** A key that is text to insert (a printable character or more), not a binding. */
export function isTextKey(input: string, key: KeyPress): boolean {
  if (input === "" || key.ctrl || key.meta || key.escape || key.tab || key.return) return false;
  if (key.backspace || key.delete || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow)
    return false;
  if (ESCAPE_REMNANT.test(input)) return false;
  return [...input].every((ch) => ch >= " " && ch !== "\x7f");
}

/**
 * Text typed where text is not taken (a list, the history) is never dropped: it goes to the
 * composer, which takes focus. A paste starting there goes to the composer as well.
 */
function toComposer(input: string, key: KeyPress): Action[] {
  if (input === PASTE_START)
    return [
      { type: "focus", pane: "composer" },
      { type: "paste", on: true },
    ];
  if (!isTextKey(input, key)) return [];
  return [
    { type: "focus", pane: "composer" },
    { type: "edit", op: { kind: "insert", text: input } },
  ];
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
 * The composer. Enter sends; Alt-Enter or Ctrl-J adds a line; everything inside a bracketed
 * paste is inserted as it is, its line breaks kept.
 */
export function composerKey(pasting: boolean, input: string, key: KeyPress): Action[] {
  if (input === PASTE_START) return [{ type: "paste", on: true }];
  if (input === PASTE_END) return [{ type: "paste", on: false }];
  if (pasting) {
    if (key.return) return [{ type: "edit", op: { kind: "newline" } }];
    if (key.tab) return [{ type: "edit", op: { kind: "insert", text: "  " } }];
    return input === "" ? [] : [{ type: "edit", op: { kind: "insert", text: input } }];
  }
  if (ESCAPE_REMNANT.test(input)) return [];
  if (key.return && key.meta) return [{ type: "edit", op: { kind: "newline" } }];
  if (key.return) return [{ type: "submit" }];
  if (input === "\n") return [{ type: "edit", op: { kind: "newline" } }];
  if (key.ctrl && (input === "c" || input === "n" || input === "g")) return [];
  const op = editKey(input, key);
  return op ? [{ type: "edit", op }] : [];
}

/** The one-line prompts (new chat, new group): Enter accepts, Esc cancels. */
export function promptKey(input: string, key: KeyPress): Action[] {
  if (key.return) return [{ type: "promptSubmit" }];
  if (key.escape && input === "") return [{ type: "close" }];
  if (input === PASTE_START || input === PASTE_END) return [];
  if (key.ctrl && input === "c") return [];
  const op = editKey(input.replace(/[\r\n]+/g, " "), key);
  return op ? [{ type: "edit", op }] : [];
}

/** The emoji picker: 1–8 picks, ←→ and Enter pick the highlighted one, Esc or q closes. */
export function reactKey(at: number, input: string, key: KeyPress): Action | null {
  if ((key.escape && input === "") || input === "q") return { type: "close" };
  if (key.leftArrow || input === "h") return { type: "reactMove", by: -1 };
  if (key.rightArrow || input === "l") return { type: "reactMove", by: 1 };
  if (key.return) return { type: "react", emoji: REACTIONS[at]! };
  const n = /^[1-9]$/.test(input) ? Number(input) : 0;
  if (n >= 1 && n <= REACTIONS.length) return { type: "react", emoji: REACTIONS[n - 1]! };
  return null;
}

/** The delete question: y deletes; n, Esc or q keeps the message. */
export function confirmKey(input: string, key: KeyPress): Action | null {
  if (input === "y" || input === "Y") return { type: "confirmDelete" };
  if ((key.escape && input === "") || input === "n" || input === "N" || input === "q")
    return { type: "close" };
  return null;
}

/** The help overlay: any of Esc, q, Enter or ? closes it. */
export function helpKey(input: string, key: KeyPress): Action | null {
  if ((key.escape && input === "") || key.return || input === "q" || input === "?") return { type: "close" };
  return null;
}

/** The sign-up screen: a name, Enter to go on, Ctrl-C to leave. */
export function signupKey(input: string, key: KeyPress): Action[] {
  if (key.ctrl && input === "c") return [{ type: "quit" }];
  if (key.return) return [{ type: "signup/submit" }];
  if (input === PASTE_START || input === PASTE_END) return [];
  const op = editKey(input.replace(/[\r\n]+/g, ""), key);
  return op ? [{ type: "signup/edit", op }] : [];
}

/**
 * Splits a chunk of input that holds several keys into one key each. Ink hands over a chunk
 * without escape sequences as one string, and a terminal (or tmux) under load delivers
 * quickly typed keys together: "j\r" must be j, then Enter. Inside a bracketed paste the
 * chunk stays whole: there, line breaks are text.
 */
export function splitKeys(
  input: string,
  key: KeyPress,
  pasting: boolean,
): Array<{ input: string; key: KeyPress }> {
  const flagged = Object.entries(key).some(([k, v]) => v === true && k !== "shift");
  if (pasting || flagged || [...input].length <= 1 || ESCAPE_REMNANT.test(input)) return [{ input, key }];
  return [...input].map((ch) => {
    const code = ch.codePointAt(0)!;
    if (ch === "\r") return { input: "\r", key: { return: true } };
    if (ch === "\t") return { input: "", key: { tab: true } };
    if (ch === "\x7f") return { input: "", key: { delete: true } };
    if (ch === "\b") return { input: "", key: { backspace: true } };
    if (ch === "\n") return { input: "\n", key: {} };
    if (code < 0x20) return { input: String.fromCharCode(code + 96), key: { ctrl: true } };
    return { input: ch, key: /^[A-Z]$/.test(ch) ? { shift: true } : {} };
  });
}

/**
 * Where a key goes, decided from the state at the moment the key arrives: the global keys
 * first, then the open dialog, then the focused pane. (Routing here rather than through each
 * pane's own `useInput({isActive})` matters: a pane's listener is attached by a React effect
 * after the render that focused it, so keys typed quickly after Tab went to the wrong pane.)
 */
export function routeKey(
  s: State,
  input: string,
  key: KeyPress,
  opts: { tooSmall?: boolean } = {},
): Action[] {
  if (s.phase === "signup")
    return s.signup.busy === null || (key.ctrl && input === "c") ? signupKey(input, key) : [];
  if (opts.tooSmall) return key.ctrl && input === "c" ? [{ type: "quit" }] : [];
  const overlay = s.overlay?.kind ?? null;
  // Tab on `/file PATH` completes the path rather than changing pane.
  if (key.tab && !key.shift && !overlay && s.focus === "composer" && !s.pasting && pathToComplete(s) !== null)
    return [{ type: "completePath" }];
  const global = globalKey({ focus: s.focus, overlay }, input, key);
  if (global) return [global];
  if (s.overlay?.kind === "devices") {
    const a = devicesKey(s.overlay, input, key);
    return a ? [a] : [];
  }
  if (overlay === "help") {
    const a = helpKey(input, key);
    return a ? [a] : [];
  }
  if (overlay === "prompt") return promptKey(input, key);
  if (s.overlay?.kind === "react") {
    const a = reactKey(s.overlay.at, input, key);
    return a ? [a] : [];
  }
  if (overlay === "confirm") {
    const a = confirmKey(input, key);
    return a ? [a] : [];
  }
  let a: Action | null = null;
  switch (s.focus) {
    case "contacts":
    case "groups":
      a = listKey(s.focus, input, key);
      break;
    case "history":
      a = historyKey(input, key, s.search !== null && Boolean(s.history?.mark), Boolean(s.history?.selected));
      break;
    case "composer":
      return composerKey(s.pasting, input, key);
  }
  return a ? [a] : toComposer(input, key);
}

/** Every key, for the help overlay. */
export const KEY_HELP: ReadonlyArray<[string, string]> = [
  ["Tab / Shift-Tab", "next / previous pane"],
  ["↑↓ (j k in a list)", "move in a list; in the history: select a message"],
  ["r e d + (a message selected)", "reply, edit (yours), delete (yours, asks first), react (1–8)"],
  ["s (a file message selected)", "save its file here, progress in the status bar (as /save)"],
  ["Enter", "open the selected conversation; in the composer: send"],
  ["Alt-Enter, Ctrl-J", "new line in the message (pasted text keeps its lines)"],
  ["PgUp / PgDn", "scroll history by a page (from any pane)"],
  ["Home / End", "oldest / newest message (in the history pane)"],
  ["n / N", "older / newer /search match (while a match is shown)"],
  ["Shift-PgUp, /unread", "jump to the first unread message (the new-messages divider)"],
  ["letters", "outside the composer: go to the composer, typed there"],
  ["Ctrl-R", "send again what failed or waits in the outbox"],
  ["Ctrl-N", "new chat with a user"],
  ["Ctrl-G", "new group"],
  ["a / x", "accept / decline the selected invitation (in Groups, marked ✉)"],
  ["/", "jump to the composer and start a command"],
  ["?", "this help (outside the composer)"],
  ["Esc", "back: close a dialog, end a reply or edit, clear the selection, or change pane"],
  ["Ctrl-A Ctrl-E Ctrl-U Ctrl-W", "line start, line end, delete line, delete word"],
  ["Ctrl-C or /quit", "leave zmqchat"],
];

/**
 * The key hint under the panes: names the focused pane in words (focus is not shown by colour
 * alone) and the keys that work there. Each fits 80 columns.
 */
export function keyHint(focus: Pane, selected = false): string {
  switch (focus) {
    case "contacts":
      return "[Contacts] ↑↓ Enter: open · Tab: pane · Ctrl-N: chat · ?: help · Ctrl-C: quit";
    case "groups":
      return "[Groups] ↑↓ Enter: open · Tab: pane · Ctrl-G: group · ?: help · Ctrl-C: quit";
    case "history":
      return selected
        ? "[History] ↑↓ · r: reply · e: edit · d: delete · +: react · s: save · ?: help"
        : "[History] ↑↓: select · PgUp PgDn Home End · Enter: write · Tab: pane · ?: help";
    case "composer":
      return "[Composer] Enter: send · Alt-Enter: new line · Tab: pane · /help · Ctrl-C: quit";
  }
}
