import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClientEvent } from "../../core/client/client.js";
import { startMemoryStack } from "../helpers/memory-stack.js";

/**
 * Two processes of one profile share its cache and cursor (two `listen`s, a TUI and a `listen`).
 * A message one of them stored, which the other missed live (its subscription was not in place
 * yet), is behind the shared cursor when the other syncs: the sync finds nothing new, so it must
 * tell its views the message is stored, or a second `listen` never prints it. Seen as a CI
 * failure of listen-events.test.ts once first logins stopped waiting a second.
 */
describe("a sync of one process of a profile, after another stored what it missed", () => {
  it("tells its listeners what the other stored (already_stored), once", async () => {
    const stack = await startMemoryStack({ servers: 1 });
    try {
      const alice = await stack.client("alice");
      const bob = await stack.client("bob");
      await alice.send({ user: "bob" }, "stored by the first");
      assert.equal(await bob.sync(), 1);
      // The second process of bob's profile: same home, same cache; not yet logged in when the
      // message went out, so nothing was rung on its subscription.
      const second = await stack.client("bob", { register: false });
      const events: ClientEvent[] = [];
      second.on((e) => events.push(e));
      assert.equal(await second.sync(), 0, "nothing new for the second: the shared cursor is past it");
      const told = events.filter((e) => e.type === "already_stored");
      assert.deepEqual(told, [{ type: "already_stored", cursor: second.cache.cursor }]);
      assert.equal(second.cache.after(null, 10).at(-1)?.text, "stored by the first");
      // Told once: a second sync with nothing new says nothing.
      await second.sync();
      assert.equal(events.filter((e) => e.type === "already_stored").length, 1);
    } finally {
      await stack.stop();
    }
  });
});
