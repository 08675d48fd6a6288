import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatMessage } from "../../core/client/cache.js";
import { historyWindow, itemRows } from "../../tui/history-layout.js";
import {
  type Action,
  contactList,
  describeGroupNotice,
  groupList,
  initialState,
  reduce,
  type State,
} from "../../tui/state.js";

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

function run(s: State, ...actions: Action[]): State {
  return actions.reduce(reduce, s);
}

function main(): State {
  return run(
    initialState(),
    { type: "session", me: "alice", fingerprint: "1 2 3", endpoint: "memory://hub", bell: true },
    { type: "users", names: ["alice", "bob", "carol"], keyChanged: [] },
    { type: "groups", names: ["team"] },
    { type: "layout", width: 60, height: 10 },
  );
}

describe("tui reducer", () => {
  it("starts in Contacts (not text input, so ? is help) and cycles focus with Tab and Shift-Tab", () => {
    let s = main();
    assert.equal(s.focus, "contacts");
    s = run(s, { type: "focusNext" }, { type: "focusNext" });
    assert.equal(s.focus, "history");
    s = reduce(s, { type: "focusNext" });
    assert.equal(s.focus, "composer");
    s = reduce(s, { type: "focusNext" });
    assert.equal(s.focus, "contacts");
    s = run(s, { type: "focusPrev" });
    assert.equal(s.focus, "composer");
  });

  it("moves the selection in lists and opens the selected conversation", () => {
    let s = run(main(), { type: "focus", pane: "contacts" });
    assert.deepEqual(contactList(s), ["bob", "carol"], "me excluded, sorted");
    s = run(s, { type: "select", pane: "contacts", by: 1 });
    assert.equal(s.selected.contacts, "bob");
    s = run(s, { type: "select", pane: "contacts", by: 1 }, { type: "select", pane: "contacts", by: 1 });
    assert.equal(s.selected.contacts, "carol", "stops at the end");
    s = run(s, { type: "select", pane: "contacts", by: "first" }, { type: "activate", pane: "contacts" });
    assert.equal(s.open, "u:bob");
    assert.equal(s.focus, "composer", "opening goes to the composer");
    assert.equal(s.history?.loading, "newest", "asks the controller for the newest page");
  });

  it("counts unread in other conversations, rings, and appends to the open one without duplicates", () => {
    let s = run(
      main(),
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: [], complete: true },
    );
    const fromBob = msg({ conv: "u:bob", from: "bob" });
    const fromCarol = msg({ conv: "u:carol", from: "carol" });
    const inTeam = msg({ conv: "g:team", from: "bob" });
    s = run(
      s,
      { type: "arrived", messages: [fromBob, fromCarol, inTeam] },
      { type: "arrived", messages: [fromBob] },
    );
    assert.equal(s.convs["u:bob"]?.unread, 0);
    assert.equal(s.convs["u:carol"]?.unread, 1);
    assert.equal(s.convs["g:team"]?.unread, 1);
    assert.equal(s.bells, 2, "one bell per message elsewhere");
    assert.deepEqual(
      s.history?.items.map((i) => i.id),
      [fromBob.id],
    );
    s = run(s, { type: "open", conv: "u:carol" });
    assert.equal(s.convs["u:carol"]?.unread, 0, "opening clears the count");
  });

  it("shows our sends as pending, then stored, or failed with the reason", () => {
    let s = run(
      main(),
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: [], complete: true },
    );
    s = run(s, {
      type: "sending",
      localId: "local-1",
      conv: "u:bob",
      text: "hi",
      at: "2025-06-02T10:00:00.000Z",
    });
    assert.equal(s.history?.items[0]?.delivery, "pending");
    const stored = msg({ conv: "u:bob", from: "alice", text: "hi" });
    s = run(
      s,
      { type: "sent", localId: "local-1", message: stored },
      { type: "arrived", messages: [stored] },
    );
    assert.deepEqual(
      s.history?.items.map((i) => [i.id, i.delivery]),
      [[stored.id, "stored"]],
    );
    s = run(s, {
      type: "sending",
      localId: "local-2",
      conv: "u:bob",
      text: "again",
      at: "2025-06-02T10:01:00.000Z",
    });
    s = run(s, { type: "sendFailed", localId: "local-2", error: "bob's keys changed" });
    assert.deepEqual(
      [s.history?.items[1]?.delivery, s.history?.items[1]?.error],
      ["failed", "bob's keys changed"],
    );
  });

  it("keeps mailbox order when an older message arrives late, pending sends last", () => {
    let s = run(main(), { type: "open", conv: "u:bob" });
    const a = msg({ conv: "u:bob", from: "bob", cursor: "10" });
    const c = msg({ conv: "u:bob", from: "bob", cursor: "30" });
    s = run(s, { type: "history", conv: "u:bob", messages: [a, c], complete: true });
    s = run(s, {
      type: "sending",
      localId: "local-9",
      conv: "u:bob",
      text: "x",
      at: "2025-06-02T10:00:00.000Z",
    });
    const b = msg({ conv: "u:bob", from: "bob", cursor: "20" });
    s = run(s, { type: "arrived", messages: [b] });
    assert.deepEqual(
      s.history?.items.map((i) => i.ord),
      ["10", "20", "30", null],
    );
  });

  it("scrolls by line and page, clamps at the top of a complete history, asks for older pages otherwise", () => {
    const many = Array.from({ length: 50 }, () => msg({ conv: "u:bob", from: "bob" }));
    let s = run(
      main(),
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: many, complete: false },
    );
    s = run(s, { type: "scroll", by: "lineUp" });
    assert.equal(s.history?.scroll, 1);
    s = run(s, { type: "scroll", by: "pageUp" });
    assert.equal(s.history?.scroll, 9);
    s = run(s, { type: "scroll", by: "top" });
    assert.equal(s.history?.loading, "all", "Home on a partial history loads everything");
    s = run(s, { type: "history", conv: "u:bob", messages: many, complete: true });
    const top = s.history!.scroll;
    assert.ok(top > 40, `at the top after loading: ${top}`);
    s = run(s, { type: "scroll", by: "pageUp" });
    assert.equal(s.history?.scroll, top, "cannot scroll past the first message");
    s = run(s, { type: "scroll", by: "bottom" });
    assert.equal(s.history?.scroll, 0);
    s = run(s, { type: "scroll", by: "lineDown" });
    assert.equal(s.history?.scroll, 0);
  });

  it("reveals a search hit: loads the whole history if needed, scrolls it into view and marks it", () => {
    const many = Array.from({ length: 300 }, (_, i) =>
      msg({ conv: "u:bob", from: "bob", text: `line ${i + 1}` }),
    );
    const target = many[9]!;
    const visibleIds = (st: State) =>
      historyWindow(st.history!.items, st.view.width, st.view.height, st.history!.scroll).rows.flatMap((r) =>
        r.kind === "msg" ? [r.id] : [],
      );
    // Only the newest 200 are loaded: the reveal asks for everything, then scrolls once it arrives.
    let s = run(
      main(),
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: many.slice(100), complete: false },
      { type: "reveal", conv: "u:bob", id: target.id },
    );
    assert.equal(s.history?.loading, "all");
    assert.deepEqual(s.history?.mark, { id: target.id, pending: true });
    assert.equal(s.focus, "history", "n/N work at once");
    s = run(s, { type: "history", conv: "u:bob", messages: many, complete: true });
    assert.deepEqual(s.history?.mark, { id: target.id, pending: false });
    assert.ok(visibleIds(s).includes(target.id), `#10 is in view at scroll ${s.history?.scroll}`);
    assert.ok(s.history!.scroll > 200, "far up the conversation");
    // Already loaded: the scroll is immediate; the newest message is at scroll 0.
    s = run(s, { type: "reveal", conv: "u:bob", id: many[299]!.id });
    assert.equal(s.history?.scroll, 0);
    assert.ok(visibleIds(s).includes(many[299]!.id));
    // Another conversation: it opens, loading everything, and the mark waits for it.
    s = run(s, { type: "reveal", conv: "g:team", id: "x1" });
    assert.equal(s.open, "g:team");
    assert.equal(s.history?.loading, "all");
    const gone = run(s, { type: "history", conv: "g:team", messages: [], complete: true });
    assert.equal(gone.history?.mark, null);
    assert.match(gone.notice!.text, /not here any more/);
    // Sending clears the mark.
    s = run(s, { type: "edit", op: { kind: "insert", text: "hi" } }, { type: "submit" });
    assert.equal(s.history?.mark, null);
  });

  it("shows the newest search hit first and steps to older and newer ones, wrapping around", () => {
    const bobs = Array.from({ length: 30 }, () => msg({ conv: "u:bob", from: "bob" }));
    const team = [msg({ conv: "g:team", from: "carol" })];
    const hits = [
      { conv: "u:bob", id: bobs[2]!.id },
      { conv: "u:bob", id: bobs[20]!.id },
      { conv: "g:team", id: team[0]!.id },
    ];
    let s = run(main(), { type: "found", query: "lunch", hits });
    assert.equal(s.open, "g:team");
    assert.equal(s.search?.at, 2);
    assert.match(s.notice!.text, /^3 matches for "lunch"; showing the newest \(1\/3\) — n older, N newer/);
    s = run(s, { type: "history", conv: "g:team", messages: team, complete: true });
    assert.equal(s.history?.mark?.id, team[0]!.id);
    s = run(s, { type: "searchStep", by: "older" });
    assert.equal(s.open, "u:bob");
    assert.match(s.notice!.text, /\(2\/3\)/);
    s = run(s, { type: "history", conv: "u:bob", messages: bobs, complete: true });
    assert.deepEqual(s.history?.mark, { id: bobs[20]!.id, pending: false });
    s = run(s, { type: "searchStep", by: "older" });
    assert.deepEqual(s.history?.mark, { id: bobs[2]!.id, pending: false }, "same conversation: no reload");
    assert.match(s.notice!.text, /showing the oldest \(3\/3\)/);
    s = run(s, { type: "searchStep", by: "older" });
    assert.equal(s.search?.at, 2);
    assert.match(s.notice!.text, /back at the newest/);
    s = run(s, { type: "searchStep", by: "newer" });
    assert.equal(s.search?.at, 0);
    assert.match(run(main(), { type: "searchStep", by: "older" }).notice!.text, /no search/);
    assert.equal(run(s, { type: "found", query: "zebra", hits: [] }).search, null);
  });

  it("keeps a scrolled-up view steady and counts what arrives below it", () => {
    const many = Array.from({ length: 30 }, () => msg({ conv: "u:bob", from: "bob" }));
    let s = run(
      main(),
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: many, complete: true },
    );
    s = run(s, { type: "scroll", by: "pageUp" });
    const before = s.history!.scroll;
    s = run(s, { type: "arrived", messages: [msg({ conv: "u:bob", from: "bob" })] });
    assert.equal(s.history?.scroll, before + 1);
    assert.equal(s.history?.newBelow, 1);
  });

  it("Esc closes a dialog first, then moves between the list and the composer", () => {
    let s = run(main(), { type: "open", conv: "g:team" }, { type: "prompt", purpose: "chat" });
    s = reduce(s, { type: "back" });
    assert.equal(s.overlay, null);
    s = reduce(s, { type: "back" });
    assert.equal(s.focus, "groups", "back to where the open conversation is listed");
    s = reduce(s, { type: "back" });
    assert.equal(s.focus, "composer");
  });

  it("'/' jumps to the composer with a slash; submit clears the composer", () => {
    let s = run(main(), { type: "focus", pane: "history" }, { type: "slash" });
    assert.equal(s.focus, "composer");
    assert.deepEqual(s.composer, { text: "/", cursor: 1 });
    s = run(s, { type: "edit", op: { kind: "insert", text: "help" } }, { type: "submit" });
    assert.equal(s.composer.text, "");
  });

  it("edits go to an open prompt instead of the composer", () => {
    let s = run(
      main(),
      { type: "edit", op: { kind: "insert", text: "draft" } },
      { type: "prompt", purpose: "group" },
    );
    s = run(s, { type: "edit", op: { kind: "insert", text: "team\nbob" } });
    assert.equal(s.overlay?.kind === "prompt" && s.overlay.editor.text, "team bob", "prompts are one line");
    assert.equal(s.composer.text, "draft");
  });

  it("marks changed keys loudly and clears the mark once trusted", () => {
    let s = run(main(), { type: "keyChanged", name: "bob" });
    assert.deepEqual(s.keyChanged, ["bob"]);
    assert.equal(s.notice?.level, "warn");
    assert.match(s.notice?.text ?? "", /bob's keys changed/);
    s = run(s, { type: "trusted", name: "bob" });
    assert.deepEqual(s.keyChanged, []);
  });

  it("notices clear only by their own id", () => {
    let s = run(main(), { type: "notice", text: "one", level: "info" });
    const id = s.notice!.id;
    s = run(s, { type: "notice", text: "two", level: "error" }, { type: "clearNotice", id });
    assert.equal(s.notice?.text, "two");
  });
});

