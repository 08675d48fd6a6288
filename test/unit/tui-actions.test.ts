import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatMessage } from "../../core/client/cache.js";
import { historyWindow, itemRows } from "../../tui/history-layout.js";
import { routeKey } from "../../tui/keymap.js";
import { mentions, osc9, splitMentions } from "../../tui/mentions.js";
import { type Action, initialState, reduce, type State } from "../../tui/state.js";

/** Message actions, the divider, mentions, typing and presence in the TUI state (issue 17). */

let seq = 0;
function msg(over: Partial<ChatMessage> & { conv: string; from: string }): ChatMessage {
  seq++;
  return {
    id: `m${seq}`,
    to: null,
    group: null,
    text: `text ${seq}`,
    sentAt: "2025-06-02T10:00:00.000Z",
    serverTime: "2025-06-02T10:00:00.000Z",
    cursor: String(1000 + seq),
    verified: true,
    problem: null,
    seq,
    device: "0123456789abcdef",
    ...over,
  };
}

const run = (s: State, ...actions: Action[]): State => actions.reduce(reduce, s);

function main(): State {
  return run(
    initialState(),
    { type: "session", me: "alice", fingerprint: "1 2 3", endpoint: "memory://hub", bell: true },
    { type: "users", names: ["alice", "bob", "carol"], keyChanged: [] },
    { type: "layout", width: 60, height: 10 },
  );
}

/** alice's chat with bob open on: bob's, alice's, bob's message (oldest first). */
function chat(): { s: State; mine: ChatMessage; theirs: ChatMessage; last: ChatMessage } {
  const theirs = msg({ conv: "u:bob", from: "bob", text: "hello alice" });
  const mine = msg({ conv: "u:bob", from: "alice", text: "hi bob\nsecond line" });
  const last = msg({ conv: "u:bob", from: "bob", text: "how are you" });
  const s = run(
    main(),
    { type: "open", conv: "u:bob" },
    { type: "history", conv: "u:bob", messages: [theirs, mine, last], complete: true },
    { type: "focus", pane: "history" },
  );
  return { s, mine, theirs, last };
}

const keys = (s: State, ...presses: Array<[string, object?]>): State =>
  presses.reduce((st, [input, key]) => run(st, ...routeKey(st, input, key ?? {})), s);

