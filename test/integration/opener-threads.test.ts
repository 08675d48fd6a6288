import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { REPO_ROOT } from "../helpers/paths.js";

describe("client opener threads", () => {
  it("keep the process alive until every batch is opened when two batches share them", () => {
    // Compiled and run by plain node (under tsx, its loader thread keeps the process alive and
    // hides the bug): with one ref/unref per batch, the first batch to finish unreferenced both
    // threads under the second, and the process ended quietly with the second batch unopened.
    const r = spawnSync(process.execPath, [join(REPO_ROOT, "dist", "test", "helpers", "opener-batches.js")], {
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "opened 1000", "both batches opened before the process ended");
  });
});
