import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache } from "../../core/client/cache.js";
import { type EphemeralHooks, EphemeralSignals, TYPING_EVERY_MS } from "../../core/client/ephemeral.js";
import { silentLogger } from "../../core/logger.js";
import type { Envelope } from "../../core/protocol/schema.js";

/**
 * The client's typing throttle (issue 17): at most one "typing" per conversation every
 * TYPING_EVERY_MS, except that a message sent there resets it, so the first key typed after a
 * send says "typing" again at once (the other side stopped showing it when the message came).
 */
describe("typing throttle, reset by a send (core/client/ephemeral.ts)", () => {
  function signals(now: () => number) {
    const sent: Array<string | null> = [];
    const hooks: EphemeralHooks = {
      me: "alice",
      online: () => true,
      seal: async () => ({}) as Envelope,
      open: () => null,
      learn: async () => {},
      known: () => true,
      request: async (body) => {
        sent.push(body.to ?? body.group);
        return { relayed: 1 };
      },
      emit: () => {},
      conversations: () => [],
      log: silentLogger,
    };
    const cache = new Cache(":memory:");
    return {
      s: new EphemeralSignals(hooks, cache.presence, { typing: true, presence: false }, now),
      sent,
      cache,
    };
  }

  it("throttles keys, and a send lets the next key announce typing at once, for that conversation only", async () => {
    let t = 1_000_000;
    const { s, sent, cache } = signals(() => t);
    try {
      await s.typing({ user: "bob" });
      t += 500;
      await s.typing({ user: "bob" });
      assert.deepEqual(sent, ["bob"], "positive control: a second key within the throttle sends nothing");
      await s.typing({ group: "team" });
      s.sent({ user: "bob" });
      t += 100;
      await s.typing({ user: "bob" });
      await s.typing({ group: "team" });
      assert.deepEqual(
        sent,
        ["bob", "team", "bob"],
        "bob's conversation announces again; team's stays throttled",
      );
      t += TYPING_EVERY_MS;
      await s.typing({ group: "team" });
      assert.deepEqual(sent, ["bob", "team", "bob", "team"]);
    } finally {
      await cache.close();
    }
  });
});
