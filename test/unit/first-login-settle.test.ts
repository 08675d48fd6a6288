import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Dispatcher } from "../../balancer/dispatch.js";
import { Authority } from "../../server/auth.js";
import { startMemoryStack, TEST_SECRET } from "../helpers/memory-stack.js";
import { waitFor } from "../helpers/stack.js";

/**
 * The production dispatch rules, except that while `to` names a live server every request goes
 * there: the balancer packs requests on one server, and the race below needs two.
 */
class SteeredDispatcher extends Dispatcher {
  to: string | null = null;

  override pick(client?: string, now = 0): string | null {
    const picked = super.pick(client, now);
    // The memory hub names a server at the balancer by its id and a serial (`s1#2`).
    const target = this.live().find((w) => w.id.startsWith(`${this.to}#`));
    if (picked === null || !target || picked === target.id) return picked;
    this.done(picked);
    target.inFlight++;
    return target.id;
  }
}

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
    const steer = new SteeredDispatcher(3000);
    const stack = await startMemoryStack({
      servers: 2,
      metrics: (server) => ({
        request: (type) => took.push({ server, type }),
        stored() {},
        published() {},
      }),
      onPublish: (server, topic) => published.push({ server, topic }),
      dispatcher: steer,
    });
    try {
      const alice = await stack.client("alice");
      const arrived = new Set<string>();
      alice.on((e) => {
        if (e.type === "message") arrived.add(e.message.text);
      });
      const sender = await stack.client("sender");
      await sender.login();
      // A send through each server (each reads alice's devices, none yet, into its cache).
      const servers = ["s0", "s1"];
      for (const server of servers) {
        steer.to = server;
        took.length = 0;
        await sender.send({ user: "alice" }, `warm ${server}`);
        assert.deepEqual(
          took.filter((t) => t.type === "send.many").map((t) => t.server),
          [server],
          "the steered server took the send",
        );
      }
      // Every server's cached list of alice's devices (none yet) is fresh: read by a send just now.
      await new Promise((r) => setTimeout(r, 1100));
      for (const server of servers) {
        steer.to = server;
        await sender.send({ user: "alice" }, `fresh cache ${server}`);
      }

      took.length = 0;
      published.length = 0;
      steer.to = "s0";
      await alice.goLive();
      const loginAt = took.find((t) => t.type === "login")?.server;
      assert.equal(loginAt, "s0", "alice logged in at s0");
      // One message, through the server that did not take her login, and nothing after it (a
      // later delivery naming it as its predecessor would show the gap and make her sync).
      const stale = "s1";
      steer.to = stale;
      await sender.send({ user: "alice" }, "meanwhile");
      // Her settle sync goes wherever the production rules send it.
      steer.to = null;
      // The race is there: that server published to alice's device-less topics only, so her
      // client was not rung on its own topic for the message.
      const auth = new Authority(TEST_SECRET);
      const deviceless = new Set([
        ...auth.deliveryTopics("alice", ["-"]),
        ...auth.deliveryTopics("alice", ["-"], true),
      ]);
      assert.ok(
        published.some((p) => p.server === stale && deviceless.has(p.topic)),
        `server ${stale} published from a list without alice's new device`,
      );
      await waitFor("the message at alice's listening client", () => arrived.has("meanwhile"), 10_000).catch(
        (err) => {
          throw new Error(`${(err as Error).message}; got: ${[...arrived].join(", ")}`);
        },
      );
      // Everything from before her login came with her first sync.
      for (const server of servers) assert.ok(arrived.has(`fresh cache ${server}`));
    } finally {
      await stack.stop();
    }
  });
});
