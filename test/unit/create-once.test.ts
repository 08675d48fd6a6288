import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { readOrCreateOnce } from "../../bin/create-once.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "zmqchat-once-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `deviceCurveKeys(profile)` in a new process that waits until `at` (ms since the epoch). */
function childKeys(profile: string, at: number): Promise<{ code: number | null; out: string; err: string }> {
  const code = `
    const { deviceCurveKeys } = await import(${JSON.stringify(join(root, "bin/curve.ts"))});
    while (Date.now() < ${at}) {}
    try { process.stdout.write(deviceCurveKeys(${JSON.stringify(profile)}).publicKey); }
    catch (e) { process.stderr.write(String(e && e.message)); process.exit(2); }`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      cwd: root,
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("close", (c) => resolve({ code: c, out, err }));
  });
}

describe("files made once, by whichever process comes first", () => {
  it("a process that loses the race gets the winner's content and leaves no temporary file", () => {
    const path = join(dir, "lost.txt");
    const got = readOrCreateOnce(path, () => {
      writeFileSync(path, "winner\n"); // another process links its file in between
      return "loser\n";
    });
    assert.equal(got, "winner\n");
    assert.equal(readFileSync(path, "utf8"), "winner\n");
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith("lost.txt")),
      ["lost.txt"],
    );
  });

  it("an existing file is read, never remade; a new one is 0600", () => {
    const path = join(dir, "made.txt");
    assert.equal(
      readOrCreateOnce(path, () => "first\n"),
      "first\n",
    );
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(
      readOrCreateOnce(path, () => assert.fail("remade")),
      "first\n",
    );
  });

  it("eight commands started at once on a new profile all get one CURVE key pair", async () => {
    const profile = join(dir, "profile", "users", "alice");
    const at = Date.now() + 4000; // after every child has loaded
    const runs = await Promise.all(Array.from({ length: 8 }, () => childKeys(profile, at)));
    for (const r of runs) assert.equal(r.code, 0, r.err);
    const keys = new Set(runs.map((r) => r.out));
    assert.equal(keys.size, 1, `different keys: ${[...keys].join(", ")}`);
    const onDisk = JSON.parse(readFileSync(join(profile, "curve.json"), "utf8")) as { publicKey: string };
    assert.equal(onDisk.publicKey, runs[0]!.out);
    assert.deepEqual(readdirSync(profile), ["curve.json"]);
  });
});
