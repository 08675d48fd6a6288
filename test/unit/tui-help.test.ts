import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KEY_HELP, type KeyPress, routeKey } from "../../tui/keymap.js";
import { type Action, initialState, type Pane, reduce, type State } from "../../tui/state.js";

/**
 * The help overlay promises what each key does; these checks hold every row of it to the
 * real key routing (`routeKey`, as the app calls it), and every key the routing acts on in a
 * list or the history to a row of the help (or to the short list of vi-style aliases below).
 */

const main = (): State =>
  reduce(initialState(), { type: "session", me: "alice", fingerprint: "", endpoint: "x", bell: true });

/**
 * `searching`: the history pane while a /search match is shown (n/N step then); `selected`: the
 * history pane with a message selected (r e d + act on it); `reacting`: the emoji picker.
 */
type Where = Pane | "help" | "prompt" | "searching" | "selected" | "reacting";

function stateAt(where: Where): State {
  const s = main();
  if (where === "help") return reduce(s, { type: "help" });
  if (where === "prompt") return reduce(s, { type: "prompt", purpose: "chat" });
  if (where === "selected" || where === "reacting") {
    const item = {
      id: "m1",
      from: "alice",
      text: "hi",
      time: "2026-01-01T00:00:00.000Z",
      ord: "1",
      verified: true,
      problem: null,
      delivery: "stored" as const,
      error: null,
    };
    const sel: State = {
      ...s,
      focus: "history",
      open: "u:bob",
      history: {
        conv: "u:bob",
        items: [item],
        complete: true,
        loading: null,
        scroll: 0,
        newBelow: 0,
        mark: null,
        selected: "m1",
      },
    };
    return where === "reacting" ? reduce(sel, { type: "pickReaction" }) : sel;
  }
  if (where === "searching")
    return {
      ...s,
      focus: "history",
      open: "u:bob",
      search: { query: "x", hits: [{ conv: "u:bob", id: "m1" }], at: 0 },
      history: {
        conv: "u:bob",
        items: [],
        complete: true,
        loading: null,
        scroll: 0,
        newBelow: 0,
        mark: { id: "m1", pending: false },
      },
    };
  return { ...s, focus: where };
}

/** Text typed outside the composer goes to it (focus, then the character): not a binding of that pane. */
const typed = (ch: string): Action[] => [
  { type: "focus", pane: "composer" },
  { type: "edit", op: { kind: "insert", text: ch } } as Action,
];
const isTyped = (acts: Action[]) =>
  acts.length === 2 && acts[0]?.type === "focus" && acts[1]?.type === "edit";

interface Check {
  where: Where;
  input: string;
  key?: KeyPress;
  does: Action[];
}

const scroll = (by: string): Action[] => [{ type: "scroll", by } as Action];
const editOp = (op: object): Action[] => [{ type: "edit", op } as Action];

