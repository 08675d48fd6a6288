import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { COMMAND_HELP, parseCommand } from "../../tui/commands.js";
import { edit, editorOf, editorRows, emptyEditor } from "../../tui/editor.js";
import { type HistoryItem, historyWindow, itemRows } from "../../tui/history-layout.js";
import {
  composerKey,
  globalKey,
  historyKey,
  type KeyPress,
  keyHint,
  listKey,
  PASTE_END,
  PASTE_START,
  routeKey,
  splitKeys,
} from "../../tui/keymap.js";
import { geometry, tooSmall } from "../../tui/layout.js";
import { initialState, PANES, reduce, type State } from "../../tui/state.js";
import { sanitize, textWidth, wrapLine } from "../../tui/text.js";

const main = (): State =>
  reduce(initialState(), { type: "session", me: "alice", fingerprint: "", endpoint: "x", bell: true });
const ctx = { focus: "composer" as const, overlay: null };

describe("tui keymap", () => {
  it("global keys: Ctrl-C always quits, Tab moves focus, Ctrl-N/Ctrl-G open dialogs, PgUp scrolls from anywhere", () => {
    assert.deepEqual(globalKey({ focus: "composer", overlay: "help" }, "c", { ctrl: true }), {
      type: "quit",
    });
    assert.deepEqual(globalKey(ctx, "", { tab: true }), { type: "focusNext" });
    assert.deepEqual(globalKey(ctx, "", { tab: true, shift: true }), { type: "focusPrev" });
    assert.deepEqual(globalKey(ctx, "n", { ctrl: true }), { type: "prompt", purpose: "chat" });
    assert.deepEqual(globalKey(ctx, "g", { ctrl: true }), { type: "prompt", purpose: "group" });
    assert.deepEqual(globalKey(ctx, "", { pageUp: true }), { type: "scroll", by: "pageUp" });
    assert.deepEqual(globalKey(ctx, "", { escape: true, meta: true }), { type: "back" });
    assert.equal(
      globalKey({ focus: "composer", overlay: "prompt" }, "", { tab: true }),
      null,
      "dialogs keep Tab",
    );
  });

  it("'/' and '?' are commands outside the composer and text inside it", () => {
    assert.deepEqual(globalKey({ focus: "history", overlay: null }, "/", {}), { type: "slash" });
    assert.deepEqual(globalKey({ focus: "contacts", overlay: null }, "?", {}), { type: "help" });
    assert.equal(globalKey(ctx, "/", {}), null);
    assert.deepEqual(composerKey(false, "/", {}), [{ type: "edit", op: { kind: "insert", text: "/" } }]);
  });

  it("lists move with arrows and j/k and open with Enter", () => {
    assert.deepEqual(listKey("contacts", "j", {}), { type: "select", pane: "contacts", by: 1 });
    assert.deepEqual(listKey("groups", "", { upArrow: true }), { type: "select", pane: "groups", by: -1 });
    assert.deepEqual(listKey("contacts", "G", { shift: true }), {
      type: "select",
      pane: "contacts",
      by: "last",
    });
    assert.deepEqual(listKey("contacts", "\r", { return: true }), { type: "activate", pane: "contacts" });
  });

  it("the composer: Enter sends, Alt-Enter and Ctrl-J add lines, bracketed pastes keep theirs", () => {
    assert.deepEqual(composerKey(false, "\r", { return: true }), [{ type: "submit" }]);
    assert.deepEqual(composerKey(false, "\r", { return: true, meta: true }), [
      { type: "edit", op: { kind: "newline" } },
    ]);
    assert.deepEqual(composerKey(false, "\n", {}), [{ type: "edit", op: { kind: "newline" } }]);
    assert.deepEqual(composerKey(false, PASTE_START, {}), [{ type: "paste", on: true }]);
    assert.deepEqual(composerKey(true, "\r", { return: true }), [{ type: "edit", op: { kind: "newline" } }]);
    assert.deepEqual(composerKey(true, "a\rb", {}), [{ type: "edit", op: { kind: "insert", text: "a\rb" } }]);
    assert.deepEqual(composerKey(true, PASTE_END, {}), [{ type: "paste", on: false }]);
    assert.deepEqual(composerKey(false, "", { delete: true }), [{ type: "edit", op: { kind: "backspace" } }]);
    assert.deepEqual(composerKey(false, "w", { ctrl: true }), [{ type: "edit", op: { kind: "deleteWord" } }]);
    assert.deepEqual(composerKey(false, "[I", {}), [], "unknown escape sequences are not text");
  });

  it("splits keys that arrive in one chunk, but not pastes or escape sequences", () => {
    const keys = (i: string, k: KeyPress = {}, p = false) => splitKeys(i, k, p).map((x) => [x.input, x.key]);
    assert.deepEqual(keys("j\r"), [
      ["j", {}],
      ["\r", { return: true }],
    ]);
    assert.deepEqual(keys("\tj"), [
      ["", { tab: true }],
      ["j", {}],
    ]);
    assert.deepEqual(keys("a\x0e"), [
      ["a", {}],
      ["n", { ctrl: true }],
    ]);
    assert.deepEqual(keys("a\rb", {}, true), [["a\rb", {}]]);
    assert.deepEqual(keys(PASTE_START), [[PASTE_START, {}]]);
    assert.deepEqual(keys("x", { meta: true }), [["x", { meta: true }]]);
  });

  it("routes a key to the focused pane, the dialog, the sign-up screen or only Ctrl-C when too small", () => {
    let s = main();
    assert.equal(s.focus, "contacts");
    assert.deepEqual(routeKey(s, "?", {}), [{ type: "help" }]);
    assert.deepEqual(routeKey(s, "j", {}), [{ type: "select", pane: "contacts", by: 1 }]);
    s = reduce(s, { type: "focus", pane: "composer" });
    assert.deepEqual(routeKey(s, "j", {}), [{ type: "edit", op: { kind: "insert", text: "j" } }]);
    assert.deepEqual(routeKey(s, "?", {}), [{ type: "edit", op: { kind: "insert", text: "?" } }]);
    s = reduce(s, { type: "focus", pane: "history" });
    assert.deepEqual(routeKey(s, "", { upArrow: true }), [{ type: "pick", by: -1 }]);
    assert.deepEqual(routeKey(s, "?", {}), [{ type: "help" }]);
    s = reduce(s, { type: "help" });
    assert.deepEqual(routeKey(s, "q", {}), [{ type: "close" }]);
    assert.deepEqual(routeKey(main(), "j", {}, { tooSmall: true }), []);
    assert.deepEqual(routeKey(main(), "c", { ctrl: true }, { tooSmall: true }), [{ type: "quit" }]);
    const signup = initialState();
    assert.deepEqual(routeKey(signup, "b", {}), [{ type: "signup/edit", op: { kind: "insert", text: "b" } }]);
    assert.deepEqual(routeKey(signup, "\r", { return: true }), [{ type: "signup/submit" }]);
  });
});

