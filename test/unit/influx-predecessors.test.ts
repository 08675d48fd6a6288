import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import { placeAmong, type Row, SettledRows } from "../../server/store/influx/predecessors.js";

// The pure part of telling a copy's predecessor on InfluxDB (predecessors.ts): what readers
// see, where a second copy of an id (two servers racing a resend) is dropped.

const R = 100n; // racing copies lie at most this far apart
const row = (ts: number, id: string): Row => ({ ts: BigInt(ts), id });
const copy = (ts: number, id: string) => ({ owner: "bob", id, ts: BigInt(ts) });

describe("mailbox predecessors", () => {
  it("names the point before each copy, and null for the first of a whole mailbox", () => {
    const rows = [row(1000, "a"), row(2000, "b"), row(3000, "c")];
    const placed = placeAmong(rows, true, [], null, [copy(1000, "a"), copy(3000, "c")], R);
    assert.deepEqual(placed.get(1000n), { ts: 1000n, prev: null, second: false });
    assert.deepEqual(placed.get(3000n), { ts: 3000n, prev: 2000n, second: false });
  });

  it("skips second copies, and places a second copy where its first is", () => {
    // x was stored twice by racing servers (1050 is the second copy).
    const rows = [row(1000, "x"), row(1050, "x"), row(1080, "y")];
    const placed = placeAmong(rows, true, [], null, [copy(1080, "y"), copy(1050, "x")], R);
    assert.deepEqual(placed.get(1080n), { ts: 1080n, prev: 1000n, second: false });
    assert.deepEqual(placed.get(1050n), { ts: 1000n, prev: null, second: true });
    // The same id far apart is two messages as far as readers go (it cannot be a racing resend).
    const apart = placeAmong([row(1000, "x"), row(5000, "x")], true, [], null, [copy(5000, "x")], R);
    assert.deepEqual(apart.get(5000n), { ts: 5000n, prev: 1000n, second: false });
  });

  it("uses the earlier copies found just before the rows read, and says nothing past them", () => {
    // Not the whole mailbox: 1000 is a second copy of a point (950) before the rows read.
    const rows = [row(1000, "a"), row(1050, "b"), row(1300, "c")];
    const placed = placeAmong(rows, false, [row(950, "a")], null, [copy(1050, "b"), copy(1300, "c")], R);
    assert.equal(placed.get(1050n)!.prev, undefined, "the point before 1050 that readers see was not read");
    assert.equal(placed.get(1300n)!.prev, 1050n);
    const clean = placeAmong(rows, false, [], null, [copy(1050, "b")], R);
    assert.equal(clean.get(1050n)!.prev, 1000n, "1000 has no earlier copy: readers see it");
    assert.equal(
      placeAmong(rows, false, [], null, [copy(9, "z")], R).get(9n)!.prev,
      undefined,
      "not among the rows",
    );
  });
});

test("settled rows: serves a range that starts inside what was read, and says where the unknown rest starts", () => {
  const rows = (...ts: number[]) => ts.map((t) => ({ ts: BigInt(t), id: `m${t}` }));
  const s = new SettledRows(100n);
  assert.deepEqual(s.cover("bob", 10n, 50n), { rows: [], rest: 10n }, "nothing known: read it all");
  s.add("bob", 10n, 40n, rows(12, 20, 33, 40));
  assert.deepEqual(s.cover("bob", 15n, 35n), { rows: rows(20, 33), rest: null });
  assert.deepEqual(s.cover("bob", 15n, 60n), { rows: rows(20, 33, 40), rest: 41n }, "read from 41 on");
  assert.deepEqual(s.cover("bob", 5n, 30n), { rows: [], rest: 5n }, "starts before what is known");
  assert.deepEqual(s.cover("alice", 15n, 30n), { rows: [], rest: 15n }, "another mailbox");
  // A later range that touches it extends it; one that leaves a gap replaces it.
  s.add("bob", 41n, 70n, rows(41, 55, 70));
  assert.deepEqual(s.cover("bob", 15n, 71n), { rows: rows(20, 33, 40, 41, 55, 70), rest: null });
  s.add("bob", 90n, 120n, rows(95, 120));
  assert.deepEqual(s.cover("bob", 30n, 100n), { rows: [], rest: 30n }, "a gap: only the later range is kept");
  assert.deepEqual(s.cover("bob", 90n, 121n), { rows: rows(95, 120), rest: null });
  // An older range than the one kept does not replace it; what lies beyond keepNs is dropped.
  s.add("bob", 0n, 50n, rows(1, 2));
  assert.deepEqual(s.cover("bob", 90n, 121n), { rows: rows(95, 120), rest: null });
  s.add("bob", 121n, 300n, rows(150, 250, 300));
  assert.deepEqual(s.cover("bob", 150n, 301n), { rows: [], rest: 150n }, "kept only from 200");
  assert.deepEqual(s.cover("bob", 200n, 301n), { rows: rows(250, 300), rest: null });
});

test("settled rows: at most maxMailboxes mailboxes, the least recently used go", () => {
  const s = new SettledRows(1000n, 2);
  s.add("a", 0n, 10n, [{ ts: 5n, id: "x" }]);
  s.add("b", 0n, 10n, []);
  s.cover("a", 1n, 10n);
  s.add("c", 0n, 10n, []);
  assert.equal(s.cover("a", 1n, 10n).rest, null, "a was used last");
  assert.equal(s.cover("b", 1n, 10n).rest, 1n, "b went");
});