describe("message actions in the history pane", () => {
  it("↑ selects the newest message, ↑↓ move, ↓ past the newest clears; letters are text without a selection", () => {
    const { s, mine, last } = chat();
    assert.deepEqual(routeKey(s, "r", {}), [
      { type: "focus", pane: "composer" },
      { type: "edit", op: { kind: "insert", text: "r" } },
    ]);
    let t = keys(s, ["", { upArrow: true }]);
    assert.equal(t.history?.selected, last.id);
    t = keys(t, ["", { upArrow: true }]);
    assert.equal(t.history?.selected, mine.id);
    t = keys(t, ["", { downArrow: true }], ["", { downArrow: true }]);
    assert.equal(t.history?.selected, null);
  });

  it("r replies: the quote shows above the composer; Enter sends it as a reply and ends the mode; Esc cancels", () => {
    const { s, theirs } = chat();
    let t = keys(s, ["", { upArrow: true }], ["", { upArrow: true }], ["", { upArrow: true }], ["r"]);
    assert.deepEqual(t.compose, {
      kind: "reply",
      conv: "u:bob",
      id: theirs.id,
      from: "bob",
      text: "hello alice",
    });
    assert.equal(t.focus, "composer");
    t = keys(t, ["fine"]);
    assert.equal(t.composer.text, "fine");
    const sent = keys(t, ["\r", { return: true }]);
    assert.equal(sent.compose, null);
    assert.equal(sent.composer.text, "");
    const cancelled = keys(t, ["", { escape: true }]);
    assert.equal(cancelled.compose, null);
    assert.equal(cancelled.composer.text, "fine", "Esc on a reply keeps what was written");
  });

  it("a reply in the history shows the quoted message above it, and the quote follows an edit or delete", () => {
    const { s, theirs } = chat();
    const reply = msg({ conv: "u:bob", from: "alice", text: "fine", replyTo: theirs.id });
    let t = run(s, { type: "arrived", messages: [reply] });
    const rowsOf = (st: State, id: string) => {
      const items = st.history!.items;
      const k = items.findIndex((i) => i.id === id);
      return itemRows(items[k]!, items[k - 1], 60).flatMap((r) => (r.kind === "msg" ? [r.text] : []));
    };
    assert.deepEqual(rowsOf(t, reply.id), ["↪ bob: hello alice", "fine"]);
    t = run(t, { type: "refresh", conv: "u:bob", messages: [{ ...theirs, text: "", deleted: true }] });
    assert.deepEqual(rowsOf(t, reply.id), ["↪ bob: (message deleted)", "fine"]);
  });

  it("a reply to a message older than the page takes its quote from the cache, never from another conversation", () => {
    const { s } = chat();
    const old = msg({ conv: "u:bob", from: "bob", text: "long ago" });
    const elsewhere = msg({ conv: "g:team", from: "carol", text: "team secret" });
    const r1 = msg({ conv: "u:bob", from: "bob", text: "re old", replyTo: old.id });
    const r2 = msg({ conv: "u:bob", from: "bob", text: "re elsewhere", replyTo: elsewhere.id });
    let t = run(s, { type: "arrived", messages: [r1, r2] });
    t = run(t, { type: "quotes", conv: "u:bob", messages: [old, elsewhere] });
    const items = t.history!.items;
    assert.deepEqual(items.find((i) => i.id === r1.id)!.quote, { from: "bob", text: "long ago" });
    const spoof = items.find((i) => i.id === r2.id)!;
    assert.equal(spoof.quote ?? null, null);
    assert.match(
      itemRows(spoof, undefined, 60).flatMap((r) => (r.kind === "msg" ? [r.text] : []))[0]!,
      /↪ reply to an older message/,
    );
  });

  it("e edits only one's own message (the composer holds its text); a non-author's edit and delete are refused", () => {
    const { s, mine } = chat();
    const onTheirs = keys(s, ["", { upArrow: true }], ["e"]);
    assert.equal(onTheirs.compose, null);
    assert.equal(onTheirs.notice?.level, "error");
    assert.match(onTheirs.notice!.text, /only its author may edit a message: this one is bob's/);
    const del = keys(s, ["", { upArrow: true }], ["d"]);
    assert.equal(del.overlay, null);
    assert.match(del.notice!.text, /only its author may delete a message: this one is bob's/);
    const t = keys(s, ["", { upArrow: true }], ["", { upArrow: true }], ["e"]);
    assert.equal(t.compose?.kind, "edit");
    assert.equal(t.compose?.id, mine.id);
    assert.equal(t.composer.text, "hi bob\nsecond line");
    const esc = keys(t, ["", { escape: true }]);
    assert.equal(esc.compose, null);
    assert.equal(esc.composer.text, "", "Esc on an edit drops the prefilled text");
  });

  it("d asks first: y deletes (the worker is told by confirmDelete), n keeps", () => {
    const { s, mine } = chat();
    const asked = keys(s, ["", { upArrow: true }], ["", { upArrow: true }], ["d"]);
    assert.deepEqual(asked.overlay, { kind: "confirm", id: mine.id, preview: "hi bob" });
    assert.deepEqual(routeKey(asked, "y", {}), [{ type: "confirmDelete" }]);
    assert.deepEqual(routeKey(asked, "n", {}), [{ type: "close" }]);
    assert.deepEqual(routeKey(asked, "x", {}), [], "other keys do nothing while asking");
    assert.equal(keys(asked, ["y"]).overlay, null);
  });

  it("+ opens the emoji picker: digits pick, ←→ move, Enter picks the highlighted one, Esc closes", () => {
    const { s, last } = chat();
    const t = keys(s, ["", { upArrow: true }], ["+"]);
    assert.deepEqual(t.overlay, { kind: "react", id: last.id, at: 0 });
    assert.deepEqual(routeKey(t, "2", {}), [{ type: "react", emoji: "❤️" }]);
    const moved = keys(t, ["", { leftArrow: true }]);
    assert.deepEqual(routeKey(moved, "\r", { return: true }), [{ type: "react", emoji: "👀" }]);
    assert.equal(keys(t, ["", { escape: true }]).overlay, null);
  });

  it("a pending or deleted message takes no action", () => {
    const { s, last } = chat();
    const gone = run(s, { type: "refresh", conv: "u:bob", messages: [{ ...last, text: "", deleted: true }] });
    const t = keys(gone, ["", { upArrow: true }], ["+"]);
    assert.equal(t.overlay, null);
    assert.equal(t.notice?.level, "warn");
  });

  it("an edit, delete or reaction that lands updates the shown items in place (no reload, scroll kept)", () => {
    const { s, mine, last } = chat();
    const t = run(s, {
      type: "refresh",
      conv: "u:bob",
      messages: [
        { ...mine, text: "hi bob!", edited: "2025-06-02T10:01:00.000Z" },
        { ...last, reactions: { "👍": ["alice"] } },
      ],
    });
    const items = t.history!.items;
    assert.equal(items[1]!.text, "hi bob!");
    assert.equal(items[1]!.edited, "2025-06-02T10:01:00.000Z");
    assert.deepEqual(items[2]!.reactions, { "👍": ["alice"] });
    assert.equal(t.history!.scroll, s.history!.scroll);
    // Another conversation's refresh changes nothing.
    assert.equal(run(s, { type: "refresh", conv: "u:carol", messages: [{ ...mine, text: "x" }] }), s);
  });
});

describe("the new-messages divider", () => {
  it("goes above the first of the messages unread when the conversation opened; Shift-PgUp jumps to it", () => {
    const old = Array.from({ length: 30 }, (_, i) => msg({ conv: "u:bob", from: i % 2 ? "alice" : "bob" }));
    const fresh = [msg({ conv: "u:bob", from: "bob", text: "new one" }), msg({ conv: "u:bob", from: "bob" })];
    let s = run(main(), { type: "convs", convs: [{ conv: "u:bob", last: "", unread: 2 }] });
    s = run(
      s,
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: [...old, ...fresh], complete: true },
    );
    const items = s.history!.items;
    assert.deepEqual(
      items.filter((i) => i.unreadStart).map((i) => i.id),
      [fresh[0]!.id],
    );
    const rows = itemRows(items[30]!, items[29], 60);
    assert.deepEqual(rows[0], { kind: "divider", label: "new messages" });
    // Scrolled away, then the jump brings the divider into view.
    s = run(s, { type: "scroll", by: "top" });
    const seen = (st: State) =>
      historyWindow(st.history!.items, 60, 10, st.history!.scroll).rows.some((r) => r.kind === "divider");
    assert.equal(seen(s), false);
    const jumped = run(s, ...routeKey(s, "", { pageUp: true, shift: true }));
    assert.equal(seen(jumped), true);
    // Opened with nothing unread: no divider, and the jump says so.
    const none = run(
      main(),
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: old, complete: true },
      { type: "jumpUnread" },
    );
    assert.equal(
      none.history!.items.some((i) => i.unreadStart),
      false,
    );
    assert.equal(none.notice?.text, "nothing unread here");
  });
});

