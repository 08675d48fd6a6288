import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { copyFor, Sealer } from "../../core/crypto/envelope.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { fastSendBody, isEnvelope } from "../../core/protocol/envelope-check.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import {
  MAX_BATCH_LEAVES,
  MAX_BATCH_PATH_CHARS,
  MAX_GROUP_MEMBERS,
  MAX_SEND_MANY,
} from "../../core/protocol/limits.js";
import { type Envelope, envelopeSchema, requestBodies } from "../../core/protocol/schema.js";
import { serializeEnvelope } from "../../server/send.js";

const alice = generateIdentity("alice");
const bob = generateIdentity("bob");
const sealOneToOne = (version: 2 | 3) =>
  new Sealer(alice).seal({
    id: uuidv7(),
    device: "0123456789abcdef",
    to: "bob",
    group: null,
    seq: 3,
    sentAt: new Date().toISOString(),
    text: "hello",
    recipients: [{ name: "bob", keys: bob.publicKeys }],
    version,
  });
const sealed = sealOneToOne(2);
const sealedV3 = sealOneToOne(3);
const base = JSON.parse(JSON.stringify(sealed)) as Record<string, unknown>;
const v1 = (() => {
  const { kc: _kc, ...rest } = base;
  return { ...rest, v: 1 };
})();
const v3 = JSON.parse(JSON.stringify(sealedV3)) as Record<string, unknown>;
/** A suite 4 envelope (a group's), third of a batch of five: a path of three hashes. */
const v4 = (() => {
  const sealer = new Sealer(alice);
  const batch = Array.from({ length: 5 }, (_, i) =>
    sealer.seal({
      id: uuidv7(),
      device: "0123456789abcdef",
      to: null,
      group: "team",
      seq: i + 1,
      sentAt: new Date().toISOString(),
      text: "hello",
      recipients: [{ name: "bob", keys: bob.publicKeys }],
      draft: true,
    }),
  );
  sealer.signBatch(batch);
  return JSON.parse(JSON.stringify(batch[2])) as Record<string, unknown>;
})();
const goodBatch = v4.batch as { size: number; index: number; path: string };

/** Values to put in a field: right and wrong types, edges of each rule. */
const VALUES: unknown[] = [
  null,
  undefined,
  0,
  1,
  2,
  3,
  -1,
  1.5,
  2 ** 53,
  2 ** 53 - 1,
  Number.MAX_VALUE,
  true,
  "",
  "a",
  "Alice",
  "bob",
  "-bob",
  "b".repeat(32),
  "b".repeat(33),
  "0123456789abcdef",
  "0123456789ABCDEF",
  "0123456789abcde",
  "x".repeat(40),
  "x".repeat(41),
  "x".repeat(64),
  "x".repeat(65),
  "A".repeat(16),
  "A".repeat(17),
  "A".repeat(43),
  "A".repeat(44),
  "A".repeat(8192),
  "A".repeat(8193),
  "abc=",
  "abc def",
  "ab+/",
  base.id,
  (base.id as string).toUpperCase(),
  `${base.id}0`,
  [],
  {},
  [{ to: "bob", wk: "AAAA" }],
  [
    { to: "bob", wk: "AAAA" },
    { to: "alice", wk: "AAAA" },
  ],
  [
    { to: "bob", wk: "AAAA" },
    { to: "alice", wk: "AAAA" },
    { to: "carol", wk: "AAAA" },
  ],
  [{ to: "bob", wk: "AAAA", extra: 1 }],
  [{ to: "Bob", wk: "AAAA" }],
  [{ to: "bob", wk: "" }],
  [{ to: "bob" }],
  ["bob"],
  Array.from({ length: MAX_GROUP_MEMBERS + 1 }, (_, i) => ({ to: `u${i}`, wk: "AA" })),
  Array.from({ length: MAX_GROUP_MEMBERS + 2 }, (_, i) => ({ to: `u${i}`, wk: "AA" })),
  // Suite 4's place in its batch, and its edges.
  goodBatch,
  { ...goodBatch, size: MAX_BATCH_LEAVES },
  { ...goodBatch, size: MAX_BATCH_LEAVES + 1 },
  { ...goodBatch, size: 0 },
  { ...goodBatch, size: 1.5 },
  { ...goodBatch, size: "5" },
  { ...goodBatch, index: -1 },
  { ...goodBatch, index: 2 ** 53 },
  { ...goodBatch, index: null },
  { ...goodBatch, path: "" },
  { ...goodBatch, path: "A".repeat(MAX_BATCH_PATH_CHARS) },
  { ...goodBatch, path: "A".repeat(MAX_BATCH_PATH_CHARS + 1) },
  { ...goodBatch, path: "ab+/" },
  { ...goodBatch, path: 3 },
  { ...goodBatch, extra: 1 },
  { size: 1, index: 0 },
];

