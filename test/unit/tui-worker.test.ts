/** The TUI worker's parts (tui/worker/) alone: no network, a real cache in memory. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import type { ChatClient } from "../../core/client/client.js";
import { silentLogger } from "../../core/logger.js";
import { type Action, initialState, reduce, type State, update } from "../../tui/state.js";
import type { WorkerContext } from "../../tui/worker/context.js";
import { Feed } from "../../tui/worker/feed.js";
import { HistoryLoader } from "../../tui/worker/history-loader.js";
import { conversationsWithUnread, markRead, readMarkKey, SEEN_MARK } from "../../tui/worker/reads.js";

let n = 0;
function msg(conv: string, from: string): ChatMessage {
  n++;
  return {
    id: `m${n}`,
    conv,
    from,
    to: null,
    group: null,
    text: `text ${n}`,
    sentAt: "2025-06-02T10:00:00.000Z",
    serverTime: `2025-06-02T10:00:${String(n % 60).padStart(2, "0")}.000Z`,
    cursor: String(1000 + n),
    verified: true,
    problem: null,
    seq: n,
    device: "0123456789abcdef",
  };
}

/** A context whose dispatch runs the real reducer and records the actions. */
function context(cache: Cache | null, state: State = initialState()) {
  const actions: Action[] = [];
  let s = reduce(state, { type: "session", me: "alice", fingerprint: "1", endpoint: "x", bell: true });
  const ctx: WorkerContext = {
    dispatch: (a) => {
      actions.push(a);
      s = reduce(s, a);
    },
    state: () => s,
    client: () => (cache ? ({ cache, name: "alice", markRead: () => {} } as unknown as ChatClient) : null),
    notice: () => {},
    track: () => {},
    registered: () => Promise.resolve(),
    stopped: () => false,
    log: silentLogger,
  };
  return { ctx, actions, state: () => s };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

describe("tui worker", () => {
  it("update returns a loadHistory intent when a page is wanted, once, and none otherwise", () => {
    const s0 = reduce(initialState(), { type: "layout", width: 60, height: 10 });
    const opened = update(s0, { type: "open", conv: "u:bob" });
    assert.deepEqual(opened.intents, [{ kind: "loadHistory", conv: "u:bob", want: "newest", have: 0 }]);
    // Opening it again while the page loads asks for nothing more.
    assert.deepEqual(update(opened.state, { type: "open", conv: "u:bob" }).intents, []);
    const many = Array.from({ length: 50 }, () => msg("u:bob", "bob"));
    const loaded = update(opened.state, { type: "history", conv: "u:bob", messages: many, complete: false });
    assert.deepEqual(loaded.intents, []);
    const top = update(loaded.state, { type: "scroll", by: "top" });
    assert.deepEqual(top.intents, [{ kind: "loadHistory", conv: "u:bob", want: "all", have: 50 }]);
    assert.deepEqual(update(loaded.state, { type: "focusNext" }).intents, []);
  });

  it("the feed shows each message once, in one arrived action per tick", async () => {
    const { ctx, actions } = context(null);
    const feed = new Feed(ctx);
    const a = msg("u:bob", "bob");
    const b = msg("u:bob", "bob");
    feed.see([a.id]);
    feed.accept([a, b]);
    feed.accept([b, msg("g:team", "carol")]);
    assert.equal(actions.length, 0, "batched until the next tick");
    await turn();
    const arrived = actions.filter((x) => x.type === "arrived");
    assert.equal(arrived.length, 1);
    assert.deepEqual(
      arrived[0]!.type === "arrived" && arrived[0]!.messages.map((m) => m.id),
      [b.id, `m${n}`],
      "the one seen before and the repeat are left out",
    );
  });

  it("the feed catches up with what another process stored in the shared cache and saves its mark", async () => {
    const cache = new Cache(":memory:");
    try {
      const old = msg("u:bob", "bob");
      cache.addMessages([old], old.cursor);
      const { ctx, actions } = context(cache);
      const feed = new Feed(ctx);
      feed.seed(cache);
      const fresh = [msg("u:bob", "bob"), msg("g:team", "carol")];
      cache.addMessages(fresh, fresh[1]!.cursor);
      feed.catchUp(cache);
      await turn();
      const shown = actions.flatMap((x) => (x.type === "arrived" ? x.messages.map((m) => m.id) : []));
      assert.deepEqual(
        shown,
        fresh.map((m) => m.id),
        "only what came after the seed",
      );
      assert.equal(cache.getState(SEEN_MARK), fresh[1]!.cursor);
      feed.catchUp(cache);
      await turn();
      assert.equal(actions.filter((x) => x.type === "arrived").length, 1, "nothing twice");
    } finally {
      await cache.close();
    }
  });

  it("unread counts come from read marks (or the seen mark), and markRead moves the mark", async () => {
    const cache = new Cache(":memory:");
    try {
      const bob = [msg("u:bob", "bob"), msg("u:bob", "alice"), msg("u:bob", "bob")];
      const team = [msg("g:team", "carol"), msg("g:team", "carol")];
      cache.addMessages([...bob, ...team], team[1]!.cursor);
      cache.setState(SEEN_MARK, bob[0]!.cursor);
      const counts = Object.fromEntries(
        conversationsWithUnread(cache, "alice").map((c) => [c.conv, c.unread]),
      );
      assert.deepEqual(counts, { "u:bob": 1, "g:team": 2 }, "others' messages after the mark; mine not");
      const { ctx, state } = context(cache);
      ctx.dispatch({ type: "open", conv: "g:team" });
      ctx.dispatch({ type: "history", conv: "g:team", messages: team, complete: true });
      markRead(cache, state().history, silentLogger);
      assert.equal(cache.getState(readMarkKey("g:team")), team[1]!.cursor);
      const after = Object.fromEntries(
        conversationsWithUnread(cache, "alice").map((c) => [c.conv, c.unread]),
      );
      assert.equal(after["g:team"], 0);
    } finally {
      await cache.close();
    }
  });

  it("the history loader reads the page an intent asks for, and drops it when the user moved on", async () => {
    const cache = new Cache(":memory:");
    try {
      const all = Array.from({ length: 30 }, () => msg("u:bob", "bob"));
      cache.addMessages(all, all.at(-1)!.cursor);
      const { ctx, actions, state } = context(cache);
      const seen: string[] = [];
      const loader = new HistoryLoader(ctx, { see: (ids) => seen.push(...ids) }, 10);
      assert.equal(loader.limitOf({ kind: "loadHistory", conv: "u:bob", want: "older", have: 10 }), 20);
      const { intents } = update(state(), { type: "open", conv: "u:bob" });
      ctx.dispatch({ type: "open", conv: "u:bob" });
      loader.run(intents[0]!);
      assert.equal(state().history?.items.length, 10, "the newest page at once");
      assert.equal(state().history?.complete, false);
      assert.equal(seen.length, 10, "the feed will not show them again");
      loader.run({ kind: "loadHistory", conv: "u:bob", want: "all", have: 10 });
      ctx.dispatch({ type: "open", conv: "g:team" });
      await turn();
      assert.equal(
        actions.filter((a) => a.type === "history").length,
        1,
        "the page for a conversation no longer open is not dispatched",
      );
      ctx.dispatch({ type: "open", conv: "u:bob" });
      loader.run({ kind: "loadHistory", conv: "u:bob", want: "all", have: 10 });
      await turn();
      assert.equal(state().history?.items.length, 30);
      assert.equal(state().history?.complete, true);
    } finally {
      await cache.close();
    }
  });
});