/** For each row of the help, by its key label: presses and the actions they must route to. */
const PROMISES: Record<string, Check[]> = {
  "Tab / Shift-Tab": [
    { where: "contacts", input: "", key: { tab: true }, does: [{ type: "focusNext" }] },
    { where: "composer", input: "", key: { tab: true, shift: true }, does: [{ type: "focusPrev" }] },
  ],
  "↑↓ (j k in a list)": [
    {
      where: "contacts",
      input: "",
      key: { upArrow: true },
      does: [{ type: "select", pane: "contacts", by: -1 }],
    },
    {
      where: "groups",
      input: "",
      key: { downArrow: true },
      does: [{ type: "select", pane: "groups", by: 1 }],
    },
    { where: "contacts", input: "k", does: [{ type: "select", pane: "contacts", by: -1 }] },
    { where: "groups", input: "j", does: [{ type: "select", pane: "groups", by: 1 }] },
    { where: "history", input: "", key: { upArrow: true }, does: [{ type: "pick", by: -1 }] },
    { where: "history", input: "", key: { downArrow: true }, does: [{ type: "pick", by: 1 }] },
  ],
  "r e d + (a message selected)": [
    { where: "selected", input: "r", does: [{ type: "startReply" }] },
    { where: "selected", input: "e", does: [{ type: "startEdit" }] },
    { where: "selected", input: "d", does: [{ type: "askDelete" }] },
    { where: "selected", input: "+", does: [{ type: "pickReaction" }] },
    { where: "reacting", input: "1", does: [{ type: "react", emoji: "👍" }] },
    { where: "reacting", input: "", key: { rightArrow: true }, does: [{ type: "reactMove", by: 1 }] },
    { where: "reacting", input: "\r", key: { return: true }, does: [{ type: "react", emoji: "👍" }] },
    // Without a selection they are text, as every letter in the history.
    { where: "history", input: "r", does: typed("r") },
    { where: "history", input: "+", does: typed("+") },
  ],
  "s (a file message selected)": [
    { where: "selected", input: "s", does: [{ type: "saveSelected" }] },
    { where: "history", input: "s", does: typed("s") },
  ],
  "Shift-PgUp, /unread": (["contacts", "history", "composer"] as const).map((where) => ({
    where,
    input: "",
    key: { pageUp: true, shift: true },
    does: [{ type: "jumpUnread" } as Action],
  })),
  letters: [
    { where: "history", input: "k", does: typed("k") },
    { where: "history", input: "i", does: typed("i") },
    { where: "contacts", input: "h", does: typed("h") },
    { where: "groups", input: "q", does: typed("q") },
    { where: "history", input: " ", does: typed(" ") },
  ],
  "Ctrl-R": (["history", "contacts", "composer"] as const).map((where) => ({
    where,
    input: "r",
    key: { ctrl: true },
    does: [{ type: "retry" } as Action],
  })),
  Enter: [
    { where: "contacts", input: "\r", key: { return: true }, does: [{ type: "activate", pane: "contacts" }] },
    { where: "groups", input: "\r", key: { return: true }, does: [{ type: "activate", pane: "groups" }] },
    { where: "composer", input: "\r", key: { return: true }, does: [{ type: "submit" }] },
  ],
  "Alt-Enter, Ctrl-J": [
    { where: "composer", input: "\r", key: { return: true, meta: true }, does: editOp({ kind: "newline" }) },
    { where: "composer", input: "\n", does: editOp({ kind: "newline" }) },
  ],
  "PgUp / PgDn": (["contacts", "groups", "history", "composer"] as const).flatMap((where) => [
    { where, input: "", key: { pageUp: true }, does: scroll("pageUp") },
    { where, input: "", key: { pageDown: true }, does: scroll("pageDown") },
  ]),
  "Home / End": [
    { where: "history", input: "", key: { home: true }, does: scroll("top") },
    { where: "history", input: "", key: { end: true }, does: scroll("bottom") },
  ],
  "n / N": [
    { where: "searching", input: "n", does: [{ type: "searchStep", by: "older" } as Action] },
    {
      where: "searching",
      input: "N",
      key: { shift: true },
      does: [{ type: "searchStep", by: "newer" } as Action],
    },
    { where: "history", input: "n", does: typed("n") },
  ],
  "Ctrl-N": (["contacts", "history", "composer"] as const).map((where) => ({
    where,
    input: "n",
    key: { ctrl: true },
    does: [{ type: "prompt", purpose: "chat" } as Action],
  })),
  "Ctrl-G": (["groups", "composer"] as const).map((where) => ({
    where,
    input: "g",
    key: { ctrl: true },
    does: [{ type: "prompt", purpose: "group" } as Action],
  })),
  "a / x": [
    { where: "groups", input: "a", does: [{ type: "answerInvite", answer: "accept" } as Action] },
    { where: "groups", input: "x", does: [{ type: "answerInvite", answer: "decline" } as Action] },
    // In Contacts, a is text: it goes to the composer.
    { where: "contacts", input: "a", does: typed("a") },
  ],
  "/": [
    { where: "contacts", input: "/", does: [{ type: "slash" }] },
    { where: "history", input: "/", does: [{ type: "slash" }] },
    { where: "composer", input: "/", does: editOp({ kind: "insert", text: "/" }) },
  ],
  "?": [
    { where: "contacts", input: "?", does: [{ type: "help" }] },
    { where: "history", input: "?", does: [{ type: "help" }] },
    { where: "composer", input: "?", does: editOp({ kind: "insert", text: "?" }) },
  ],
  Esc: [
    { where: "contacts", input: "", key: { escape: true }, does: [{ type: "back" }] },
    { where: "composer", input: "", key: { escape: true }, does: [{ type: "back" }] },
    { where: "help", input: "", key: { escape: true }, does: [{ type: "close" }] },
    { where: "prompt", input: "", key: { escape: true }, does: [{ type: "close" }] },
  ],
  "Ctrl-A Ctrl-E Ctrl-U Ctrl-W": [
    { where: "composer", input: "a", key: { ctrl: true }, does: editOp({ kind: "home" }) },
    { where: "composer", input: "e", key: { ctrl: true }, does: editOp({ kind: "end" }) },
    { where: "composer", input: "u", key: { ctrl: true }, does: editOp({ kind: "killLine" }) },
    { where: "composer", input: "w", key: { ctrl: true }, does: editOp({ kind: "deleteWord" }) },
  ],
  "Ctrl-C or /quit": (["contacts", "history", "composer", "help", "prompt"] as const).map((where) => ({
    where,
    input: "c",
    key: { ctrl: true },
    does: [{ type: "quit" }],
  })),
};

