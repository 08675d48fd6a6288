import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Cache } from "../../core/client/cache.js";
import { ChatClient } from "../../core/client/client.js";
import {
  ensureIdentity,
  type LoadedIdentity,
  newDeviceId,
  profilePaths,
  saveIdentity,
} from "../../core/client/profile.js";
import { verifyHistory } from "../../core/client/verify.js";
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

  /** A client for an identity in a home of its own (a rotated profile, a restored one). */
  function clientFor(
    stack: Awaited<ReturnType<typeof startMemoryStack>>,
    identity: LoadedIdentity,
    home: string,
  ) {
    const paths = profilePaths(join(stack.dir, home), identity.identity.name);
    saveIdentity(paths, identity);
    const c = new ChatClient({
      connect: (e) => stack.hub.clientTransport().connect(e),
      endpoints: ["memory://hub"],
      identity,
      cache: new Cache(paths.cache),
      // A rotation is acknowledged only after the servers' revocation cache expired (about 1 s).
      attemptTimeoutMs: 3000,
      requestTimeoutMs: 10_000,
    });
    return c;
  }

  /** A registered user whose client waits long enough for a rotation's acknowledgement. */
  async function patientClient(stack: Awaited<ReturnType<typeof startMemoryStack>>, name: string) {
    const c = clientFor(
      stack,
      ensureIdentity(profilePaths(join(stack.dir, "homes", name), name), name),
      `homes/${name}`,
    );
    await c.register();
    return c;
  }

  it("verifies every message against the sender's key of its time across a rotation; holds what the new key signed until trust", async () => {
    const stack = await startMemoryStack({ servers: 1 });
    const extra: ChatClient[] = [];
    try {
      const alice = await patientClient(stack, "alice");
      extra.push(alice);
      const bob = await stack.client("bob");
      await alice.send({ user: "bob" }, "before one");
      await alice.send({ user: "bob" }, "before two");
      await bob.sync();
      const rotated = await alice.rotateKeys();
      const alice2 = clientFor(stack, rotated, "homes/alice");
      extra.push(alice2);
      await alice2.send({ user: "bob" }, "after the rotation");
      await bob.sync();
      assert.deepEqual(
        bob.cache.history("u:alice", 10).map((m) => m.text),
        ["before one", "before two"],
        "the message signed by the untrusted new key is held, not shown",
      );
      assert.equal(bob.cache.contact("alice")?.pending?.sign, rotated.identity.publicKeys.sign);
      assert.equal(bob.trust("alice"), true);
      const after = bob.cache.history("u:alice", 10);
      assert.deepEqual(
        after.map((m) => [m.text, m.verified]),
        [
          ["before one", true],
          ["before two", true],
          ["after the rotation", true],
        ],
      );
      const report = verifyHistory("u:alice", after, bob.cache.replays("u:alice"));
      assert.equal(report.complete, true, JSON.stringify({ report, after }));

      // A new device of bob's (same keys, empty cache) pins alice's current keys and still
      // verifies her older messages against her older key, through the chain.
      const bobId = ensureIdentity(profilePaths(join(stack.dir, "homes", "bob"), "bob"), "bob");
      const bob2 = clientFor(stack, { ...bobId, device: newDeviceId() }, "bob-restored");
      extra.push(bob2);
      await bob2.sync();
      const restored = bob2.cache.history("u:alice", 10);
      assert.deepEqual(
        restored.map((m) => [m.text, m.verified, m.problem]),
        after.map((m) => [m.text, true, null]),
      );
      // And alice's keys restored on a new device (an empty cache) show her own history, all verified.
      const alice3 = clientFor(stack, { ...rotated, device: newDeviceId() }, "alice-restored");
      extra.push(alice3);
      await alice3.sync();
      const own = alice3.cache.history("u:bob", 10);
      assert.ok(own.length === 3 && own.every((m) => m.verified), JSON.stringify(own));
    } finally {
      for (const c of extra) {
        await c.close();
        await c.cache.close();
      }
      await stack.stop();
    }
  });

  it("accepts an old key only through a chain signed both ways, and only for messages stored before it was replaced", async () => {
    const stack = await startMemoryStack({ servers: 1 });
    const extra: ChatClient[] = [];
    try {
      const alice = await patientClient(stack, "alice");
      extra.push(alice);
      const bob = await stack.client("bob");
      const before = await alice.send({ user: "bob" }, "signed by the first key");
      const oldId = ensureIdentity(profilePaths(join(stack.dir, "homes", "alice"), "alice"), "alice");
      const rotated = await alice.rotateKeys();
      const alice2 = clientFor(stack, rotated, "homes/alice");
      extra.push(alice2);
      // Someone with alice's old private key writes after the rotation (the server stores anything signed).
      await alice2.login();
      const bobKeys = (await alice2.users(["bob"]))[0]!.keys;
      const late = new Sealer(oldId.identity).seal({
        id: uuidv7(),
        device: oldId.device,
        to: "bob",
        group: null,
        seq: 2,
        sentAt: new Date().toISOString(),
        text: "signed by the replaced key, later",
        recipients: [{ name: "bob", keys: bobKeys }],
      });
      await alice2.request("send", { envelope: late });
      await bob.sync();
      const byId = new Map(bob.cache.history("u:alice", 10).map((m) => [m.id, m]));
      assert.equal(
        byId.get(before.id)?.verified,
        true,
        "control: the old key's message from its time verifies",
      );
      assert.equal(byId.get(late.id)?.verified, false);
      assert.match(byId.get(late.id)?.problem ?? "", /already replaced/);

      // The server forges the backward signature of the rotation: a client that pinned the new
      // key must not accept the old one any more.
      const db = new (await import("better-sqlite3")).default(join(stack.dir, "store.db"));
      db.prepare("UPDATE key_history SET sig_new = sig WHERE name = 'alice' AND gen = 1").run();
      db.close();
      const bobId = ensureIdentity(profilePaths(join(stack.dir, "homes", "bob"), "bob"), "bob");
      const bob2 = clientFor(stack, { ...bobId, device: newDeviceId() }, "bob-restored");
      extra.push(bob2);
      await bob2.sync();
      const first = bob2.cache.history("u:alice", 10).find((m) => m.id === before.id);
      assert.equal(first?.verified, false, "an old key not vouched for by the new one is not accepted");
    } finally {
      for (const c of extra) {
        await c.close();
        await c.cache.close();
      }
      await stack.stop();
    }
  });

  it("a rotation whose acknowledgement comes after the client's retry still completes with the new keys", async () => {
    const stack = await startMemoryStack({ servers: 1 });
    try {
      // 500 ms attempts: the service acknowledges a rotation only after its ~1 s revocation cache.
      const alice = await stack.client("alice");
      await alice.login();
      const rotated = await alice.rotateKeys();
      const [bound] = await stack.store.getUsers(["alice"]);
      assert.deepEqual(
        bound?.keys,
        rotated.identity.publicKeys,
        "the keys returned are the ones the service holds",
      );
    } finally {
      await stack.stop();
    }
  });
});
