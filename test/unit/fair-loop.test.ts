import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFairly } from "../../core/fair-loop.js";

/** A source whose every item is ready at once, as a socket's backlog is. */
async function* backlog(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) yield i;
}

describe("readFairly (core/fair-loop.ts)", () => {
  it("gives the event loop a turn every `burst` items of a backlog, and reads every item in order", async () => {
    const seen: number[] = [];
    let atFirstTurn: number | null = null;
    setImmediate(() => {
      atFirstTurn = seen.length;
    });
    await readFairly(backlog(1000), (i) => seen.push(i), 64);
    assert.deepEqual(
      seen,
      Array.from({ length: 1000 }, (_, i) => i),
    );
    // A plain for-await would run all 1000 in microtasks before the setImmediate.
    assert.equal(atFirstTurn, 64);
  });
});
