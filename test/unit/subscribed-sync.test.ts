import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startMemoryStack } from "../helpers/memory-stack.js";
import { waitFor } from "../helpers/stack.js";

/** Longer than any first login's settle sync (settleMs ≤ the 1 s device cache, plus 250 ms). */
const PAST_SETTLE_MS = 1600;
/** The confirmation wait of the second test's client (5 s by default). */
const CONFIRM_MS = 400;
/** How long the test watches for the message to arrive some other way before the subscription lands. */
const WATCH_MS = 600;

/**
 * A listening client syncs after its first login, but its subscription may take effect only
 * later (a SUB socket still connecting, a busy balancer): a message stored and published in
 * between passed it by, and waited for the next message or reconnect. The balancer tells a
 * subscriber when it took the subscription (SUBSCRIBED_FRAME, core/protocol/broker.ts), and a
 * listening client syncs then.
 */
describe("a listening client's subscription", () => {
  it("gets what was published before the balancer took it, by the sync when it is taken", async () => {
    const syncs: number[] = [];
    const stack = await startMemoryStack({
      servers: 1,
      metrics: () => ({
        request: (type) => {
          if (type === "sync") syncs.push(Date.now());
        },
        stored() {},
        published() {},
      }),
    });
    try {
      const bob = await stack.client("bob");
      await bob.login();
      const alice = await stack.client("alice");
      const arrived: string[] = [];
      alice.on((e) => {
        if (e.type === "message") arrived.push(e.message.text);
      });
      const release = stack.hub.holdSubscriptions();
      await alice.goLive();
      // Any sync of the first login's (the settle sync) is over before the message is sent.
      await new Promise((r) => setTimeout(r, PAST_SETTLE_MS));
      const before = syncs.length;
      await bob.send({ user: "alice" }, "before the subscription");
      // The race is there: stored and published, yet nothing brings it to alice.
      await new Promise((r) => setTimeout(r, WATCH_MS));
      assert.deepEqual(arrived, [], "the message reached alice before her subscription was taken");
      assert.equal(syncs.length, before, "something else made alice sync");
      release();
      await waitFor("the message at alice's listening client", () => arrived.length > 0, 10_000);
      assert.deepEqual(arrived, ["before the subscription"]);
      assert.ok(syncs.length > before, "it came with a sync");
    } finally {
      await stack.stop();
    }
  });

  it("unconfirmed, makes the client log in again and subscribe afresh; once confirmed, it stops", async () => {
    const logins: number[] = [];
    const stack = await startMemoryStack({
      servers: 1,
      metrics: () => ({
        request: (type) => {
          if (type === "login") logins.push(Date.now());
        },
        stored() {},
        published() {},
      }),
    });
    try {
      const bob = await stack.client("bob");
      await bob.login();
      const alice = await stack.client("alice", { subscribeConfirmMs: CONFIRM_MS });
      const arrived: string[] = [];
      alice.on((e) => {
        if (e.type === "message") arrived.push(e.message.text);
      });
      // The balancer takes nothing (as one that refuses a topic from before tagged topics).
      const release = stack.hub.holdSubscriptions();
      const before = logins.length;
      await alice.goLive();
      await waitFor("alice logs in again", () => logins.length >= before + 2, 10_000);
      // Backing off: the next try waits twice as long, so at most one more within one wait.
      await new Promise((r) => setTimeout(r, CONFIRM_MS));
      assert.ok(logins.length <= before + 3, `${logins.length - before} logins within 2 waits`);
      // The balancer takes the subscription (its fresh one among them): confirmed, no more logins.
      release();
      await bob.send({ user: "alice" }, "live again");
      await waitFor("the message at alice's listening client", () => arrived.includes("live again"), 10_000);
      const settled = logins.length;
      await new Promise((r) => setTimeout(r, CONFIRM_MS * 5));
      assert.equal(logins.length, settled, "alice went on logging in after the confirmation");
    } finally {
      await stack.stop();
    }
  });
});