describe("tui slash commands", () => {
  it("parses every command, and says what is wrong", () => {
    assert.deepEqual(parseCommand("/msg bob"), { kind: "msg", user: "bob", text: null });
    assert.deepEqual(parseCommand("/msg bob hi there"), { kind: "msg", user: "bob", text: "hi there" });
    assert.deepEqual(parseCommand("/group create team bob carol"), {
      kind: "group",
      op: "create",
      name: "team",
      members: ["bob", "carol"],
    });
    assert.deepEqual(parseCommand("/group remove team carol"), {
      kind: "group",
      op: "remove",
      name: "team",
      members: ["carol"],
    });
    assert.deepEqual(parseCommand("/trust bob"), { kind: "trust", user: "bob" });
    assert.deepEqual(parseCommand("/fingerprint"), { kind: "fingerprint", user: null });
    assert.deepEqual(parseCommand("/members"), { kind: "members", name: null });
    assert.deepEqual(parseCommand("/help"), { kind: "help" });
    assert.deepEqual(parseCommand("/quit"), { kind: "quit" });
    assert.equal(parseCommand("/group add team").kind, "invalid");
    assert.equal(parseCommand("/msg Bob").kind, "invalid");
    assert.match((parseCommand("/frobnicate") as { message: string }).message, /unknown command/);
  });

  it("parses /search WORDS…, keeping the words as typed, and refuses an empty query", () => {
    assert.deepEqual(parseCommand("/search  lunch  on Friday "), {
      kind: "search",
      query: "lunch  on Friday",
    });
    assert.deepEqual(parseCommand('/find "new office"'), { kind: "search", query: '"new office"' });
    assert.match((parseCommand("/search") as { message: string }).message, /usage: \/search WORDS/);
    assert.match((parseCommand("/search   ") as { message: string }).message, /usage: \/search WORDS/);
    assert.match((parseCommand("/search ?!") as { message: string }).message, /nothing to search for/);
    assert.ok(
      COMMAND_HELP.some(([cmd]) => cmd.startsWith("/search")),
      "the help overlay lists /search",
    );
  });

  it("n and N in the history pane step through search matches while one is shown; otherwise they are text", () => {
    assert.deepEqual(historyKey("n", {}, true), { type: "searchStep", by: "older" });
    assert.deepEqual(historyKey("N", { shift: true }, true), { type: "searchStep", by: "newer" });
    assert.equal(historyKey("n", {}, false), null);
  });
});

