import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { profileFlags } from "../../bench/lib/profile.js";

/** ZMQCHAT_BENCH_PROFILE: a process with worker threads keeps one profile per thread, the main thread's among them. */
describe("bench CPU profiles of a process with worker threads", () => {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-prof-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("writes the main thread's profile and each worker's, none over another", () => {
    const before = process.env.ZMQCHAT_BENCH_PROFILE;
    process.env.ZMQCHAT_BENCH_PROFILE = dir;
    const flags = profileFlags("helper");
    if (before === undefined) delete process.env.ZMQCHAT_BENCH_PROFILE;
    else process.env.ZMQCHAT_BENCH_PROFILE = before;
    const script = `
      const { Worker } = require("node:worker_threads");
      function mainThreadWork() { let x = 0; for (let i = 0; i < 3e6; i++) x += i % 7; return x; }
      mainThreadWork();
      const code = "let x = 0; for (let i = 0; i < 3e6; i++) x += i % 5;";
      let left = 2;
      for (let i = 0; i < 2; i++) new Worker(code, { eval: true }).on("exit", () => { if (--left === 0) mainThreadWork(); });
    `;
    const r = spawnSync(process.execPath, [...flags, "-e", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const [proc, ...others] = readdirSync(dir);
    assert.equal(others.length, 0, "one directory per process");
    assert.match(proc!, /^helper-\d+$/);
    const files = readdirSync(join(dir, proc!)).filter((f) => f.endsWith(".cpuprofile"));
    assert.equal(files.length, 3, `a profile per thread: ${files.join(", ")}`);
    const main = files.filter((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
    assert.equal(main.length, 1, `the main thread's profile: ${files.join(", ")}`);
    const profile = JSON.parse(readFileSync(join(dir, proc!, main[0]!), "utf8")) as {
      nodes: Array<{ callFrame: { functionName: string } }>;
    };
    assert.ok(
      profile.nodes.some((n) => n.callFrame.functionName === "mainThreadWork"),
      "the main thread's work is in its profile",
    );
  });

  it("ZMQCHAT_BENCH_NODE_FLAGS goes to every process, or with ZMQCHAT_BENCH_NODE_FLAGS_FOR to those it names", () => {
    const saved = { ...process.env };
    try {
      delete process.env.ZMQCHAT_BENCH_PROFILE;
      process.env.ZMQCHAT_BENCH_NODE_FLAGS = "--trace-gc  --max-semi-space-size=32";
      assert.deepEqual(profileFlags("peer-1"), ["--trace-gc", "--max-semi-space-size=32"]);
      process.env.ZMQCHAT_BENCH_NODE_FLAGS_FOR = "balancer|server";
      assert.deepEqual(profileFlags("peer-1"), []);
      assert.deepEqual(profileFlags("sqlite-server-2"), ["--trace-gc", "--max-semi-space-size=32"]);
    } finally {
      for (const k of ["ZMQCHAT_BENCH_NODE_FLAGS", "ZMQCHAT_BENCH_NODE_FLAGS_FOR", "ZMQCHAT_BENCH_PROFILE"])
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
    }
  });
});
