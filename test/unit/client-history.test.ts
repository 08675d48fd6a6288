import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ensureIdentity, profilePaths } from "../../core/client/profile.js";
import { Sealer } from "../../core/crypto/envelope.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { startMemoryStack } from "../helpers/memory-stack.js";

describe("client: what history shows is true", () => {
  it("flags a signed message whose sentAt is not an ISO 8601 time, and keeps ISO ones", async () => {
    const stack = await startMemoryStack({ servers: 1 });
    try {
      const alice = await stack.client("alice");
      const bob = await stack.client("bob");
      await bob.login();
      await alice.users(["bob"]);
      const me = ensureIdentity(profilePaths(join(stack.dir, "homes", "alice"), "alice"), "alice");
      const sealer = new Sealer(me.identity);
      const bobKeys = (await alice.users(["bob"]))[0]!.keys;
      const sealed = (sentAt: string, text: string) =>
        sealer.seal({
          id: uuidv7(),
          device: me.device,
          to: "bob",
          group: null,
          seq: 1,
          sentAt,
          text,
          recipients: [{ name: "bob", keys: bobKeys }],
        });
      const bad = sealed("\x1b]0;pwned\x07 yesterday", "timed badly");
      const good = sealed(new Date().toISOString(), "timed well");
      await alice.request("send", { envelope: bad });
      await alice.request("send", { envelope: good });
      await bob.sync();
      const [first, second] = bob.cache.history("u:alice", 10);
      assert.equal(first?.id, bad.id);
      assert.equal(first?.verified, false);
      assert.match(first?.problem ?? "", /ISO 8601/);
      assert.equal(first?.text, "", "a flagged message keeps no text");
      assert.equal(second?.verified, true, "control: the same sender's well-timed message verifies");
      assert.equal(second?.text, "timed well");
    } finally {
      await stack.stop();
    }
  });
});
