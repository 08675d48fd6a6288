import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openItem } from "../../core/client/open.js";
import { Sealer } from "../../core/crypto/envelope.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { uuidv7 } from "../../core/protocol/ids.js";

// The sealed envelope and the opened message are built field by field (no object spread, for
// speed): what goes on the wire, into the cache and into `--json` keeps its fields and their order.
describe("the shape of sealed envelopes and opened messages", () => {
  const alice = generateIdentity("alice");
  const bob = generateIdentity("bob");
  const sa = new Sealer(alice);
  const sb = new Sealer(bob);
  const input = (to: string | null, group: string | null) => ({
    id: uuidv7(),
    device: "d1",
    to,
    group,
    seq: 7,
    sentAt: new Date().toISOString(),
    text: "hello",
    recipients: [{ name: "bob", keys: bob.publicKeys }],
  });

  it("seals a 1:1 envelope (v3) and group envelopes (v2, v4) with the fields in their order", () => {
    const v3 = sa.seal(input("bob", null));
    assert.deepEqual(Object.keys(v3), [
      "v",
      "suite",
      "id",
      "from",
      "device",
      "to",
      "group",
      "seq",
      "sentAt",
      "fromKey",
      "toKey",
      "nonce",
      "ct",
      "kc",
      "keys",
    ]);
    const v2 = sa.seal({ ...input(null, "team"), version: 2 });
    assert.deepEqual(Object.keys(v2), [
      "v",
      "suite",
      "id",
      "from",
      "device",
      "to",
      "group",
      "seq",
      "sentAt",
      "nonce",
      "ct",
      "kc",
      "keys",
      "sig",
    ]);
    const v4 = sa.seal({ ...input(null, "team"), version: 4 });
    assert.deepEqual(Object.keys(v4), [...Object.keys(v2), "batch"]);
    assert.deepEqual(Object.keys((v4 as { batch: object }).batch), ["size", "index", "path"]);
    // Positive control: each opens for the recipient.
    assert.deepEqual(sb.open(v3, alice.publicKeys), { ok: true, text: "hello" });
    assert.deepEqual(sb.open(v2, alice.publicKeys), { ok: true, text: "hello" });
    assert.deepEqual(sb.open(v4, alice.publicKeys), { ok: true, text: "hello" });
  });

  it("opens a message with its fields in their order, extra fields last", () => {
    const contact = {
      name: "alice",
      keys: alice.publicKeys,
      pinnedAt: "",
      pending: null,
      verified: false,
      verifiedKeys: null,
    };
    const ctx = { me: "bob", sealers: [sb], contact: () => contact, keysOf: () => null };
    const replyTo = uuidv7();
    const env = sa.seal({ ...input("bob", null), extra: { replyTo: replyTo } });
    const item = { cursor: "5", serverTime: new Date().toISOString(), envelope: env };
    const o = openItem(item, ctx);
    assert.equal(o.message.verified, true, o.message.problem ?? "");
    assert.equal(o.message.replyTo, replyTo);
    assert.deepEqual(Object.keys(o.message), [
      "id",
      "conv",
      "from",
      "to",
      "group",
      "sentAt",
      "serverTime",
      "cursor",
      "seq",
      "device",
      "text",
      "verified",
      "problem",
      "replyTo",
    ]);
    // A message that does not open has the same fields, without the extra ones.
    assert.equal(env.v, 3);
    const kc = (env as { kc: string }).kc;
    const forgedKc = kc.replace(/^./, (c: string) => (c === "A" ? "B" : "A"));
    const forged = openItem({ ...item, envelope: { ...env, kc: forgedKc } as typeof env }, ctx);
    assert.equal(forged.message.verified, false);
    assert.deepEqual(Object.keys(forged.message), Object.keys(o.message).slice(0, -1));
  });
});
