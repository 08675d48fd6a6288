import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { copyFor, isDraft, Sealer, SUITE_V4, sealTag } from "../../core/crypto/envelope.js";
import { generateIdentity, type Identity } from "../../core/crypto/keys.js";
import { isEnvelope } from "../../core/protocol/envelope-check.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { type Envelope, envelopeSchema } from "../../core/protocol/schema.js";

type V4 = Extract<Envelope, { v: 4 }>;

const [alice, bob, carol] = ["alice", "bob", "carol"].map((n) => generateIdentity(n)) as [
  Identity,
  Identity,
  Identity,
];
const members = [bob, carol].map((i) => ({ name: i.name, keys: i.publicKeys }));

function draft(sealer: Sealer, text: string, group = "team"): Envelope {
  return sealer.seal({
    id: uuidv7(),
    device: "0123456789abcdef",
    to: null,
    group,
    seq: 1,
    sentAt: new Date().toISOString(),
    text,
    recipients: members,
    draft: true,
  });
}

/** `n` group messages from alice signed as one batch, as bob's mailbox holds them. */
function batch(n: number, owner = "bob"): V4[] {
  const sealer = new Sealer(alice);
  const drafts = Array.from({ length: n }, (_, i) => draft(sealer, `message ${i}`));
  sealer.signBatch(drafts);
  return drafts.map((e) => copyFor(e, owner) as V4);
}

const flip = (b64: string, at = 0) => {
  const b = Buffer.from(b64, "base64url");
  b[at]! ^= 1;
  return b.toString("base64url");
};