/** Keys the lists and the history also take, vi-style, that the help leaves out for brevity. */
const ALIASES: Record<string, string[]> = {
  contacts: ["g", "G", "l", "→", "Home", "End"],
  groups: ["g", "G", "l", "→", "Home", "End"],
  history: ["Enter"],
};

/** Every single key press a terminal can send, as [name, input, key]. */
function everyPress(): Array<[string, string, KeyPress]> {
  const named: Array<[string, KeyPress]> = [
    ["↑", { upArrow: true }],
    ["↓", { downArrow: true }],
    ["←", { leftArrow: true }],
    ["→", { rightArrow: true }],
    ["PgUp", { pageUp: true }],
    ["PgDn", { pageDown: true }],
    ["Home", { home: true }],
    ["End", { end: true }],
    ["Enter", { return: true }],
    ["Esc", { escape: true }],
    ["Tab", { tab: true }],
    ["Shift-Tab", { tab: true, shift: true }],
    ["Backspace", { backspace: true }],
    ["Delete", { delete: true }],
  ];
  const presses: Array<[string, string, KeyPress]> = named.map(([n, k]) => [n, n === "Enter" ? "\r" : "", k]);
  for (let c = 0x20; c < 0x7f; c++) {
    const ch = String.fromCharCode(c);
    presses.push([ch === " " ? "Space" : ch, ch, /^[A-Z]$/.test(ch) ? { shift: true } : {}]);
  }
  for (let c = 0x61; c <= 0x7a; c++) {
    const ch = String.fromCharCode(c);
    presses.push([`Ctrl-${ch.toUpperCase()}`, ch, { ctrl: true }]);
  }
  return presses;
}

/** The name under which a check's press appears in `everyPress`. */
function pressName(input: string, key: KeyPress = {}): string {
  const found = everyPress().find(
    ([, i, k]) =>
      i === input && JSON.stringify(k) === JSON.stringify(key) && (i !== "" || Object.keys(k).length),
  );
  return found?.[0] ?? `${JSON.stringify(input)} ${JSON.stringify(key)}`;
}

/** Keys bound in a list or the history that neither the help nor `aliases` mentions. */
function undocumentedKeys(aliases: Record<string, string[]>): string[] {
  const documented = new Set<string>();
  for (const checks of Object.values(PROMISES))
    for (const c of checks) if (c.does.length > 0) documented.add(pressName(c.input, c.key));
  const undocumented: string[] = [];
  for (const where of ["contacts", "groups", "history"] as const) {
    for (const [name, input, key] of everyPress()) {
      const acts = routeKey(stateAt(where), input, key);
      const bound = acts.length > 0 && !isTyped(acts);
      const alias = aliases[where]?.includes(name) ?? false;
      if (alias) assert.ok(bound, `the alias ${name} in ${where} is bound to nothing: drop it from ALIASES`);
      if (bound && !alias && !documented.has(name)) undocumented.push(`${name} in ${where}`);
    }
  }
  return undocumented;
}

describe("the help overlay against the key routing", () => {
  it("has a routing check for every row it shows, and shows every row checked", () => {
    assert.deepEqual(KEY_HELP.map(([k]) => k).sort(), Object.keys(PROMISES).sort());
  });

  for (const [label, what] of KEY_HELP) {
    it(`"${label}": ${what}`, () => {
      for (const c of PROMISES[label] ?? []) {
        assert.deepEqual(
          routeKey(stateAt(c.where), c.input, c.key ?? {}),
          c.does,
          `${pressName(c.input, c.key)} in ${c.where}`,
        );
      }
    });
  }

  it("every key a list or the history acts on is in the help (or a listed alias)", () => {
    assert.deepEqual(undocumentedKeys(ALIASES), []);
  });

  it("positive control: a bound key missing from the help and the aliases is found", () => {
    const fewer = { ...ALIASES, contacts: (ALIASES.contacts ?? []).filter((k) => k !== "l") };
    assert.deepEqual(undocumentedKeys(fewer), ["l in contacts"]);
  });
});