describe("tui outbox", () => {
  const at = "2025-06-02T10:05:00.000Z";

  it("a message that could not go out waits in the outbox as pending, and takes its place once stored", () => {
    let s = run(
      main(),
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: [], complete: true },
      { type: "sending", localId: "local-1", conv: "u:bob", text: "written offline", at },
      { type: "queued", localId: "local-1", id: "out-1" },
      {
        type: "outbox",
        items: [{ id: "out-1", conv: "u:bob", text: "written offline", at, error: "no answer" }],
      },
    );
    assert.deepEqual(
      s.history?.items.map((i) => [i.id, i.delivery]),
      [["out-1", "queued"]],
      "one pending item, under the outbox's id",
    );
    assert.equal(s.outbox.length, 1);
    const rows = itemRows(s.history!.items[0]!, undefined, 60).flatMap((r) =>
      r.kind === "msg" ? [r.text] : [],
    );
    assert.match(rows.join(" "), /in the outbox: sent when the service answers \(no answer\); Ctrl-R/);
    // Reconnected: the outbox sent it; the stored message replaces the pending one, once.
    const stored = msg({ id: "out-1", conv: "u:bob", from: "alice", text: "written offline" });
    s = run(s, { type: "arrived", messages: [stored] }, { type: "outbox", items: [] });
    assert.deepEqual(
      s.history?.items.map((i) => [i.id, i.delivery, i.ord]),
      [["out-1", "stored", stored.cursor]],
    );
  });

  it("shows what `zmqchat send --queue` left in the outbox when the conversation opens", () => {
    const s = run(
      main(),
      { type: "outbox", items: [{ id: "cli-1", conv: "u:carol", text: "from the CLI", at, error: null }] },
      { type: "open", conv: "u:carol" },
      {
        type: "history",
        conv: "u:carol",
        messages: [msg({ conv: "u:carol", from: "carol" })],
        complete: true,
      },
    );
    assert.deepEqual(
      s.history?.items.map((i) => [i.text, i.delivery]),
      [
        [s.history?.items[0]?.text, null],
        ["from the CLI", "queued"],
      ],
    );
  });

  it("Ctrl-R takes failed messages off the screen for the controller to send again", () => {
    let s = run(
      main(),
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: [], complete: true },
      { type: "sending", localId: "local-1", conv: "u:bob", text: "refused", at },
      { type: "sendFailed", localId: "local-1", error: "forbidden" },
    );
    assert.equal(s.history?.items[0]?.delivery, "failed");
    s = run(s, { type: "retry" });
    assert.deepEqual(s.history?.items, []);
  });
});

