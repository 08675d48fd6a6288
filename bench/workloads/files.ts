import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchContext } from "../lib/context.js";
import { ZMQCHAT_BIN } from "../lib/paths.js";
import { startStack } from "../lib/stack.js";

/**
 * Attachments (issue 18): upload (`zmqchat send --file`) and download (`zmqchat download`) of one
 * file, in MiB/s over the whole command (process start, login, hashing, encryption, chunks,
 * the message), beside a plain `cp` of the same file on the same machine.
 */

const SIZES = { quick: 5, full: 50 };
const MiB = 1024 * 1024;

function cli(
  home: string,
  endpoint: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ZMQCHAT_BIN, ...args], {
      env: { ...process.env, ZMQCHAT_HOME: home, ZMQCHAT_ENDPOINT: endpoint },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => {
      stdout += d;
    });
    child.stderr!.on("data", (d) => {
      stderr += d;
    });
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

export async function filesRun(ctx: BenchContext): Promise<void> {
  const mib = ctx.quick ? SIZES.quick : SIZES.full;
  const dir = mkdtempSync(join(ctx.tmp, "files-"));
  const stack = await startStack(`sqlite:${join(dir, "store.db")}`, 2, "files");
  const home = join(dir, "homes");
  try {
    for (const u of ["alice", "bob"]) {
      const r = await cli(home, stack.endpoint, ["--user", u, "register"]);
      if (r.code !== 0) throw new Error(`register ${u}: ${r.stderr}`);
    }
    const src = join(dir, "payload.bin");
    const bytes = randomBytes(mib * MiB);
    writeFileSync(src, bytes);
    const digest = createHash("sha256").update(bytes).digest("hex");

    const t0 = performance.now();
    const cp = spawnSync("cp", [src, join(dir, "copy.bin")]);
    if (cp.status !== 0) throw new Error(`cp: ${cp.stderr}`);
    const cpRate = mib / ((performance.now() - t0) / 1000);

    const t1 = performance.now();
    const up = await cli(home, stack.endpoint, ["--user", "alice", "send", "bob", "--file", src]);
    if (up.code !== 0) throw new Error(`send --file: ${up.stderr}`);
    const upRate = mib / ((performance.now() - t1) / 1000);

    const out = join(dir, "down.bin");
    const t2 = performance.now();
    const down = await cli(home, stack.endpoint, [
      "--user",
      "bob",
      "download",
      up.stdout.trim(),
      "--out",
      out,
    ]);
    if (down.code !== 0) throw new Error(`download: ${down.stderr}`);
    const downRate = mib / ((performance.now() - t2) / 1000);
    if (createHash("sha256").update(readFileSync(out)).digest("hex") !== digest)
      throw new Error("the downloaded file differs from the one sent");

    const meta = (label: string) => ({ workload: "files", label, unit: "MiB/s", better: "higher" as const });
    ctx.results.add("files.cp", cpRate, meta(`cp of a ${mib} MiB file (same machine)`));
    ctx.results.add("files.upload", upRate, {
      ...meta(`zmqchat send --file, ${mib} MiB (whole command: start, login, encrypt, upload, message)`),
      baseline: "files.cp",
    });
    ctx.results.add("files.download", downRate, {
      ...meta(`zmqchat download, ${mib} MiB (whole command: start, login, sync, fetch, decrypt, check)`),
      baseline: "files.cp",
    });
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