describe("mentions, typing and presence", () => {
  it("finds @name as a whole name only", () => {
    assert.equal(mentions("hi @bob!", "bob"), true);
    assert.equal(mentions("@BOB look", "bob"), true);
    assert.equal(mentions("@bob.", "bob"), true);
    assert.equal(mentions("hi @bobby", "bob"), false);
    assert.equal(mentions("mail a@bob.com", "bob"), false);
    assert.equal(mentions("hi @bob.smith", "bob"), false);
    assert.equal(mentions("bob without at", "bob"), false);
    assert.deepEqual(splitMentions("hey @bob and @bob", "bob"), ["hey ", "@bob", " and ", "@bob", ""]);
  });

  it("a mention rings even in the open conversation and asks for a notification, unless muted", () => {
    const s = run(main(), { type: "open", conv: "g:team" });
    const plain = run(s, {
      type: "arrived",
      messages: [msg({ conv: "g:team", from: "bob", text: "hi all" })],
    });
    assert.equal(plain.bells, 0, "a message in the open conversation does not ring");
    assert.equal(plain.mention, null);
    const m = msg({ conv: "g:team", from: "bob", text: "@alice look" });
    const named = run(s, { type: "arrived", messages: [m] });
    assert.equal(named.bells, 1);
    assert.deepEqual(named.mention, { n: 1, conv: "g:team", from: "bob", text: "@alice look" });
    const muted = run(s, { type: "muted", convs: ["g:team"] }, { type: "arrived", messages: [m] });
    assert.equal(muted.bells, 0);
    assert.equal(muted.mention, null);
    const own = run(s, {
      type: "arrived",
      messages: [msg({ conv: "g:team", from: "alice", text: "@alice" })],
    });
    assert.equal(own.mention, null, "one's own message is no mention");
  });

  it("the OSC 9 notification cannot be ended early by the message (attack: BEL/ESC/ST in the text)", () => {
    const evil = "hi\x07\x1b]52;c;ZXZpbA==\x07\x1b\\\x9c done";
    const out = osc9(evil);
    assert.ok(out.startsWith("\x1b]9;"));
    assert.ok(out.endsWith("\x07"));
    // One ESC (the opener) and one BEL (the terminator): nothing in between can start or end a sequence.
    assert.equal([...out].filter((c) => c === "\x1b").length, 1);
    assert.equal([...out].filter((c) => c === "\x07").length, 1);
    assert.ok(!out.includes("\x9c"));
    // Positive control: the raw text would have smuggled a second sequence (OSC 52, the clipboard).
    const naive = `\x1b]9;${evil}\x07`;
    assert.ok([...naive].filter((c) => c === "\x1b").length > 1);
    assert.ok([...osc9("x".repeat(1000))].length < 140, "cut short");
  });

  it("typing comes and goes per conversation; a message from the typist ends it; presence is kept per contact", () => {
    let s = run(main(), { type: "typing", conv: "u:bob", from: "bob", on: true });
    assert.deepEqual(s.typing["u:bob"], ["bob"]);
    assert.equal(
      run(s, { type: "typing", conv: "u:bob", from: "bob", on: true }),
      s,
      "a renewal changes nothing",
    );
    s = run(s, { type: "arrived", messages: [msg({ conv: "u:bob", from: "bob" })] });
    assert.deepEqual(s.typing["u:bob"], []);
    s = run(
      s,
      { type: "presence", name: "bob", state: "online" },
      { type: "presence", name: "carol", state: "offline" },
    );
    assert.deepEqual(s.presence, { bob: "online", carol: "offline" });
    s = run(s, { type: "presence", name: "bob", state: null });
    assert.deepEqual(s.presence, { carol: "offline" });
  });
});
