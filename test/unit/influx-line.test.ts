import assert from "node:assert/strict";
import { test } from "node:test";
import { Point } from "@influxdata/influxdb-client";
import { indexLine, mailboxLine, quoted, tag } from "../../server/store/influx/line.js";

const awkward = [
  "plain",
  "",
  'quote " inside',
  'back\\slash and \\" both',
  "trailing backslash\\",
  "line\nbreak\r\ttab",
  "comma, space = equals",
  "ünïcødé ✓ 🎉",
  "lone \ud800 surrogate \udfff, separators \u2028\u2029, del \u007f, nul \u0000",
  JSON.stringify({ v: 3, ct: "abc", keys: [{ to: "bob", wk: "x" }], note: 'a "b" \\ c' }),
];

test("mailbox and index lines are what Point makes, for awkward text too", () => {
  const ts = 1_796_284_483_582_123_456n;
  for (const text of awkward) {
    for (const owner of ["bob", "a.b-c_d", "with space,comma=eq"]) {
      const expected = new Point("mailbox")
        .tag("owner", owner)
        .stringField("id", `id ${text}`)
        .stringField("envelope", text)
        .timestamp(ts.toString())
        .toLineProtocol();
      assert.equal(mailboxLine(owner, `id ${text}`, text, ts), expected);
      const index = new Point("msg_ids")
        .tag("owner", owner)
        .stringField("id", text)
        .stringField("at", ts.toString())
        .timestamp("1796284483582999999")
        .toLineProtocol();
      assert.equal(indexLine(owner, text, ts, 1_796_284_483_582_999_999n), index);
    }
  }
});

test("escaping: quotes and backslashes in field values, separators in tags", () => {
  assert.equal(quoted('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(quoted("plain"), '"plain"');
  assert.equal(tag("a b,c=d"), "a\\ b\\,c\\=d");
  assert.equal(tag("plain"), "plain");
});