describe("group invitations in the state", () => {
  it("lists invitations among the groups, marked apart, until answered", () => {
    let s = reduce(initialState(), { type: "groups", names: ["crew"], invites: ["band"] });
    assert.deepEqual(groupList(s), ["band", "crew"]);
    assert.deepEqual(s.invites, ["band"]);
    s = reduce(s, { type: "groups", names: ["band", "crew"], invites: [] });
    assert.deepEqual([s.groups, s.invites], [["band", "crew"], []]);
    // A list without invitations (an older caller) keeps those not now joined.
    s = reduce(reduce(s, { type: "groups", names: [], invites: ["x"] }), { type: "groups", names: ["y"] });
    assert.deepEqual(s.invites, ["x"]);
  });

  it("describes a live group change from where this user stands", () => {
    const n = (change: "invited" | "joined" | "declined" | "left" | "removed", user: string, by = "bob") => ({
      group: "band",
      change,
      user,
      by,
    });
    assert.deepEqual(describeGroupNotice(n("invited", "pia"), "pia"), {
      text: "bob invites you to #band: /accept band or /decline band (a / x in Groups)",
      level: "warn",
    });
    assert.equal(describeGroupNotice(n("invited", "carol"), "pia").text, "bob invited carol to #band");
    assert.equal(describeGroupNotice(n("joined", "pia", "pia"), "pia").text, "you joined #band");
    assert.equal(describeGroupNotice(n("left", "carol", "carol"), "pia").text, "carol left #band");
    assert.equal(
      describeGroupNotice(n("declined", "carol", "carol"), "pia").text,
      "carol declined to join #band",
    );
    assert.deepEqual(describeGroupNotice(n("removed", "pia"), "pia"), {
      text: "bob removed you from #band",
      level: "warn",
    });
  });
});

