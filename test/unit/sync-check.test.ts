import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Sealer } from "../../core/crypto/envelope.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { replyBodies } from "../../core/protocol/schema.js";
import { checkSyncBody } from "../../core/protocol/sync-check.js";

const alice = generateIdentity("alice");
const bob = generateIdentity("bob");
const carol = generateIdentity("carol");
const envelope = (version: 2 | 3) =>
  JSON.parse(
    JSON.stringify(
      new Sealer(alice).seal({
        id: uuidv7(),
        device: "0123456789abcdef",
        to: version === 3 ? "bob" : null,
        group: version === 3 ? null : "grp",
        seq: 3,
        sentAt: new Date().toISOString(),
        text: "hello",
        recipients: [
          { name: "bob", keys: bob.publicKeys },
          ...(version === 2 ? [{ name: "carol", keys: carol.publicKeys }] : []),
        ],
        version,
      }),
    ),
  ) as Record<string, unknown>;
const v2 = envelope(2);
const v3 = envelope(3);
const item = { cursor: "17", serverTime: new Date().toISOString(), envelope: v2 };
const item3 = { cursor: "18", serverTime: new Date().toISOString(), envelope: v3 };
const body = { items: [item, item3], more: true };

/** Values to put in a field: right and wrong types, edges of each rule. */
const VALUES: unknown[] = [
  null,
  undefined,
  0,
  1,
  "",
  "1",
  "0".repeat(24),
  "0".repeat(25),
  "12a",
  "-1",
  " 1",
  "bob",
  true,
  false,
  [],
  {},
  [item],
  [item, null],
  [{ ...item, extra: 1 }],
  v2,
  v3,
  { ...v2, sig: 1 },
  { ...v2, extra: 1 },
  { ...v2, keys: [{ to: "bob", wk: "AAAA", extra: 1 }] },
  { ...v2, keys: [] },
  { ...v2, id: "not-a-uuid" },
  { ...v3, to: null },
  { ...v3, group: "grp" },
  { ...v3, sig: "AAAA" },
  item,
  { ...item, cursor: 17 },
];

function variants(): unknown[] {
  const out: unknown[] = [body, null, [], "x", 1, {}, { items: [], more: false }, { ...body, extra: 1 }];
  for (const key of ["items", "more", "extra"]) {
    for (const value of VALUES) {
      const b: Record<string, unknown> = { ...body, [key]: value };
      if (value === undefined) delete b[key];
      out.push(b);
    }
  }
  for (const key of ["cursor", "serverTime", "envelope", "extra"]) {
    for (const value of VALUES) {
      const i: Record<string, unknown> = { ...item, [key]: value };
      if (value === undefined) delete i[key];
      out.push({ items: [item3, i], more: false });
    }
  }
  for (const key of Object.keys(v2)) {
    for (const value of VALUES) {
      const e: Record<string, unknown> = { ...v2, [key]: value };
      if (value === undefined) delete e[key];
      out.push({ items: [{ ...item, envelope: e }], more: true });
    }
  }
  for (const key of Object.keys(v3)) {
    for (const value of VALUES) {
      const e: Record<string, unknown> = { ...v3, [key]: value };
      if (value === undefined) delete e[key];
      out.push({ items: [{ ...item3, envelope: e }], more: true });
    }
  }
  return out;
}

describe("the hand check of sync pages (a recovering client's validation)", () => {
  it("accepts only what replyBodies.sync accepts, and gives what it parses to", () => {
    let yes = 0;
    let no = 0;
    for (const b of variants()) {
      const want = replyBodies.sync.safeParse(b);
      const got = checkSyncBody(b);
      const shown = JSON.stringify(b)?.slice(0, 300);
      // A null sends the client to the schema, so the check may only say yes where the schema does.
      if (got !== null) {
        assert.ok(want.success, `the hand check accepts what the schema refuses: ${shown}`);
        // The same value: unknown members dropped where the schema drops them.
        assert.deepEqual(got, want.data, shown);
        yes++;
      } else if (!want.success) no++;
    }
    // Positive controls: many variants are good pages the check accepts, many are refused by both.
    assert.ok(yes > 30, `${yes} accepted variants`);
    assert.ok(no > 200, `${no} refused variants`);
  });

  it("gives the same answer as the schema for every variant (no page sent to the slow path needlessly)", () => {
    const differ = variants().filter(
      (b) => (checkSyncBody(b) !== null) !== replyBodies.sync.safeParse(b).success,
    );
    assert.deepEqual(
      differ.map((b) => JSON.stringify(b)?.slice(0, 200)),
      [],
    );
  });
});
