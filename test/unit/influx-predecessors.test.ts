import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { placeAmong, type Row } from "../../server/store/influx/predecessors.js";

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
