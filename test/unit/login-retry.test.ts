import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { SqliteStore } from "../../server/store/sqlite.js";
import { startMemoryStack } from "../helpers/memory-stack.js";

/**
 * A server that uses up a login challenge and dies before answering leaves the client's retry
 * of that same login "already used" (seen as a lost send when a server was SIGKILLed mid-stream).
 * The client must then log in with a fresh challenge; a replay must still be refused.
 */
describe("login after a challenge was used up by a server that never answered", () => {
  it("logs in with a fresh challenge, and the used one stays refused", async () => {
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), "zmqchat-login-")), "store.db"));
    let claims = 0;
    let stolen = 0;
    const claimOnce = store.claimOnce.bind(store);
    // The first login's challenge is claimed as if another server had taken it and died.
    store.claimOnce = async (token: string, expires: number) => {
      claims++;
      if (stolen === 0) {
        stolen++;
        assert.equal(await claimOnce(token, expires), true);
      }
      return claimOnce(token, expires);
    };
    const stack = await startMemoryStack({ servers: 1, store });
    try {
      const alice = await stack.client("alice");
      await stack.client("bob");
      await alice.send({ user: "bob" }, "after a lost login");
      assert.equal(stolen, 1, "the fault was injected");
      assert.ok(claims >= 2, `a second challenge was claimed (${claims} claims)`);
    } finally {
      await stack.stop();
    }
  });
});
