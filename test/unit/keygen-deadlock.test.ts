import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const child = fileURLToPath(new URL("../helpers/make-identities.ts", import.meta.url));
const NODE_MAJOR = Number(process.versions.node.split(".")[0]);

/**
 * Node 20 can deadlock when a garbage collection, run while a key is exported as JWK, destroys the
 * job that generated that key (core/crypto/keys.ts, newPrivateKey). V8's --gc-interval=N collects
 * every N allocations, so the collection lands inside an export within a few hundred keys. A child
 * that hangs is killed at the deadline: exit code null.
 */
/** A child whose Nth allocation each collects; a child that hangs is killed at the deadline (exit code null). */
function run(args: string[], deadlineMs: number): Promise<number | null> {
  const p = spawn(process.execPath, ["--gc-interval=50", ...args], { stdio: "ignore" });
  const killer = setTimeout(() => p.kill("SIGKILL"), deadlineMs);
  return new Promise((resolve) =>
    p.on("exit", (code) => {
      clearTimeout(killer);
      resolve(code);
    }),
  );
}

/** The control: keys straight from generateKeyPairSync, exported as JWK (hung 3 of 3 on Node 20.20.2 within 300). */
const RAW = `const { generateKeyPairSync } = require("node:crypto");
for (let i = 0; i < 1000; i++) {
  const k = generateKeyPairSync("ed25519");
  k.publicKey.export({ format: "jwk" });
  k.privateKey.export({ format: "jwk" });
}`;

describe("making and saving identities never hangs the process (Node 20 key-export deadlock)", () => {
  // The deadlock is a race: the control hung 3 of 3 by hand on one machine and 0 of 1 on CI's. On
  // Node 20 a run that does not hang is reported as skipped (never as passed): the harness was not
  // shown to see the hang this time. On 22+ the same keys must come out (exit 0).
  it("control: keys straight from generateKeyPairSync hang on Node 20 (the harness sees the deadlock), not on 22+", {
    timeout: 120_000,
  }, async (t) => {
    const code = await run(["-e", RAW], 30_000);
    if (NODE_MAJOR > 20) assert.equal(code, 0, `Node ${NODE_MAJOR} failed or hung`);
    else if (code !== null) {
      // (code null: it hung and was killed, which is what the control is for.)
      assert.equal(code, 0, "the control failed without hanging");
      t.skip("the race did not strike in this run: the harness was not shown to see the hang");
    }
  });

  it("1,500 identities made and exported as the product does, a collection every 50 allocations", {
    timeout: 180_000,
  }, async () => {
    assert.equal(
      await run(["--import", "tsx", child, "ours", "1500"], 120_000),
      0,
      "the child hung (killed) or failed",
    );
  });
});
