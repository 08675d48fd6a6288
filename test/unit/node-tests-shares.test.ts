import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";

/**
 * scripts/node-tests.sh SUITE%K/N: Node 22 and 24 each run a share of the integration files
 * (scripts/node-versions.sh). The shares of one seed must cover every file exactly once, or a file
 * would silently run on no other release (or twice).
 */
function list(args: string[], seed: number): string[] {
  const out = execFileSync("bash", ["scripts/node-tests.sh", "/dev/null", ...args], {
    encoding: "utf8",
    env: { ...process.env, ZMQCHAT_TEST_LIST: "1", ZMQCHAT_TEST_SHARD_SEED: String(seed) },
  });
  return out.split("\n").filter(Boolean);
}

describe("node-tests.sh shares of a suite", () => {
  const all = list(["integration"], 0);

  it("lists every file of a suite without a share (positive control: the listing sees files)", () => {
    assert.ok(all.length > 10, `only ${all.length} integration files listed`);
    assert.ok(all.includes("test/integration/limits.test.ts"), "a file that runs alone is listed too");
  });

  for (const n of [2, 3]) {
    for (const seed of [1, 87903309]) {
      it(`${n} shares with seed ${seed} cover every file exactly once, in near-equal parts`, () => {
        const shares = Array.from({ length: n }, (_, k) => list([`integration%${k}/${n}`], seed));
        const dealt = shares.flat();
        assert.deepEqual([...dealt].sort(), [...all].sort());
        assert.equal(new Set(dealt).size, dealt.length, "a file is in two shares");
        for (const share of shares)
          assert.ok(Math.abs(share.length - all.length / n) <= 1, `share of ${share.length}`);
      });
    }
  }

  it("the offset moves files between shares as the seed changes", () => {
    assert.notDeepEqual(list(["integration%0/2"], 0), list(["integration%0/2"], 1));
  });

  it("a share applies to its own suite only", () => {
    const units = list(["unit"], 0);
    assert.deepEqual(list(["unit", "integration%1/2"], 0).slice(0, units.length), units);
  });
});
