import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { copyFor, Sealer, SUITE_V2, SUITE_V4 } from "../../core/crypto/envelope.js";
import { generateIdentity, type Identity, identityFromSecrets } from "../../core/crypto/keys.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { type Envelope, envelopeSchema } from "../../core/protocol/schema.js";

const [alice, bob, carol] = ["alice", "bob", "carol"].map((n) => generateIdentity(n)) as [
  Identity,
  Identity,
  Identity,
];
const members = [alice, bob, carol].map((i) => ({ name: i.name, keys: i.publicKeys }));

function groupMessageOf(text: string, from: Identity, version: 2 | 4): Envelope {
  return new Sealer(from).seal({
    version,
    id: uuidv7(),
    device: "0123456789abcdef",
    to: null,
    group: "team",
    seq: 1,
    sentAt: new Date().toISOString(),
    text,
    recipients: members,
  });
}

// Suites 2 and 4 differ only in how the signature is made (one per envelope, one per batch):
// every property below holds for both. envelope-v4.test.ts tests what the batch adds.
for (const version of [2, 4] as const) {
  describe(`envelope v${version}: each mailbox copy holds only its owner's wrapped key`, () => {
    const groupMessage = (text: string, from: Identity = alice) => groupMessageOf(text, from, version);
    it("every member opens its own one-key copy; the sender opens its own", () => {
      const env = groupMessage("hello team");
      assert.equal(env.v, version);
      assert.equal(env.suite, version === 2 ? SUITE_V2 : SUITE_V4);
      assert.equal(env.keys.length, 3);
      for (const me of [alice, bob, carol]) {
        const copy = copyFor(env, me.name);
        assert.deepEqual(
          copy.keys.map((k) => k.to),
          [me.name],
        );
        assert.ok(envelopeSchema.safeParse(copy).success, "a copy is a valid envelope");
        assert.deepEqual(new Sealer(me).open(copy, alice.publicKeys), { ok: true, text: "hello team" });
      }
    });

    it("one sealer opens copies from senders and key generations in any order (the last sender's pair key is kept)", () => {
      const alice2 = generateIdentity("alice");
      const fromAlice2 = (text: string) =>
        new Sealer(alice2).seal({
          version,
          id: uuidv7(),
          device: "0123456789abcdef",
          to: null,
          group: "team",
          seq: 1,
          sentAt: new Date().toISOString(),
          text,
          recipients: [{ name: "bob", keys: bob.publicKeys }],
        });
      const mine = new Sealer(bob);
      const open = (env: Envelope, keys: Identity["publicKeys"]) => mine.open(copyFor(env, "bob"), keys);
      assert.deepEqual(open(groupMessage("a1"), alice.publicKeys), { ok: true, text: "a1" });
      // The same name with new keys: its pair key is another one.
      assert.deepEqual(open(fromAlice2("a2"), alice2.publicKeys), { ok: true, text: "a2" });
      assert.deepEqual(open(groupMessage("a1 again"), alice.publicKeys), { ok: true, text: "a1 again" });
      assert.deepEqual(open(groupMessage("c1", carol), carol.publicKeys), { ok: true, text: "c1" });
      // A wrapped key made with alice2's keys, signed by alice2, checked against alice's old keys: refused.
      assert.deepEqual(open(fromAlice2("a2 again"), alice.publicKeys), {
        ok: false,
        reason: "bad_signature",
      });
    });

    it("a copy is not for anyone else: copied into carol's mailbox, bob's copy does not open", () => {
      const env = groupMessage("for bob only");
      const bobs = copyFor(env, "bob");
      assert.deepEqual(new Sealer(carol).open(bobs, alice.publicKeys), { ok: false, reason: "not_for_me" });
      // Relabelled for carol, bob's wrapped key does not unwrap with carol's pairwise key.
      const relabelled = { ...bobs, keys: [{ to: "carol", wk: bobs.keys[0]!.wk }] };
      assert.deepEqual(new Sealer(carol).open(relabelled, alice.publicKeys), {
        ok: false,
        reason: "undecryptable",
      });
    });

    it("any change to a signed field fails the signature (positive control: the untouched copy opens)", () => {
      const env = copyFor(groupMessage("signed"), "bob");
      const open = (e: Envelope) => new Sealer(bob).open(e, alice.publicKeys);
      assert.equal(open(env).ok, true);
      const ct = Buffer.from(env.ct, "base64url");
      ct[ct.length - 1]! ^= 1; // the GCM tag itself
      const kc = Buffer.from((env as Extract<Envelope, { v: 2 }>).kc, "base64url");
      kc[0]! ^= 1;
      const altered: Array<[string, Envelope]> = [
        ["ciphertext tag", { ...env, ct: ct.toString("base64url") }],
        ["key commitment", { ...env, kc: kc.toString("base64url") } as Envelope],
        ["group", { ...env, group: "other" } as Envelope],
        ["sender", { ...env, from: "carol" }],
        ["time", { ...env, sentAt: "2020-01-01T00:00:00.000Z" }],
        ["sequence", { ...env, seq: 2 }],
        ["id", { ...env, id: uuidv7() }],
        ["version", { ...env, v: 1 } as Envelope],
      ];
      for (const [what, e] of altered) {
        const r = open(e);
        assert.equal(r.ok, false, `an altered ${what} is detected`);
        if (!r.ok && what !== "version") assert.equal(r.reason, "bad_signature", what);
      }
      // Forged by carol, a member who holds the same kind of keys: her signature is not alice's.
      const forged = copyFor(groupMessage("forged", carol), "bob");
      assert.deepEqual(new Sealer(bob).open({ ...forged, from: "alice" }, alice.publicKeys), {
        ok: false,
        reason: "bad_signature",
      });
    });

    it("a substituted wrapped key (the one part the signature leaves out) never yields another text", () => {
      const open = (e: Envelope) => new Sealer(bob).open(e, alice.publicKeys);
      const target = copyFor(groupMessage("the real text"), "bob");
      const other = copyFor(groupMessage("another text"), "bob");
      // 1. A real wrapped key from alice to bob, taken from another message: it wraps another
      //    content key under another id, so it does not unwrap (the id is its associated data).
      assert.deepEqual(open({ ...target, keys: other.keys }), { ok: false, reason: "undecryptable" });
      // 2. Random bytes of the right size: the wrapping's GCM tag fails.
      const random = Buffer.alloc(60, 7).toString("base64url");
      assert.deepEqual(open({ ...target, keys: [{ to: "bob", wk: random }] }), {
        ok: false,
        reason: "undecryptable",
      });
      // 3. The strongest case: alice's own device re-wraps another content key for bob under this
      //    very id (only alice could), with the signed ciphertext unchanged. The key commitment
      //    and the ciphertext's GCM tag both refuse it.
      const wrap = (Sealer.prototype as unknown as Record<string, unknown>).wrap as (
        this: Sealer,
        cek: Buffer,
        peer: string,
        peerEnc: string,
        aad: Buffer,
      ) => Buffer;
      const rewrapped = wrap
        .call(
          new Sealer(alice),
          Buffer.alloc(32, 1),
          "bob",
          bob.publicKeys.enc,
          Buffer.from(`zmqchat-wrap-v${version}\n${target.id}`),
        )
        .toString("base64url");
      assert.deepEqual(open({ ...target, keys: [{ to: "bob", wk: rewrapped }] }), {
        ok: false,
        reason: "undecryptable",
      });
      assert.deepEqual(open(target), { ok: true, text: "the real text" }, "positive control");
    });
  });
}

