import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Sealer } from "../../core/crypto/envelope.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { checkDeliveryFrame } from "../../core/protocol/delivery-check.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { deliveryFrameSchema } from "../../core/protocol/schema.js";

const alice = generateIdentity("alice");
const bob = generateIdentity("bob");
const envelope = (version: 2 | 3) =>
  JSON.parse(
    JSON.stringify(
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
      }),
    ),
  ) as Record<string, unknown>;
const v2 = envelope(2);
const v3 = envelope(3);
const item = { cursor: "17", serverTime: new Date().toISOString(), envelope: v2 };
const frame = { v: 1, type: "deliver", owner: "bob", item, prev: "16" };

/** Values to put in a field: right and wrong types, edges of each rule. */
const VALUES: unknown[] = [
  null,
  undefined,
  0,
  1,
  2,
  "",
  "1",
  "0".repeat(24),
  "0".repeat(25),
  "12a",
  "-1",
  " 1",
  "bob",
  "Bob",
  "b".repeat(32),
  "b".repeat(33),
  "deliver",
  "group",
  true,
  [],
  {},
  { ...v2, sig: 1 },
  { ...v2, extra: 1 },
  { ...v2, keys: [{ to: "bob", wk: "AAAA", extra: 1 }] },
  v3,
  item,
  { ...item, extra: 1 },
  { ...item, cursor: 17 },
  { ...item, serverTime: 1 },
  { ...item, envelope: v3 },
  { ...item, envelope: { ...v3, to: null } },
];

function variants(): unknown[] {
  const out: unknown[] = [frame, null, [], "x", 1, {}, { ...frame, prev: undefined }];
  for (const key of ["v", "type", "owner", "item", "prev", "extra"]) {
    for (const value of VALUES) {
      const f: Record<string, unknown> = { ...frame, [key]: value };
      if (value === undefined) delete f[key];
      out.push(f);
    }
  }
  for (const key of ["cursor", "serverTime", "envelope", "extra"]) {
    for (const value of VALUES) {
      const i: Record<string, unknown> = { ...item, [key]: value };
      if (value === undefined) delete i[key];
      out.push({ ...frame, item: i });
    }
  }
  return out;
}

describe("the hand check of live delivery frames (the receiver's validation)", () => {
  it("accepts exactly what deliveryFrameSchema accepts, and gives what it parses to", () => {
    let yes = 0;
    for (const f of variants()) {
      const want = deliveryFrameSchema.safeParse(f);
      const got = checkDeliveryFrame(f);
      const shown = JSON.stringify(f)?.slice(0, 300);
      assert.equal(got !== null, want.success, `schema says ${want.success} for ${shown}`);
      if (want.success) {
        // The same value: unknown members dropped where the schema drops them.
        assert.deepEqual(got, want.data, shown);
        yes++;
      }
    }
    // Positive control: many variants are good frames, not only bad ones.
    assert.ok(yes > 20, `${yes} accepted variants`);
  });
});