describe("envelope v4: one signature for a batch of group messages (Merkle tree, RFC 9162)", () => {
  it("every envelope of a batch opens, alone or together; together they cost one Ed25519 verification", () => {
    const envs = batch(5);
    assert.ok(envs.every((e) => e.v === 4 && e.suite === SUITE_V4 && e.batch.size === 5));
    assert.deepEqual(
      envs.map((e) => e.batch.index),
      [0, 1, 2, 3, 4],
    );
    assert.equal(new Set(envs.map((e) => e.sig)).size, 1, "one signature for the five");
    const together = new Sealer(bob);
    envs.forEach((e, i) => {
      assert.deepEqual(together.open(e, alice.publicKeys), { ok: true, text: `message ${i}` });
    });
    assert.equal(together.signatureChecks, 1);
    // Alone (a fresh cache, as a sync page holding one of them): each verifies by itself.
    for (const e of envs) {
      const alone = new Sealer(bob);
      assert.equal(alone.open(e, alice.publicKeys).ok, true);
      assert.equal(alone.signatureChecks, 1);
    }
    // Carol's copies of a batch open for carol; bob's copy is not for her.
    const carols = new Sealer(carol);
    assert.deepEqual(carols.open(batch(3, "carol")[1]!, alice.publicKeys), { ok: true, text: "message 1" });
    assert.deepEqual(carols.open(envs[1]!, alice.publicKeys), { ok: false, reason: "not_for_me" });
  });

  it("a changed signed field, place, path or signature fails, also after the batch was verified (positive control first)", () => {
    const envs = batch(6);
    const bobs = new Sealer(bob);
    const open = (e: Envelope) => bobs.open(e, alice.publicKeys);
    assert.equal(open(envs[2]!).ok, true, "positive control: the untouched envelope opens");
    for (const e of envs) assert.equal(open(e).ok, true);
    const checks = bobs.signatureChecks;
    const e = envs[2]!;
    const path = Buffer.from(e.batch.path, "base64url");
    const altered: Array<[string, Envelope]> = [
      ["ciphertext", { ...e, ct: flip(e.ct, 3) }],
      ["key commitment", { ...e, kc: flip(e.kc) }],
      ["group", { ...e, group: "other" }],
      ["sender's device", { ...e, device: "fedcba9876543210" }],
      ["time", { ...e, sentAt: "2020-01-01T00:00:00.000Z" }],
      ["sequence", { ...e, seq: 9 }],
      ["id", { ...e, id: uuidv7() }],
      ["another envelope's place", { ...e, batch: envs[3]!.batch }],
      ["index", { ...e, batch: { ...e.batch, index: 3 } }],
      ["size", { ...e, batch: { ...e.batch, size: 7 } }],
      ["size (smaller)", { ...e, batch: { ...e.batch, size: 4 } }],
      ["path hash", { ...e, batch: { ...e.batch, path: flip(e.batch.path, 40) } }],
      [
        "path, one hash short",
        { ...e, batch: { ...e.batch, path: path.subarray(32).toString("base64url") } },
      ],
      [
        "path, one hash more",
        {
          ...e,
          batch: { ...e.batch, path: Buffer.concat([path, path.subarray(0, 32)]).toString("base64url") },
        },
      ],
      [
        "path, not whole hashes",
        { ...e, batch: { ...e.batch, path: path.subarray(1).toString("base64url") } },
      ],
      ["signature", { ...e, sig: flip(e.sig, 5) }],
    ];
    for (const [what, bad] of altered)
      assert.deepEqual(open(bad), { ok: false, reason: "bad_signature" }, `an altered ${what} is detected`);
    // Each of those was checked for real: the verified batch vouches for nothing but its own root.
    assert.ok(bobs.signatureChecks > checks);
    assert.equal(open(e).ok, true, "the original still opens");
  });

  it("a verified batch vouches for no other sender: carol's keys over alice's batch, and carol's batch named as alice's", () => {
    const envs = batch(3);
    const bobs = new Sealer(bob);
    assert.equal(bobs.open(envs[0]!, alice.publicKeys).ok, true);
    assert.deepEqual(bobs.open(envs[1]!, carol.publicKeys), { ok: false, reason: "bad_signature" });
    // Carol, a member, signs her own batch and presents it as alice's.
    const carols = new Sealer(carol);
    const hers = [draft(carols, "from carol"), draft(carols, "pay carol")];
    carols.signBatch(hers);
    const posing = { ...copyFor(hers[1]!, "bob"), from: "alice" } as Envelope;
    assert.deepEqual(bobs.open(posing, alice.publicKeys), { ok: false, reason: "bad_signature" });
  });

  it("signatures do not cross suites: suite 2's over one envelope and suite 4's over a batch of one", () => {
    const sealer = new Sealer(alice);
    const v2 = copyFor(
      sealer.seal({
        version: 2,
        id: uuidv7(),
        device: "0123456789abcdef",
        to: null,
        group: "team",
        seq: 1,
        sentAt: new Date().toISOString(),
        text: "v2",
        recipients: members,
      }),
      "bob",
    ) as Extract<Envelope, { v: 2 }>;
    const one = copyFor(draft(sealer, "v4"), "bob") as V4;
    sealer.signBatch([one]);
    const bobs = new Sealer(bob);
    assert.equal(bobs.open(v2, alice.publicKeys).ok, true);
    assert.equal(bobs.open(one, alice.publicKeys).ok, true);
    const asV4: Envelope = { ...v2, v: 4, suite: SUITE_V4, batch: { size: 1, index: 0, path: "" } };
    const { batch: _place, ...unplaced } = one;
    const asV2: Envelope = {
      ...unplaced,
      v: 2,
      suite: "zc2-x25519-hkdf-sha256-aes256gcm-hmac-commit-ed25519",
    };
    assert.deepEqual(bobs.open(asV4, alice.publicKeys), { ok: false, reason: "bad_signature" });
    assert.deepEqual(bobs.open(asV2, alice.publicKeys), { ok: false, reason: "bad_signature" });
  });

  it("signBatch signs only this identity's drafts, in order; a draft is no envelope the service takes", () => {
    const sealer = new Sealer(alice);
    const a = draft(sealer, "a");
    const b = draft(sealer, "b", "other");
    assert.ok(isDraft(a));
    assert.equal(isEnvelope(a), false, "unsigned, a draft is refused by the hand check");
    assert.equal(envelopeSchema.safeParse(a).success, false, "and by the schema");
    const tag = sealTag(a);
    const direct = sealer.seal({
      id: uuidv7(),
      device: "0123456789abcdef",
      to: "bob",
      group: null,
      seq: 1,
      sentAt: new Date().toISOString(),
      text: "1:1",
      recipients: [{ name: "bob", keys: bob.publicKeys }],
    });
    const carolsDraft = draft(new Sealer(carol), "carol's");
    const signedBefore = draft(sealer, "signed before");
    sealer.signBatch([signedBefore]);
    const before = JSON.stringify(signedBefore);
    sealer.signBatch([a, direct, carolsDraft, b, signedBefore]);
    assert.equal(isDraft(a) || isDraft(b), false);
    assert.deepEqual([(a as V4).batch.index, (b as V4).batch.index, (b as V4).batch.size], [0, 1, 2]);
    assert.equal(direct.v, 3, "a 1:1 envelope is left as it is");
    assert.ok(isDraft(carolsDraft), "another identity's draft is not signed with this key");
    assert.equal(JSON.stringify(signedBefore), before, "an envelope signed before keeps its signature");
    assert.equal(sealTag(a), tag, "the seal tag (the key commitment) does not change when signed");
    assert.ok(isEnvelope(a) && isEnvelope(b));
    // Two groups in one batch: each opens for its members.
    assert.equal(new Sealer(bob).open(copyFor(b, "bob"), alice.publicKeys).ok, true);
  });

  it("sealed without `draft`, a group envelope is signed at once as a batch of one", () => {
    const env = new Sealer(alice).seal({
      id: uuidv7(),
      device: "0123456789abcdef",
      to: null,
      group: "team",
      seq: 1,
      sentAt: new Date().toISOString(),
      text: "typing",
      recipients: members,
    }) as V4;
    assert.deepEqual(env.batch, { size: 1, index: 0, path: "" });
    assert.ok(isEnvelope(env));
    assert.equal(new Sealer(bob).open(copyFor(env, "bob"), alice.publicKeys).ok, true);
  });
});