describe("tui message actions", () => {
  it("shows a deleted message as deleted, an edited one marked, the reply it answers and its reactions", () => {
    const plain = msg({ conv: "u:bob", from: "bob", text: "plain words" });
    const gone = msg({ conv: "u:bob", from: "bob", text: "", deleted: true });
    const changed = msg({ conv: "u:bob", from: "bob", text: "new words", edited: plain.sentAt });
    const reply = msg({
      conv: "u:bob",
      from: "bob",
      text: "answer",
      replyTo: "0190aaaa-bbbb-7ccc-8ddd-eeee12345678",
      reactions: { "👍": ["alice", "carol"] },
    });
    const s = run(
      main(),
      { type: "open", conv: "u:bob" },
      { type: "history", conv: "u:bob", messages: [plain, gone, changed, reply], complete: true },
    );
    const text = (i: number) =>
      itemRows(s.history!.items[i]!, s.history!.items[i - 1], 80)
        .flatMap((r) => (r.kind === "msg" ? [r.text] : []))
        .join("\n");
    // A plain message shows its text alone: no marks added.
    assert.equal(text(0), "plain words");
    assert.equal(text(1), "(message deleted)");
    assert.equal(text(2), "new words (edited)");
    assert.equal(text(3), "↪ reply to an older message (…12345678)\nanswer\n👍 alice, carol");
  });
});