describe("tui editor, text and layout", () => {
  it("edits multi-line text with a cursor", () => {
    let e = editorOf("hello world");
    e = edit(e, { kind: "deleteWord" });
    assert.deepEqual(e, { text: "hello ", cursor: 6 });
    e = edit(edit(e, { kind: "newline" }), { kind: "insert", text: "two" });
    assert.equal(e.text, "hello \ntwo");
    e = edit(e, { kind: "up" });
    assert.equal(e.cursor, 3);
    e = edit(e, { kind: "home" });
    assert.equal(e.cursor, 0);
    assert.equal(
      edit(emptyEditor, { kind: "insert", text: "a\r\nb" }).text,
      "a\nb",
      "pasted CR LF becomes LF",
    );
    assert.equal(edit(editorOf("😀"), { kind: "backspace" }).text, "", "a surrogate pair goes in one step");
    assert.equal(editorRows(editorOf("abcdef"), 4).length, 2, "long lines wrap");
  });

  it("shows terminal escapes and bidi controls of untrusted text as visible escapes and measures wide characters", () => {
    assert.equal(
      sanitize("hi\x1b[2J\x1b]0;pwned\x07 there\r\u202e\tx"),
      "hi\\x1b[2J\\x1b]0;pwned\\x07 there\\x0d\\u202e  x",
    );
    assert.equal(textWidth("日本"), 4);
    assert.deepEqual(wrapLine("one two three", 7), ["one two", "three"]);
  });

  it("lays out only the visible window of a long history", () => {
    const items: HistoryItem[] = Array.from({ length: 10_000 }, (_, i) => ({
      id: `m${i}`,
      from: i % 2 ? "alice" : "bob",
      text: `message ${i}`,
      time: new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString(),
      ord: String(i + 1),
      verified: true,
      problem: null,
      delivery: null,
      error: null,
    }));
    const t0 = performance.now();
    const win = historyWindow(items, 80, 30, 0);
    const ms = performance.now() - t0;
    assert.equal(win.rows.length, 30);
    const last = win.rows.at(-1)!;
    assert.ok(last.kind === "msg" && last.text === "message 9999");
    assert.ok(ms < 50, `the newest page took ${ms} ms`);
    const days = itemRows(items[1440]!, items[1439], 80);
    assert.equal(days[0]?.kind, "day", "a separator where the day changes");
  });

  it("too small below 60×16; panes share the rest", () => {
    assert.equal(tooSmall({ columns: 59, rows: 30 }), true);
    assert.equal(tooSmall({ columns: 60, rows: 16 }), false);
    const g = geometry({ columns: 100, rows: 30 }, 1);
    assert.equal(g.left.contactsRows + g.left.groupsRows + g.statusRows, 30);
    assert.equal(g.right.historyRows + g.right.composerRows + g.statusRows, 30);
    assert.ok(
      geometry({ columns: 100, rows: 30 }, 4).history.height < g.history.height,
      "a taller composer takes rows",
    );
  });
});