describe("the seal tag: how a device knows its own send when the service hands it back", () => {
  it("is the same for the device's own mailbox copy, and differs when any field the device takes from it differs", () => {
    const sealer = new Sealer(alice);
    const input = {
      id: uuidv7(),
      device: "0123456789abcdef",
      seq: 4,
      sentAt: new Date().toISOString(),
      text: "mine",
    };
    const sealed: Envelope[] = [
      sealer.seal({ ...input, to: null, group: "team", recipients: members, version: 2 }),
      sealer.seal({ ...input, to: "bob", group: null, recipients: members.slice(0, 1), version: 3 }),
      sealer.seal({ ...input, to: null, group: "team", recipients: members }),
    ];
    for (const env of sealed) {
      const tag = sealTag(env);
      assert.equal(sealTag(copyFor(env, "alice")), tag, `v${env.v}: the own copy keeps the tag`);
      const changed: Array<[string, Envelope]> = [
        ["seq", { ...env, seq: 5 }],
        ["sentAt", { ...env, sentAt: "2020-01-01T00:00:00.000Z" }],
        ["to", { ...env, to: "carol" } as Envelope],
        ["group", { ...env, group: env.group === null ? "team" : "other" } as Envelope],
        ["device", { ...env, device: "fedcba9876543210" }],
        ["ciphertext", { ...env, ct: flip(env.ct) }],
        ["nonce", { ...env, nonce: flip(env.nonce) }],
      ];
      for (const [what, e] of changed) assert.notEqual(sealTag(e), tag, `v${env.v}: another ${what}`);
    }
  });
});
