/** Each pane on its own, rendered with ink-testing-library from a store (no network). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { render } from "ink-testing-library";
import type { ChatMessage } from "../../core/client/cache.js";
import { parseCommand } from "../../tui/commands.js";
import { Composer } from "../../tui/components/composer.js";
import { HelpOverlay } from "../../tui/components/help-overlay.js";
import { HistoryPane } from "../../tui/components/history-pane.js";
import { ListPane } from "../../tui/components/list-pane.js";
import { SignupScreen } from "../../tui/components/signup-screen.js";
import { StatusBar } from "../../tui/components/status-bar.js";
import { KEY_HELP } from "../../tui/keymap.js";
import { type Action, initialState, update } from "../../tui/state.js";
import { Store, TuiContext } from "../../tui/store.js";
import { plain } from "../helpers/tui-harness.js";

function storeWith(...actions: Action[]): Store {
  const store = new Store(update, initialState());
  store.dispatch({
    type: "session",
    me: "alice",
    fingerprint: "11111 22222 33333 44444 55555",
    endpoint: "tcp://127.0.0.1:5570",
    bell: true,
  });
  for (const a of actions) store.dispatch(a);
  return store;
}

function view(store: Store, node: React.ReactNode) {
  const r = render(
    <TuiContext.Provider value={{ store, dispatch: (a) => store.dispatch(a), onExit: () => () => {} }}>
      {node}
    </TuiContext.Provider>,
  );
  return { ...r, text: () => plain(r.lastFrame() ?? "") };
}

const settle = () => new Promise<void>((r) => setImmediate(r));

let n = 0;
function msg(over: Partial<ChatMessage> & { from: string }): ChatMessage {
  n++;
  return {
    id: `id-${n}`,
    conv: "u:bob",
    to: null,
    group: null,
    text: `hello ${n}`,
    sentAt: "2025-06-02T09:00:00.000Z",
    serverTime: "2025-06-02T09:00:00.000Z",
    cursor: String(n),
    verified: true,
    problem: null,
    seq: n,
    device: "0123456789abcdef",
    ...over,
  };
}

describe("tui panes", () => {
  it("Contacts: names with unread counts, a key warning and the open conversation", () => {
    const store = storeWith(
      { type: "users", names: ["alice", "bob", "carol", "dave"], keyChanged: ["dave"] },
      { type: "convs", convs: [{ conv: "u:carol", last: "2025-06-02T09:00:00.000Z", unread: 3 }] },
      { type: "open", conv: "u:bob" },
    );
    const v = view(store, <ListPane pane="contacts" width={26} height={10} />);
    const t = v.text();
    assert.match(t, /Contacts \(3 new\)/);
    assert.match(t, /▸bob/);
    assert.match(t, /carol\s+\? 3[│║]/);
    assert.match(t, /dave\s+⚠/);
    assert.doesNotMatch(t, /alice/, "you are not your own contact");
    v.unmount();
  });

  it("Contacts: keys that came only from the server are marked ? until /verify", () => {
    const store = storeWith(
      { type: "users", names: ["bob", "carol"], keyChanged: [], verified: ["carol"] },
      { type: "verified", name: "bob", verified: false },
    );
    const v = view(store, <ListPane pane="contacts" width={26} height={6} />);
    assert.match(v.text(), /bob\s+\?[│║]/, "unverified");
    assert.match(v.text(), /carol\s+[│║]/, "verified: no mark");
    const after = view(
      storeWith(
        { type: "users", names: ["bob", "carol"], keyChanged: [], verified: ["carol"] },
        { type: "verified", name: "bob", verified: true },
      ),
      <ListPane pane="contacts" width={26} height={6} />,
    );
    assert.match(after.text(), /bob\s+[│║]/, "after /verify bob");
    after.unmount();
    assert.deepEqual(parseCommand("/verify bob"), { kind: "verify", user: "bob" });
    assert.equal(parseCommand("/verify").kind, "invalid");
    v.unmount();
  });

  it("Groups: group names with unread counts, or a hint when there are none", () => {
    const empty = view(storeWith(), <ListPane pane="groups" width={26} height={6} />);
    assert.match(empty.text(), /none yet \(Ctrl-G\)/);
    empty.unmount();
    const v = view(
      storeWith(
        { type: "groups", names: ["team"] },
        { type: "arrived", messages: [msg({ from: "bob", conv: "g:ops" })] },
      ),
      <ListPane pane="groups" width={26} height={6} />,
    );
    assert.match(v.text(), /#ops\s+1[│║]/);
    assert.match(v.text(), /#team/);
    v.unmount();
  });

  it("History: day separators, sender and time, delivery marks, and a mark on unverified messages", () => {
    const store = storeWith({ type: "open", conv: "u:bob" }, { type: "layout", width: 70, height: 12 });
    store.dispatch({
      type: "history",
      conv: "u:bob",
      complete: true,
      messages: [
        msg({ from: "bob", text: "yesterday's news", serverTime: "2025-06-01T12:00:00.000Z" }),
        msg({ from: "alice", text: "stored one", serverTime: "2025-06-02T12:00:00.000Z" }),
        msg({
          from: "bob",
          text: "",
          verified: false,
          problem: "bad signature: altered or forged",
          serverTime: "2025-06-02T12:01:00.000Z",
        }),
      ],
    });
    store.dispatch({
      type: "sending",
      localId: "local-1",
      conv: "u:bob",
      text: "on its way",
      at: "2025-06-02T12:02:00.000Z",
    });
    const v = view(store, <HistoryPane width={74} height={16} />);
    const t = v.text();
    assert.match(t, /Sunday, 1 Jun 2025/);
    assert.match(t, /Monday, 2 Jun 2025/);
    assert.match(t, /\d\d:\d\d {4}bob {2}yesterday's news/);
    assert.match(t, /✓ {2}alice {2}stored one/);
    assert.match(t, /⚠ {2}bob {2}\[not verified: bad signature: altered or forged\]/);
    assert.match(t, /… {2}alice {2}on its way/);
    v.unmount();
  });

  it("History: a hint when nothing is open, and the key warning of a 1:1 chat", () => {
    const none = view(storeWith(), <HistoryPane width={74} height={10} />);
    assert.match(none.text(), /No conversation open/);
    none.unmount();
    const v = view(
      storeWith({ type: "open", conv: "u:bob" }, { type: "keyChanged", name: "bob" }),
      <HistoryPane width={74} height={10} />,
    );
    assert.match(v.text(), /⚠ bob's keys changed: \/fingerprint bob, then \/trust bob/);
    v.unmount();
  });

  it("Composer: a placeholder naming the conversation, then the text with its lines", async () => {
    const store = storeWith({ type: "open", conv: "g:team" });
    const v = view(store, <Composer width={60} height={5} />);
    assert.match(v.text(), /Message #team \(Enter sends/);
    store.dispatch({ type: "edit", op: { kind: "insert", text: "line one\nline two" } });
    await settle();
    const t = v.text();
    assert.match(t, /line one/);
    assert.match(t, /line two/);
    v.unmount();
  });

  it("Status bar: user, connection state, endpoint, fingerprint, counts, and notices in place of hints", async () => {
    const store = storeWith(
      { type: "connection", state: "online", endpoint: "tcp://127.0.0.1:5570" },
      { type: "arrived", messages: [msg({ from: "bob" })] },
      { type: "stack", note: "started a local stack at tcp://127.0.0.1:5570" },
    );
    const v = view(store, <StatusBar width={160} />);
    assert.match(v.text(), /Ctrl-N: chat/);
    assert.match(
      v.text(),
      /alice ● online tcp:\/\/127\.0\.0\.1:5570 · fp 11111 22222 33333 44444 … · 1 unread · started a local stack/,
    );
    store.dispatch({ type: "connection", state: "offline", endpoint: "tcp://127.0.0.1:5570" });
    store.dispatch({ type: "notice", text: "something went wrong", level: "error" });
    await settle();
    assert.match(v.text(), /something went wrong/);
    assert.match(v.text(), /○ offline/);
    v.unmount();
  });

  it("Help overlay: every key and command", () => {
    // Tall enough for the whole list (it grew by /mute, /unmute); a shorter terminal cuts its end.
    const v = view(storeWith({ type: "help" }), <HelpOverlay width={100} height={44} />);
    const t = v.text();
    for (const [k] of KEY_HELP) assert.ok(t.includes(k), `help lists ${k}`);
    for (const c of ["/msg USER", "/group create", "/group add|remove", "/trust USER", "/help", "/quit"])
      assert.ok(t.includes(c), c);
    v.unmount();
  });

  it("Sign-up screen: the name being typed, profiles here, progress and errors", async () => {
    const store = new Store(update, initialState({ profiles: ["carol"] }));
    store.dispatch({ type: "signup/show", profiles: ["carol"] });
    store.dispatch({ type: "signup/edit", op: { kind: "insert", text: "dan" } });
    const v = view(store, <SignupScreen size={{ columns: 80, rows: 20 }} />);
    assert.match(v.text(), /› dan/);
    assert.match(v.text(), /Profiles on this machine: carol/);
    store.dispatch({ type: "signup/error", text: "the name dan is taken; pick another" });
    await settle();
    assert.match(v.text(), /the name dan is taken/);
    v.unmount();
  });
});
