import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RandomPool } from "../../core/crypto/random-pool.js";
import { uuidv7 } from "../../core/protocol/ids.js";

describe("random bytes a block at a time (sealing, message ids)", () => {
  it("hands every byte out once: no two takes share bytes, and a take never changes afterwards", () => {
    const pool = new RandomPool();
    const first = pool.take(32);
    const kept = Buffer.from(first);
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const b = pool.take(i % 3 === 0 ? 68 : 12);
      const hex = b.toString("hex");
      assert.ok(!seen.has(hex), "a take repeated earlier bytes");
      seen.add(hex);
    }
    assert.deepEqual(first, kept, "bytes handed out were written over by a refill");
    // Positive control: the check above sees a repeat when there is one.
    assert.ok(seen.has(pool.take(12).toString("hex")) === false);
    assert.throws(() => pool.take(4097), RangeError);
  });

  it("gives distinct, well-formed UUIDv7s across many refills", () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7());
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids.slice(0, 100))
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Random bits differ between ids of the same millisecond (not only the counter).
    assert.notEqual(ids[0]!.slice(19), ids[1]!.slice(19));
  });
});
