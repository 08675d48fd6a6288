import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkPublicFrame,
  DEFAULT_SERVER_QUOTAS,
  MailboxQuota,
  PUBLIC_FRAME_BYTES,
  RateLimitedError,
  SenderQuota,
  serverQuotasFromEnv,
} from "../../server/limits.js";
import { startMemoryStack } from "../helpers/memory-stack.js";

describe("server quotas (pure)", () => {
  it("charge messages and bytes per sender, refusing with the wait until there is room", () => {
    const q = new SenderQuota({ ...DEFAULT_SERVER_QUOTAS, messagesPerMinute: 3, bytesPerMinute: 6000 });
    for (let i = 0; i < 3; i++) q.charge("alice", 100, 0);
    assert.throws(
      () => q.charge("alice", 100, 0),
      (e) => e instanceof RateLimitedError && e.code === "rate_limited" && e.retryAfterMs === 20_000,
    );
    q.charge("bob", 5000, 0);
    assert.throws(
      () => q.charge("bob", 5000, 0),
      (e) => e instanceof RateLimitedError && /bytes in a minute/.test(e.message),
    );
  });

  it("refuse sessionless requests in frames the balancer does not read whole", () => {
    checkPublicFrame("register", PUBLIC_FRAME_BYTES);
    assert.throws(() => checkPublicFrame("register", PUBLIC_FRAME_BYTES + 1), { code: "too_large" });
  });

  it("read quotas from the environment; refuse nonsense", () => {
    assert.deepEqual(serverQuotasFromEnv({}), DEFAULT_SERVER_QUOTAS);
    assert.equal(serverQuotasFromEnv({ ZMQCHAT_QUOTA_GROUPS_PER_USER: "3" }).groupsPerUser, 3);
    assert.throws(() => serverQuotasFromEnv({ ZMQCHAT_QUOTA_MEMBERS_PER_GROUP: "300" }), /1 to 256/);
    assert.throws(() => serverQuotasFromEnv({ ZMQCHAT_QUOTA_MESSAGES_PER_MINUTE: "-1" }), { code: "usage" });
  });
});

describe("server quotas through the service (memory transport)", () => {
  it("a sender over its message rate waits out the retry-after within its deadline, or gets rate_limited", async () => {
    const stack = await startMemoryStack({
      servers: 1,
      // 6 a minute: a token every 10 s, so however slowly the six sends below run on a loaded
      // machine, the next token stays seconds away (beyond the short deadline, within the long one).
      quotas: { ...DEFAULT_SERVER_QUOTAS, messagesPerMinute: 6 },
    });
    try {
      const alice = await stack.client("alice");
      await stack.client("bob");
      for (let i = 0; i < 6; i++) await alice.send({ user: "bob" }, `m${i}`);
      await assert.rejects(alice.send({ user: "bob" }, "too soon", { timeoutMs: 1500 }), {
        code: "rate_limited",
      });
      const started = Date.now();
      await alice.send({ user: "bob" }, "after the wait", { timeoutMs: 15_000 });
      const waited = Date.now() - started;
      assert.ok(waited >= 300, `the client honoured the retry-after (${waited} ms)`);
    } finally {
      await stack.stop();
    }
  });

  it("members per group (invitations count) and groups per owner are capped: forbidden", async () => {
    const stack = await startMemoryStack({
      servers: 1,
      quotas: { ...DEFAULT_SERVER_QUOTAS, membersPerGroup: 3, groupsPerUser: 2 },
    });
    try {
      const alice = await stack.client("alice");
      for (const n of ["bob", "carol", "dave"]) await stack.client(n);
      await alice.groupCreate("one", ["bob", "carol"]);
      await assert.rejects(alice.groupChange("add", "one", ["dave"]), { code: "forbidden" });
      await assert.rejects(alice.groupCreate("big", ["bob", "carol", "dave"]), { code: "forbidden" });
      await alice.groupCreate("two", []);
      await assert.rejects(alice.groupCreate("three", []), /owns 2 groups/);
      // Re-creating an existing group is not a new one.
      await alice.groupCreate("two", []);
    } finally {
      await stack.stop();
    }
  });

  it("a full mailbox takes no more: the sender is refused (forbidden), other mailboxes are not", async () => {
    const stack = await startMemoryStack({
      servers: 1,
      quotas: { ...DEFAULT_SERVER_QUOTAS, mailboxMessages: 5 },
    });
    try {
      const alice = await stack.client("alice");
      const carol = await stack.client("carol");
      await stack.client("bob");
      for (let i = 0; i < 5; i++) await alice.send({ user: "bob" }, `m${i}`);
      await assert.rejects(alice.send({ user: "bob" }, "one too many"), {
        code: "forbidden",
        message: /the mailbox of bob is full \(5 messages\)/,
      });
      await assert.rejects(carol.send({ user: "bob" }, "me too"), { code: "forbidden" });
      // Positive control: the same sender still reaches a mailbox with room.
      await alice.send({ user: "carol" }, "carol has room");
      assert.equal(await stack.store.mailboxSize("bob"), 5);
    } finally {
      await stack.stop();
    }
  });

  it("mailbox quota: counts known and fresh are judged without the store (reserved copies count), stale ones are asked again", async () => {
    const sizes = new Map([
      ["bob", 3],
      ["carol", 0],
    ]);
    const asked: string[] = [];
    const quota = new MailboxQuota({ ...DEFAULT_SERVER_QUOTAS, mailboxMessages: 5 }, async (o) => {
      asked.push(o);
      return sizes.get(o) ?? 0;
    });
    await quota.check(["bob", "carol"], 1000);
    assert.deepEqual(asked, ["bob", "carol"]);
    // Known now: no store read, and a refusal names only the full one.
    await quota.check(["bob", "carol"], 2000, new Map([["bob", 1]]));
    await assert.rejects(async () => quota.check(["carol", "bob"], 2000, new Map([["bob", 2]])), {
      code: "forbidden",
      message: /the mailbox of bob is full \(5 messages\)/,
    });
    // Copies this server stored count without asking.
    quota.stored(["bob", "bob"]);
    await assert.rejects(async () => quota.check(["bob"], 3000), { code: "forbidden" });
    assert.deepEqual(asked, ["bob", "carol"], "no store read while the counts are fresh");
    // Stale after a minute: asked again (bob's mailbox was emptied meanwhile), and it has room.
    sizes.set("bob", 0);
    await quota.check(["bob", "carol"], 1000 + 61_000);
    assert.deepEqual(asked, ["bob", "carol", "bob", "carol"]);
  });
});