/** Types `text` key by key (as a terminal delivers it) from state `s`, through the keymap and the reducer. */
function typeKeys(s: State, text: string): State {
  for (const k of splitKeys(text, {}, false)) for (const a of routeKey(s, k.input, k.key)) s = reduce(s, a);
  return s;
}

describe("tui focus: typed text is never dropped", () => {
  it("text typed in the history pane goes to the composer whole, 'i' included", () => {
    let s = reduce(main(), { type: "open", conv: "u:bob" });
    s = reduce(s, { type: "focus", pane: "history" });
    s = typeKeys(s, "reply from TUI while listen runs");
    assert.equal(s.focus, "composer");
    assert.equal(s.composer.text, "reply from TUI while listen runs");
  });

  it("text typed in a list goes to the composer, except the list's own keys; a paste too", () => {
    let s = typeKeys(main(), "hello");
    assert.equal(s.composer.text, "hello");
    assert.equal(s.focus, "composer");
    s = reduce(main(), { type: "focus", pane: "groups" });
    s = typeKeys(s, "hmm");
    assert.equal(s.composer.text, "hmm");
    let p = reduce(main(), { type: "focus", pane: "history" });
    for (const a of routeKey(p, PASTE_START, {})) p = reduce(p, a);
    assert.equal(p.focus, "composer");
    assert.equal(p.pasting, true);
  });

  it("Enter, arrows and control keys in the history pane are not text", () => {
    const s = reduce(main(), { type: "focus", pane: "history" });
    assert.deepEqual(routeKey(s, "\r", { return: true }), [{ type: "focus", pane: "composer" }]);
    assert.deepEqual(routeKey(s, "", { escape: true }), [{ type: "back" }]);
    assert.deepEqual(routeKey(s, "[Z", {}), [], "an escape remnant is not text");
    assert.deepEqual(routeKey(s, "r", { ctrl: true }), [{ type: "retry" }]);
  });

  it("the key hint names the focused pane in words and fits 80 columns", () => {
    for (const pane of PANES) {
      const hint = keyHint(pane);
      assert.ok(textWidth(hint) <= 80, `${pane}: ${textWidth(hint)} columns: ${hint}`);
      assert.match(hint, new RegExp(`^\\[${pane}\\]`, "i"));
      // ? works wherever it is not text input, and the hint says so there; the composer names /help.
      if (pane === "composer") assert.match(hint, /\/help/);
      else assert.match(hint, /\?: help/);
    }
  });
});

describe("invitation commands and keys", () => {
  it("parse /accept, /decline and /leave, with the group or without (the open one)", () => {
    assert.deepEqual(parseCommand("/accept band"), { kind: "invite", answer: "accept", name: "band" });
    assert.deepEqual(parseCommand("/decline band"), { kind: "invite", answer: "decline", name: "band" });
    assert.deepEqual(parseCommand("/leave"), { kind: "invite", answer: "leave", name: null });
    assert.equal(parseCommand("/accept Band!").kind, "invalid");
    assert.ok(COMMAND_HELP.some(([c]) => c.startsWith("/accept")));
  });

  it("a and x answer the selected invitation in Groups only", () => {
    assert.deepEqual(listKey("groups", "a", {}), { type: "answerInvite", answer: "accept" });
    assert.deepEqual(listKey("groups", "x", {}), { type: "answerInvite", answer: "decline" });
    assert.equal(listKey("contacts", "a", {}), null);
  });
});
