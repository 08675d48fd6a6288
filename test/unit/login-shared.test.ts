import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { silentLogger } from "../../core/logger.js";
import { ChatServer } from "../../server/server.js";
import { SqliteStore } from "../../server/store/sqlite.js";
import { startMemoryStack, TEST_SECRET } from "../helpers/memory-stack.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("log-in shared by concurrent callers", () => {
  it("a caller with a later deadline is not failed by the timeout of the caller that started the log-in", async () => {
    const stack = await startMemoryStack({ servers: 1 });
    try {
      const alice = await stack.client("alice");
      // No server for a while: the balancer answers "unavailable" and the log-in keeps trying.
      await stack.servers.shift()!.stop();
      const outcome = (p: Promise<void>) =>
        p.then(
          () => "logged in",
          (err: { code?: string; message?: string }) =>
            `${err.code}${err.code === "timeout" ? "" : `: ${err.message}`}`,
        );
      const short = outcome(alice.login({ timeoutMs: 600 }));
      await sleep(100);
      const t0 = Date.now();
      const long = outcome(alice.login({ timeoutMs: 10_000 })).then((r) => `${r} after ${Date.now() - t0}`);
      assert.equal(await short, "timeout", "positive control: the first caller's own deadline passes");
      // A server stopping closes its store: the one that comes back opens the database again.
      const store = new SqliteStore(join(stack.dir, "store.db"));
      await store.init();
      stack.servers.push(
        await ChatServer.start({
          transport: stack.hub.workerTransport(),
          endpoints: ["memory://hub"],
          store,
          secret: TEST_SECRET,
          log: silentLogger,
          id: "s-late",
        }),
      );
      assert.match(await long, /^logged in/);
    } finally {
      await stack.stop();
    }
  });
});
