import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache } from "../../core/client/cache.js";
import type { ChatClient } from "../../core/client/client.js";
import { silentLogger } from "../../core/logger.js";
import { parseCommand } from "../../tui/commands.js";
import { type Action, initialState, reduce, type State } from "../../tui/state.js";
import { runCommand } from "../../tui/worker/commands.js";
import type { WorkerContext } from "../../tui/worker/context.js";

/** `/mute` and `/unmute` (issue 17): the open conversation, in the profile's mute list `zmqchat mute` shares. */
describe("TUI /mute and /unmute", () => {
  function context(cache: Cache, open: string | null) {
    let s: State = reduce(initialState(), {
      type: "session",
      me: "alice",
      fingerprint: "1",
      endpoint: "x",
      bell: true,
    });
    if (open) s = reduce(s, { type: "open", conv: open } as Action);
    const notices: Array<[string, string | undefined]> = [];
    const ctx = {
      dispatch: (a: Action) => {
        s = reduce(s, a);
      },
      state: () => s,
      client: () => ({ cache, name: "alice" }) as unknown as ChatClient,
      notice: (text: string, level?: string) => notices.push([text, level]),
      track: () => {},
      registered: () => Promise.reject(new Error("a local command waits for nothing")),
      stopped: () => false,
      log: silentLogger,
    } as unknown as WorkerContext;
    return { ctx, notices };
  }
  const deps = { send: () => {}, refreshLists: async () => {} };

  it("parses, and refuses arguments (others are muted with zmqchat mute)", () => {
    assert.deepEqual(parseCommand("/mute"), { kind: "mute", on: true });
    assert.deepEqual(parseCommand("/unmute"), { kind: "mute", on: false });
    assert.equal(parseCommand("/mute bob").kind, "invalid");
  });

  it("mutes and unmutes the open conversation in the cache's mute list, offline", async () => {
    const cache = new Cache(":memory:");
    try {
      const { ctx, notices } = context(cache, "g:team");
      assert.equal(cache.mutes.muted("g:team"), false, "positive control: not muted before");
      await runCommand(ctx, deps, { kind: "mute", on: true });
      assert.equal(cache.mutes.muted("g:team"), true);
      assert.match(notices.at(-1)![0], /^muted #team/);
      await runCommand(ctx, deps, { kind: "mute", on: false });
      assert.equal(cache.mutes.muted("g:team"), false);
      assert.match(notices.at(-1)![0], /^unmuted #team/);
      const none = context(cache, null);
      await runCommand(none.ctx, deps, { kind: "mute", on: true });
      assert.equal(none.notices.at(-1)![1], "error", "no open conversation: says so");
      assert.deepEqual(cache.mutes.list(), []);
    } finally {
      await cache.close();
    }
  });
});
