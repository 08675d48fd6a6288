import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cache } from "../../core/client/cache.js";
import { ChatClient, type ClientEvent } from "../../core/client/client.js";
import { userConv } from "../../core/client/conv.js";
import { loadIdentity, profilePaths } from "../../core/client/profile.js";
import { ZeromqClientTransport } from "../../transports/zeromq/client.js";
import { findBalancerKey, makeCurveKeys } from "../../transports/zeromq/index.js";
import { conversationsWithUnread } from "../../tui/worker/reads.js";
import { zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  text: string;
  verified: boolean;
  status: string | null;
  unread: boolean | null;
}
const parse = (s: string): Line[] =>
  s
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Line);

describe("devices: read state shared across a user's devices (issue #19)", () => {
  let stack: RealStack;
  const desk = () => join(stack.dir, "homes", "alice");
  const laptop = () => join(stack.dir, "homes", "alice-laptop");
  before(async () => {
    stack = await startStack({ servers: 1 });
    for (const u of ["alice", "bob", "carol"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
    const offer = JSON.parse((await stack.cli("alice", ["devices", "add", "--json"])).stdout) as {
      code: string;
    };
    const linked = await stack.cli("alice", ["devices", "link", offer.code], {
      home: laptop(),
      timeoutMs: 60_000,
    });
    assert.equal(linked.code, 0, linked.stderr);
  });
  after(async () => {
    await stack?.stop();
  });

  const ok = async (user: string, args: string[], opts: { home?: string; env?: NodeJS.ProcessEnv } = {}) => {
    const r = await stack.cli(user, args, { ...opts, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  /** `history --json` as a script reads it (marks nothing read). */
  const history = async (home: string) => parse(await ok("alice", ["history", "bob", "--json"], { home }));
  const unreadOf = (lines: Line[]) => Object.fromEntries(lines.map((l) => [l.text, l.unread]));
  /** alice reads her conversation with bob on a device, as a person at a terminal would. */
  const read = (home: string, env?: NodeJS.ProcessEnv) =>
    ok("alice", ["history", "bob", "--mark-read", "--json"], { home, env });

  /** The laptop as a running client (as the TUI holds it), to see what arrives live. */
  const laptopClient = () => {
    const paths = profilePaths(laptop(), "alice");
    const cache = new Cache(paths.cache);
    const device = makeCurveKeys();
    const transport = new ZeromqClientTransport({
      discover: { serverKeyOf: (e) => findBalancerKey(e), keys: () => device },
    });
    const client = new ChatClient({
      connect: (e) => transport.connect(e),
      endpoints: stack.endpoints,
      identity: loadIdentity(paths, "alice"),
      cache,
      attemptTimeoutMs: 1000,
    });
    const events: ClientEvent[] = [];
    client.on((e) => events.push(e));
    return {
      client,
      cache,
      events,
      async close() {
        await client.close();
        await cache.close();
      },
    };
  };

  it("read on one device: the other learns it after being offline and live; own sends are never unread; no second receipt", async () => {
    await ok("bob", ["send", "alice", "one"]);
    await ok("bob", ["send", "alice", "two"]);
    assert.deepEqual(unreadOf(await history(laptop())), { one: true, two: true });
    assert.deepEqual(
      unreadOf(await history(desk())),
      { one: true, two: true },
      "--json alone marks nothing read",
    );

    // Read on the desk while the laptop is away: the laptop learns it when it syncs.
    const shown = parse(await read(desk()));
    assert.deepEqual(unreadOf(shown), { one: true, two: true }, "unread as it was before this read");
    assert.deepEqual(unreadOf(await history(laptop())), { one: false, two: false });
    assert.deepEqual(unreadOf(await history(desk())), { one: false, two: false });
    // bob got one read receipt, from the desk.
    await waitFor(
      "bob sees his messages read",
      async () => parse(await ok("bob", ["history", "alice", "--json"])).every((l) => l.status === "read"),
      20_000,
    );

    // What alice sends from the desk is not unread on the laptop.
    await ok("alice", ["send", "bob", "mine, from the desk"]);
    assert.equal(unreadOf(await history(laptop()))["mine, from the desk"], false);

    // Live: the laptop runs (as the TUI would), bob writes, alice reads on the desk.
    const lap = laptopClient();
    try {
      await lap.client.goLive();
      await lap.client.sync();
      await ok("bob", ["send", "alice", "three, live"]);
      await waitFor(
        "bob's message live on the laptop",
        () => lap.events.some((e) => e.type === "message" && e.message.text === "three, live"),
        20_000,
      );
      const count = () =>
        conversationsWithUnread(lap.cache, "alice").find((c) => c.conv === userConv("bob"))?.unread;
      assert.equal(count(), 1, "the TUI's count: one unread on the laptop");
      await read(desk());
      await waitFor(
        "the laptop told live that bob's conversation was read",
        () => lap.events.some((e) => e.type === "read" && e.convs.includes(userConv("bob"))),
        20_000,
      );
      assert.equal(count(), 0, "the TUI's count follows");
      // The laptop shows the conversation now: it sends no second receipt for what the desk read.
      lap.client.markRead(lap.cache.history(userConv("bob"), 50));
      assert.equal(lap.cache.receipts.waiting(), false, "nothing waits to go to bob");
    } finally {
      await lap.close();
    }
    assert.deepEqual(Object.values(unreadOf(await history(laptop()))), [false, false, false, false]);
  });

  it("with read receipts off the other devices still learn it, and the author is not told", async () => {
    await ok("bob", ["send", "alice", "four, private"]);
    assert.equal(unreadOf(await history(laptop()))["four, private"], true);
    await read(desk(), { ZMQCHAT_READ_RECEIPTS: "false" });
    assert.equal(unreadOf(await history(laptop()))["four, private"], false);
    // Once more after the laptop synced: bob's copy never turns "read".
    await ok("bob", ["sync"]);
    const bobs = parse(await ok("bob", ["history", "alice", "--json"]));
    assert.equal(bobs.find((l) => l.text === "four, private")?.status, "delivered");
  });

  it("a receipt from someone else does not mark alice's messages read on her devices (forged event refused)", async () => {
    await ok("bob", ["send", "alice", "five"]);
    const five = (await history(laptop())).find((l) => l.text === "five")!;
    assert.equal(five.unread, true);
    // carol (or a client posing as any other user) sends alice a signed read receipt naming bob's message.
    const carol = await zeromqClient(stack.dir, "carol", stack.endpoints);
    try {
      await carol.send(
        { user: "alice" },
        "(read receipt)",
        {},
        {
          receipt: { status: "read", group: null, ids: [five.id] },
        },
      );
    } finally {
      await carol.dispose();
    }
    const afterForgery = await history(laptop());
    assert.equal(afterForgery.find((l) => l.id === five.id)?.unread, true, "carol's receipt moved nothing");
    assert.equal((await history(desk())).find((l) => l.id === five.id)?.unread, true);
    // Positive control: the same kind of event from alice's own device does move it.
    await read(desk());
    assert.equal((await history(laptop())).find((l) => l.id === five.id)?.unread, false);
  });
});
