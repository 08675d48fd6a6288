import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startMemoryStack } from "../helpers/memory-stack.js";

describe("client core over the memory transport", () => {
  it("registers, logs in, sends 1:1 and syncs in order", async () => {
    const stack = await startMemoryStack();
    try {
      const alice = await stack.client("alice");
      const bob = await stack.client("bob");
      for (let i = 0; i < 5; i++) await alice.send({ user: "bob" }, `hello ${i}`);
      await bob.send({ user: "alice" }, "hi alice");
      await bob.sync();
      const history = bob.cache.history("u:alice", 100);
      assert.deepEqual(
        history.map((m) => [m.from, m.text, m.verified]),
        [0, 1, 2, 3, 4].map((i) => ["alice", `hello ${i}`, true]).concat([["bob", "hi alice", true]]),
      );
      assert.equal(await bob.sync(), 0, "a second sync finds nothing new");
    } finally {
      await stack.stop();
    }
  });

  it("delivers group messages to every member, sealed for the current members", async () => {
    const stack = await startMemoryStack();
    try {
      const [alice, bob, carol] = [
        await stack.client("alice"),
        await stack.client("bob"),
        await stack.client("carol"),
      ];
      await alice.groupCreate("team", ["bob", "carol"]);
      await bob.groupAnswer("team", "accept");
      await carol.groupAnswer("team", "accept");
      await alice.send({ group: "team" }, "from alice");
      await bob.send({ group: "team" }, "from bob");
      await carol.send({ group: "team" }, "from carol");
      await alice.sync();
      await bob.sync();
      await carol.sync();
      for (const c of [alice, bob, carol]) {
        assert.deepEqual(
          c.cache.history("g:team", 10).map((m) => `${m.from}:${m.text}:${m.verified}`),
          ["alice:from alice:true", "bob:from bob:true", "carol:from carol:true"],
        );
      }
      await assert.rejects(bob.groupChange("add", "team", ["bob"]), { code: "forbidden" });
      await alice.groupChange("remove", "team", ["carol"]);
      await assert.rejects(carol.send({ group: "team" }, "still here?"), { code: "forbidden" });
    } finally {
      await stack.stop();
    }
  });

  it("refuses bad input with clear codes", async () => {
    const stack = await startMemoryStack();
    try {
      const alice = await stack.client("alice");
      await assert.rejects(alice.send({ user: "nobody" }, "hi"), { code: "not_found" });
      await assert.rejects(alice.send({ user: "alice" }, "   "), { code: "usage" });
      await assert.rejects(alice.send({ user: "alice" }, "x".repeat(16 * 1024 + 1)), { code: "too_large" });
      await assert.rejects(alice.send({ group: "nogroup" }, "hi"), { code: "not_found" });
    } finally {
      await stack.stop();
    }
  });
});
