import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startMemoryStack } from "../helpers/memory-stack.js";
import { KEYS, startTui } from "../helpers/tui-harness.js";

describe("tui smoke", () => {
  it("renders", async () => {
    const stack = await startMemoryStack();
    const bob = await stack.client("bob");
    const home = join(stack.dir, "tui-home");
    const t = await startTui(stack, { home, user: "alice" });
    try {
      await t.waitFor("online");
      await t.press(KEYS.ctrlN);
      await t.type("bob");
      await t.press(KEYS.enter);
      await t.waitFor("Message bob");
      await t.type("hello bob");
      await t.press(KEYS.enter);
      const f = await t.waitFor("✓ alice");
      console.log(f);
      await bob.sync();
      assert.equal(bob.cache.history("u:alice", 10)[0]?.text, "hello bob");
    } finally {
      await t.close();
      await stack.stop();
    }
  });
});
