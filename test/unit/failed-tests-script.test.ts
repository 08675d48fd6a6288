import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

/** scripts/failed-tests.sh: what the end of a failed CI log says about the failed tests. */
describe("failed-tests.sh names each failed test with its first error line", () => {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-tap-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const tap = [
    "# Subtest: suite",
    "    ok 1 - a passing test",
    "      ---",
    "      duration_ms: 1",
    "      ...",
    "    not ok 2 - a test with a multi-line error",
    "      ---",
    "      location: '/tmp/clone/test/unit/a.test.ts:10:3'",
    "      failureType: 'testCodeFailure'",
    "      error: |-",
    "        Expected values to be strictly equal:",
    "        ",
    "        1 !== 2",
    "      code: 'ERR_ASSERTION'",
    "      ...",
    "    not ok 3 - a one-line error",
    "      ---",
    "      location: '/tmp/clone/test/unit/a.test.ts:20:3'",
    "      error: 'boom'",
    "      ...",
    "    not ok 4 - cancelled without an error text",
    "      ---",
    "      location: '/tmp/clone/test/unit/b.test.ts:5:1'",
    "      ...",
    "",
  ].join("\n");
  const log = join(dir, "node-test.log");
  writeFileSync(log, tap);

  it("prints one line per failed test: log, location, name, error", () => {
    const out = execFileSync("bash", ["scripts/failed-tests.sh", log], { encoding: "utf8" });
    assert.deepEqual(out.trimEnd().split("\n"), [
      "  node-test.log  test/unit/a.test.ts:10:3  a test with a multi-line error -- Expected values to be strictly equal:",
      "  node-test.log  test/unit/a.test.ts:20:3  a one-line error -- 'boom'",
      "  node-test.log  test/unit/b.test.ts:5:1  cancelled without an error text -- (no error text)",
    ]);
  });
});
