import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ZmqchatError } from "../../core/errors.js";
import { EphemeralRelay, SIGNAL_RULE } from "../../server/ephemeral.js";
import type { Store } from "../../server/store/store.js";

/** The relay alone (server/ephemeral.ts): a fake store and topics, a clock that stands still. */
function relay() {
  const published: Array<{ topic: string; frame: string }> = [];
  const users = new Set(["alice", "bob", "carol", "mallory"]);
  const store = {
    getUsers: async (names: string[]) =>
      names.filter((n) => users.has(n)).map((name) => ({ name, keys: { sign: "", enc: "" } })),
    getGroup: async (name: string) =>
      name === "team" ? { name, owner: "alice", members: ["alice", "bob", "carol"], invited: [] } : null,
  } as unknown as Store;
  const topics = async (n: string) => [`topic-of-${n}`];
  const r = new EphemeralRelay(
    store,
    topics,
    { publish: (topic, f) => published.push({ topic, frame: Buffer.from(f).toString() }) },
    SIGNAL_RULE,
    () => 1_000_000,
  );
  return { r, published };
}

describe("EphemeralRelay", () => {
  it("relays to the peer or the other members, with the session's name as from, never back to the sender", async () => {
    const { r, published } = relay();
    assert.deepEqual(await r.relay({ to: "bob", group: null, sealed: "abc" }, "alice"), { relayed: 1 });
    assert.deepEqual(await r.relay({ to: null, group: "team", sealed: "abc" }, "bob"), { relayed: 2 });
    assert.deepEqual(
      published.map((p) => p.topic),
      ["topic-of-bob", "topic-of-alice", "topic-of-carol"],
    );
    assert.deepEqual(JSON.parse(published[0]!.frame), {
      v: 1,
      type: "signal",
      from: "alice",
      to: "bob",
      group: null,
      sealed: "abc",
    });
  });

  it("refuses a non-member's group signal, an unknown user, and a signal with both or neither target", async () => {
    const { r, published } = relay();
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
        return "ok";
      } catch (err) {
        return (err as ZmqchatError).code;
      }
    };
    assert.equal(await code(r.relay({ to: null, group: "team", sealed: "x" }, "mallory")), "forbidden");
    assert.equal(await code(r.relay({ to: "nobody", group: null, sealed: "x" }, "alice")), "not_found");
    assert.equal(await code(r.relay({ to: "bob", group: "team", sealed: "x" }, "alice")), "bad_request");
    assert.equal(await code(r.relay({ to: null, group: null, sealed: "x" }, "alice")), "bad_request");
    assert.equal(published.length, 0);
  });

  it("a flood is cut at the sender's budget; another sender is unaffected", async () => {
    const { r } = relay();
    let relayed = 0;
    let refused: ZmqchatError | null = null;
    // Bounded: at most twice the budget, with the clock standing still.
    for (let i = 0; i < SIGNAL_RULE.burst * 2 && !refused; i++) {
      try {
        await r.relay({ to: "bob", group: null, sealed: "x" }, "mallory");
        relayed++;
      } catch (err) {
        refused = err as ZmqchatError;
      }
    }
    assert.equal(relayed, SIGNAL_RULE.burst);
    assert.ok(refused instanceof ZmqchatError);
    assert.equal(refused.code, "rate_limited");
    assert.deepEqual(await r.relay({ to: "bob", group: null, sealed: "x" }, "alice"), { relayed: 1 });
    // A group signal costs one per recipient.
    const { r: r2 } = relay();
    for (let i = 0; i < SIGNAL_RULE.burst / 2; i++)
      await r2.relay({ to: null, group: "team", sealed: "x" }, "carol");
    await assert.rejects(r2.relay({ to: null, group: "team", sealed: "x" }, "carol"), /too many/);
  });
});