function variants(): unknown[] {
  const out: unknown[] = [base, v1, v3, v4, null, [], "x", 1, {}];
  for (const start of [base, v1, v3, v4]) {
    for (const key of [...new Set([...Object.keys(base), ...Object.keys(v3), ...Object.keys(v4)]), "extra"]) {
      for (const value of VALUES) {
        const e = { ...start, [key]: value };
        if (value === undefined) delete (e as Record<string, unknown>)[key];
        out.push(e);
      }
    }
  }
  return out;
}

describe("the hand check of envelopes (the send path's validation)", () => {
  it("says yes exactly where envelopeSchema does, over every field's edges", () => {
    let yes = 0;
    for (const e of variants()) {
      const want = envelopeSchema.safeParse(e).success;
      assert.equal(isEnvelope(e), want, `schema says ${want} for ${JSON.stringify(e)?.slice(0, 300)}`);
      if (want) yes++;
    }
    // Positive control: the variants include many good envelopes, not only bad ones.
    assert.ok(yes > 50, `${yes} accepted variants`);
  });

  it("takes send and send.many bodies the schema takes, and leaves every other to it", () => {
    const bodies: Array<[string, unknown]> = [
      ["send", { envelope: base }],
      ["send", { envelope: v1 }],
      ["send", { envelope: v3 }],
      ["send", { envelope: v4 }],
      ["send", { envelope: { ...v4, batch: undefined } }],
      ["send", { envelope: { ...base, batch: goodBatch } }],
      ["send", { envelope: { ...v3, sig: "AAAA" } }],
      ["send", { envelope: { ...base, v: 3 } }],
      ["send", { envelope: base, extra: 1 }],
      ["send", {}],
      ["send", null],
      ["send", [base]],
      ["send.many", { envelopes: [base, v1] }],
      ["send.many", { envelopes: [v4, v3, base] }],
      ["send.many", { envelopes: [] }],
      ["send.many", { envelopes: Array(MAX_SEND_MANY).fill(base) }],
      ["send.many", { envelopes: Array(MAX_SEND_MANY + 1).fill(base) }],
      ["send.many", { envelopes: [base, { ...base, seq: -1 }] }],
      ["send.many", { envelopes: base }],
      ["send.many", { envelopes: [base], more: true }],
    ];
    for (const [type, body] of bodies) {
      const schema = requestBodies[type as "send" | "send.many"];
      const want = schema.safeParse(body).success;
      const fast = fastSendBody(type, body);
      assert.equal(fast !== null, want, `${type} ${JSON.stringify(body).slice(0, 200)}`);
    }
    assert.equal(fastSendBody("sync", { after: null, limit: 1 }), null, "other requests go to the schema");
  });
});

describe("the stored form of an envelope", () => {
  it("is its fields in schema order, as JSON.stringify writes them, for v1 to v4 and each copy", () => {
    const carol = generateIdentity("carol");
    const groupInput = {
      id: uuidv7(),
      device: "0123456789abcdef",
      to: null,
      group: "team",
      seq: 0,
      sentAt: 'a "quoted" time',
      text: "hello",
      recipients: [
        { name: "bob", keys: bob.publicKeys },
        { name: "carol", keys: carol.publicKeys },
      ],
    };
    const group = new Sealer(alice).seal(groupInput);
    const canonical = (e: Envelope) =>
      JSON.stringify({
        v: e.v,
        suite: e.suite,
        id: e.id,
        from: e.from,
        device: e.device,
        to: e.to,
        group: e.group,
        seq: e.seq,
        sentAt: e.sentAt,
        ...(e.v === 3 ? { fromKey: e.fromKey, toKey: e.toKey } : {}),
        nonce: e.nonce,
        ct: e.ct,
        ...(e.v !== 1 ? { kc: e.kc } : {}),
        keys: e.keys.map((k) => ({ to: k.to, wk: k.wk })),
        ...(e.v !== 3 ? { sig: e.sig } : {}),
        ...(e.v === 4 ? { batch: { size: e.batch.size, index: e.batch.index, path: e.batch.path } } : {}),
      });
    const withExtra = { ...sealed, keys: sealed.keys.map((k) => ({ ...k, extra: 1 })) } as Envelope;
    const groupV2 = new Sealer(alice).seal({ ...groupInput, version: 2 });
    for (const e of [
      sealed,
      envelopeSchema.parse(v1),
      sealedV3,
      group,
      groupV2,
      envelopeSchema.parse(v4),
      withExtra,
    ]) {
      assert.equal(serializeEnvelope(e), canonical(e));
      for (const k of e.keys) assert.equal(serializeEnvelope(copyFor(e, k.to)), canonical(copyFor(e, k.to)));
    }
    assert.equal(JSON.parse(serializeEnvelope(group)).keys.length, 3);
  });
});
