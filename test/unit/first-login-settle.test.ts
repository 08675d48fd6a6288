import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatClient } from "../../core/client/client.js";
import { Authority } from "../../server/auth.js";
import { startMemoryStack, TEST_SECRET } from "../helpers/memory-stack.js";
import { waitFor } from "../helpers/stack.js";

/** Most sender clients made to find one on each server (new clients take turns between them). */
const MAX_SENDERS = 8;

/**
 * A device's first login is answered at once (server/devices.ts): for up to a second a server
 * whose device list was cached before still publishes the user's deliveries without the new
 * device's topics. A listening client syncs once that second is over (`settleMs`), so what was
 * stored meanwhile shows then, not only at the next message or reconnect.
 */
describe("a listening device's first login", () => {
  it("gets the messages a server with an older device list stored meanwhile, by the sync after settleMs", async () => {
    /** Which server took each send.many since `mark`. */
    const took: Array<{ server: string; type: string }> = [];
    /** Topics each server published to. */
    const published: Array<{ server: string; topic: string }> = [];
    const stack = await startMemoryStack({
      servers: 2,
      metrics: (server) => ({
        request: (type) => took.push({ server, type }),
        stored() {},
        published() {},
      }),
      onPublish: (server, topic) => published.push({ server, topic }),
    });
    try {
      const alice = await stack.client("alice");
      const arrived = new Set<string>();
      alice.on((e) => {
        if (e.type === "message") arrived.add(e.message.text);
      });
      // Senders until each server took a send of one: clients keep the server of their first request.
      const senders: Array<{ client: ChatClient; server: string }> = [];
      for (let i = 0; i < MAX_SENDERS && new Set(senders.map((s) => s.server)).size < 2; i++) {
        const client = await stack.client(`sender${i}`);
        await client.login();
        took.length = 0;
        await client.send({ user: "alice" }, `warm ${i}`);
        const server = took.find((t) => t.type === "send.many")?.server;
        assert.ok(server, "a server took the send");
        if (!senders.some((s) => s.server === server)) senders.push({ client, server });
      }
      assert.equal(senders.length, 2, "a sender on each server");
      // Every server's cached list of alice's devices (none yet) is fresh: read by a send just now.
      await new Promise((r) => setTimeout(r, 1100));
      for (const s of senders) await s.client.send({ user: "alice" }, `fresh cache ${s.server}`);

      took.length = 0;
      published.length = 0;
      await alice.goLive();
      const loginAt = took.find((t) => t.type === "login")?.server;
      assert.ok(loginAt, "alice logged in");
      // One message, through the server that did not take her login, and nothing after it (a
      // later delivery naming it as its predecessor would show the gap and make her sync).
      const stale = senders.find((s) => s.server !== loginAt)!;
      await stale.client.send({ user: "alice" }, "meanwhile");
      // The race is there: that server published to alice's device-less topics only, so her
      // client was not rung on its own topic for the message.
      const auth = new Authority(TEST_SECRET);
      const deviceless = new Set([
        ...auth.deliveryTopics("alice", ["-"]),
        ...auth.deliveryTopics("alice", ["-"], true),
      ]);
      assert.ok(
        published.some((p) => p.server === stale.server && deviceless.has(p.topic)),
        `server ${stale.server} published from a list without alice's new device`,
      );
      await waitFor("the message at alice's listening client", () => arrived.has("meanwhile"), 10_000).catch(
        (err) => {
          throw new Error(`${(err as Error).message}; got: ${[...arrived].join(", ")}`);
        },
      );
      // Everything from before her login came with her first sync.
      for (const s of senders) assert.ok(arrived.has(`fresh cache ${s.server}`));
    } finally {
      await stack.stop();
    }
  });
});
