import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { profilePaths, saveIdentity } from "../../core/client/profile.js";
import { type IdentitySecrets, identityFromSecrets } from "../../core/crypto/keys.js";
import { MAX_V1_RECIPIENTS } from "../../core/protocol/limits.js";
import { type Envelope, envelopeSchema } from "../../core/protocol/schema.js";
import { namesAfter, takePage } from "../../server/paging.js";
import { startMemoryStack } from "../helpers/memory-stack.js";

const fixture = JSON.parse(
  readFileSync(new URL("../fixtures/envelope-v1.json", import.meta.url), "utf8"),
) as {
  identities: Record<string, IdentitySecrets>;
  envelopes: { group: unknown; direct: unknown };
};

describe("the service with both envelope versions", () => {
  it("old-format (v1) envelopes from an older client are acknowledged, kept whole and open for everyone", async () => {
    const stack = await startMemoryStack();
    try {
      // Profiles with the keys the fixture envelopes were sealed with (by the v1 code).
      const clients = [];
      for (const name of ["alice", "bob", "carol"]) {
        const paths = profilePaths(join(stack.dir, "homes", name), name);
        saveIdentity(
          paths,
          { identity: identityFromSecrets(name, fixture.identities[name]!), device: "0123456789abcdef" },
          paths.identity,
        );
        clients.push(await stack.client(name));
      }
      const [alice, bob, carol] = clients as [(typeof clients)[0], (typeof clients)[0], (typeof clients)[0]];
      for (const c of clients) await c.login();
      await alice.groupCreate("team", ["bob", "carol"]);
      await bob.groupAnswer("team", "accept");
      await carol.groupAnswer("team", "accept");
      const group = envelopeSchema.parse(fixture.envelopes.group);
      const direct = envelopeSchema.parse(fixture.envelopes.direct);
      for (const envelope of [group, direct]) {
        const ack = await alice.request("send", { envelope });
        assert.equal(ack.duplicate, false);
      }
      const page = await bob.request("sync", { after: null, limit: 10 });
      const stored = page.items.map((i) => i.envelope);
      assert.deepEqual(
        stored.map((e) => [e.v, e.keys.length]),
        [
          [1, 3],
          [1, 2],
        ],
        "v1 copies keep every key: their signature covers them",
      );
      await bob.sync();
      await carol.sync();
      assert.deepEqual(
        bob.cache.history("g:team", 10).map((m) => [m.text, m.verified]),
        [["sealed in the v1 format", true]],
      );
      assert.deepEqual(
        bob.cache.history("u:alice", 10).map((m) => [m.text, m.verified]),
        [["a v1 direct message", true]],
      );
      assert.deepEqual(
        carol.cache.history("g:team", 10).map((m) => m.verified),
        [true],
      );
    } finally {
      await stack.stop();
    }
  });

  it("refuses new v1 envelopes for many recipients (quadratic storage) and v2/v3 wrapped keys of the wrong size", async () => {
    const stack = await startMemoryStack();
    try {
      const alice = await stack.client("alice");
      await alice.login();
      const v1 = envelopeSchema.parse(fixture.envelopes.group) as Extract<Envelope, { v: 1 }>;
      const padded = {
        ...v1,
        from: "alice",
        keys: Array.from({ length: MAX_V1_RECIPIENTS + 1 }, (_, i) => ({ to: `m${i}`, wk: v1.keys[0]!.wk })),
      };
      await assert.rejects(alice.request("send", { envelope: padded }), { code: "too_large" });
      // A v3 (1:1) envelope from the current client, then one of its wrapped keys bloated.
      const sent = await alice.send({ user: "alice" }, "note to self");
      const mine = (await alice.request("sync", { after: null, limit: 10 })).items.find(
        (i) => i.envelope.id === sent.id,
      )!.envelope;
      assert.equal(mine.v, 3);
      const bloated = {
        ...mine,
        id: "0192a6b0-0000-7000-8000-0000000000ff",
        keys: [{ to: "alice", wk: "A".repeat(4000) }],
      };
      await assert.rejects(alice.request("send", { envelope: bloated }), { code: "bad_request" });
    } finally {
      await stack.stop();
    }
  });
});

describe("paging helpers", () => {
  it("take entries until the byte or count budget, at least one, and say whether more are left", async () => {
    const entries = ["a", "b", "c", "d"].map((name) => ({ name, pad: "x".repeat(100) }));
    const all = await takePage(entries, (e) => JSON.stringify(e), 10_000, 10);
    assert.deepEqual([all.parts.length, all.more], [4, false]);
    const bytes = await takePage(entries, (e) => JSON.stringify(e), 250, 10);
    assert.deepEqual([bytes.parts.length, bytes.more], [2, true]);
    const one = await takePage(entries, (e) => JSON.stringify(e), 10, 10);
    assert.deepEqual([one.parts.length, one.more], [1, true], "a large entry still comes alone");
    const count = await takePage(entries, (e) => JSON.stringify(e), 10_000, 3);
    assert.deepEqual([count.parts.length, count.more], [3, true]);
    assert.deepEqual(
      namesAfter([{ name: "c" }, { name: "a" }, { name: "b" }], "a").map((e) => e.name),
      ["b", "c"],
    );
  });
});
