import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { ChatMessage } from "../../core/client/cache.js";
import { COMMAND_HELP } from "../../tui/commands.js";
import { editorOf } from "../../tui/editor.js";
import { completeSegment } from "../../tui/file-keys.js";
import { KEY_HELP, keyHint, routeKey } from "../../tui/keymap.js";
import { type Action, initialState, reduce, type State } from "../../tui/state.js";
import type { WorkerContext } from "../../tui/worker/context.js";
import { fileKeyEffect } from "../../tui/worker/files.js";

/** Attachment keys in the TUI (issue 18): `s` saves the selected file message; Tab completes `/file PATH`. */

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
const keys = (s: State, ...presses: Array<[string, object?]>): State =>
  presses.reduce((st, [input, key]) => run(st, ...routeKey(st, input, key ?? {})), s);

const ref = {
  id: "f1",
  name: "report.pdf",
  size: 1234,
  type: "application/pdf",
  sha256: "00",
  key: "k",
  chunks: 1,
};

/** alice's chat with bob: a file message from bob, then a plain one. */
function chat(): { s: State; file: ChatMessage; plain: ChatMessage } {
  const file = msg({
    conv: "u:bob",
    from: "bob",
    text: "[file] report.pdf",
    file: ref,
  } as Partial<ChatMessage> & {
    conv: string;
    from: string;
  });
  const plain = msg({ conv: "u:bob", from: "bob", text: "there it is" });
  const s = run(
    initialState(),
    { type: "session", me: "alice", fingerprint: "1 2 3", endpoint: "memory://hub", bell: true },
    { type: "users", names: ["alice", "bob"], keyChanged: [] },
    { type: "layout", width: 80, height: 20 },
    { type: "open", conv: "u:bob" },
    { type: "history", conv: "u:bob", messages: [file, plain], complete: true },
    { type: "focus", pane: "history" },
  );
  return { s, file, plain };
}

/** A worker context over a state that follows what is dispatched, with the notices it shows. */
function fakeCtx(start: State) {
  let state = start;
  const notices: string[] = [];
  const work: Promise<unknown>[] = [];
  const ctx = {
    dispatch: (a: Action) => {
      state = reduce(state, a);
    },
    state: () => state,
    client: () => null,
    notice: (text: string) => notices.push(text),
    track: (p: Promise<unknown>) => work.push(p),
  } as unknown as WorkerContext;
  return { ctx, notices, settled: () => Promise.all(work), now: () => state };
}

describe("s on a selected file message", () => {
  it("saves that message's file (as /save ID does), and is listed in the help and the key hint", async () => {
    const { s, file } = chat();
    const t = keys(s, ["", { upArrow: true }], ["", { upArrow: true }]);
    assert.equal(t.history?.selected, file.id);
    const acts = routeKey(t, "s", {});
    assert.deepEqual(acts, [{ type: "saveSelected" }]);
    const after = run(t, ...acts);
    assert.equal(after.notice, null, "no refusal");
    const saved: Array<[string | null, string | null]> = [];
    const { ctx } = fakeCtx(after);
    fileKeyEffect(ctx, acts[0] as { type: "saveSelected" }, t, async (_c, conv, id) => {
      saved.push([conv, id]);
    });
    assert.deepEqual(saved, [["u:bob", file.id]]);
    assert.ok(KEY_HELP.some(([k]) => k.startsWith("s ")));
    assert.ok(COMMAND_HELP.some(([c, what]) => c === "/file PATH" && /Tab completes/.test(what)));
    assert.match(keyHint("history", true), /s: save/);
  });

  it("refuses on a message without a file, with a status line, and saves nothing", () => {
    const { s, plain } = chat();
    const t = keys(s, ["", { upArrow: true }]);
    assert.equal(t.history?.selected, plain.id);
    const after = keys(t, ["s"]);
    assert.match(after.notice?.text ?? "", /no file to save/);
    const saved: unknown[] = [];
    fileKeyEffect(fakeCtx(after).ctx, { type: "saveSelected" }, t, async (...a) => {
      saved.push(a);
    });
    assert.deepEqual(saved, []);
  });

  it("without a selection, s is text for the composer", () => {
    const { s } = chat();
    assert.deepEqual(routeKey(s, "s", {}), [
      { type: "focus", pane: "composer" },
      { type: "edit", op: { kind: "insert", text: "s" } },
    ]);
  });
});

describe("Tab completes the path of /file in the composer", () => {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-complete-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "report-2025.pdf"), "x");
  writeFileSync(join(dir, "photo-a.jpg"), "x");
  writeFileSync(join(dir, "photo-b.jpg"), "x");
  writeFileSync(join(dir, ".secret"), "x");
  mkdirSync(join(dir, "docs"));

  function composing(text: string): State {
    const s = run(chat().s, { type: "focus", pane: "composer" });
    return { ...s, composer: editorOf(text) };
  }

  async function tab(text: string): Promise<{ text: string; notices: string[] }> {
    const s = composing(text);
    const acts = routeKey(s, "", { tab: true });
    assert.deepEqual(acts, [{ type: "completePath" }], "Tab on /file is a completion, not a pane change");
    const f = fakeCtx(run(s, ...acts));
    fileKeyEffect(f.ctx, { type: "completePath" }, s);
    await f.settled();
    return { text: f.now().composer.text, notices: f.notices };
  }

  it("a unique match is completed", async () => {
    assert.equal((await tab(`/file ${dir}/rep`)).text, `/file ${dir}/report-2025.pdf`);
  });

  it("several matches: their common prefix, then a status line listing them", async () => {
    assert.equal((await tab(`/file ${dir}/ph`)).text, `/file ${dir}/photo-`);
    const again = await tab(`/file ${dir}/photo-`);
    assert.equal(again.text, `/file ${dir}/photo-`);
    assert.match(again.notices.join("\n"), /2 matches: photo-a\.jpg {2}photo-b\.jpg/);
  });

  it("a directory gets a trailing /", async () => {
    assert.equal((await tab(`/file ${dir}/do`)).text, `/file ${dir}/docs/`);
  });

  it("no match: the text stays and the status bar says so", async () => {
    const r = await tab(`/file ${dir}/zzz`);
    assert.equal(r.text, `/file ${dir}/zzz`);
    assert.match(r.notices.join("\n"), /no file matches/);
  });

  it("hidden files only when the segment starts with a dot", () => {
    const entries = [
      { name: ".secret", dir: false },
      { name: "sea.txt", dir: false },
    ];
    assert.deepEqual(completeSegment("s", entries), { add: "ea.txt", matches: ["sea.txt"] });
    assert.deepEqual(completeSegment("./.s", entries), { add: "ecret", matches: [".secret"] });
  });

  it("~ is expanded to the home directory", async () => {
    const home = process.env.HOME;
    process.env.HOME = dir;
    try {
      assert.equal((await tab("/file ~/rep")).text, "/file ~/report-2025.pdf");
    } finally {
      process.env.HOME = home;
    }
  });

  it("Tab elsewhere in the composer still changes pane", () => {
    assert.deepEqual(routeKey(composing("hello"), "", { tab: true }), [{ type: "focusNext" }]);
  });
});