describe("envelope v1: envelopes stored in the old format still open and verify", () => {
  const fixture = JSON.parse(readFileSync(new URL("../fixtures/envelope-v1.json", import.meta.url), "utf8"));
  const ids = Object.fromEntries(
    Object.entries(fixture.identities).map(([name, secrets]) => [
      name,
      identityFromSecrets(name, secrets as Parameters<typeof identityFromSecrets>[1]),
    ]),
  ) as Record<string, Identity>;
  const sender = ids.alice!.publicKeys;

  it("a v1 group envelope opens for every member, unchanged by copyFor", () => {
    const env = envelopeSchema.parse(fixture.envelopes.group);
    assert.equal(env.v, 1);
    assert.equal(copyFor(env, "bob"), env, "v1 copies keep every key: their signature covers them");
    for (const name of ["alice", "bob", "carol"]) {
      assert.deepEqual(new Sealer(ids[name]!).open(env, sender), {
        ok: true,
        text: "sealed in the v1 format",
      });
    }
  });

  it("a v1 direct envelope opens; a v1 envelope with a key dropped fails its signature", () => {
    const direct = envelopeSchema.parse(fixture.envelopes.direct);
    assert.deepEqual(new Sealer(ids.bob!).open(direct, sender), { ok: true, text: "a v1 direct message" });
    const group = envelopeSchema.parse(fixture.envelopes.group);
    const stripped = { ...group, keys: group.keys.filter((k) => k.to === "bob") };
    assert.deepEqual(new Sealer(ids.bob!).open(stripped, sender), { ok: false, reason: "bad_signature" });
  });
});
