import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CLUSTER_SECRET, waitFor } from "../helpers/stack.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  scripts: Record<string, string>;
};

/** What the package is built from; tests, benchmarks and Ansible stay out of it. */
const SOURCES = [
  "bin",
  "core",
  "transports",
  "server",
  "balancer",
  "tui",
  "scripts/bundle.mjs",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "README.md",
];

/**
 * The package as users get it: `npm pack` of a copy of the sources (so `prepare` builds dist/
 * there, not in the tree other tests are running from), installed globally into a temporary
 * prefix (this compiles better-sqlite3, or under `npm test` unpacks the build scripts/seed-prebuild.cjs
 * cached), then run by name from an unrelated directory.
 */
describe("npm pack, npm install -g, zmqchat from anywhere", () => {
  let dir: string;
  let tgz: string;
  let files: string[];
  let elsewhere: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "zmqchat-package-"));
    const src = join(dir, "src");
    mkdirSync(src);
    for (const s of SOURCES) cpSync(join(ROOT, s), join(src, s), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(src, "node_modules"), "dir");
    const packed = await run("npm", ["pack", "--json", "--pack-destination", dir], {
      cwd: src,
      maxBuffer: 64 * 1024 * 1024,
    });
    const report = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    tgz = join(dir, report[0]!.filename);
    files = report[0]!.files.map((f) => f.path);
    const prefix = join(dir, "prefix");
    await run("npm", ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", tgz], {
      cwd: dir,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere);
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ZMQCHAT_")));
    env = { ...clean, PATH: `${join(prefix, "bin")}${delimiter}${process.env.PATH ?? ""}` };
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("builds dist/ when packing, and carries dist/ only (no sources, tests or source maps)", () => {
    assert.ok(pkg.scripts.prepare ?? pkg.scripts.prepack, "a prepare or prepack script builds dist/");
    assert.ok(existsSync(tgz));
    assert.ok(files.includes("dist/bin/zmqchat.js"));
    assert.ok(files.includes("package.json") && files.includes("README.md"));
    const stray = files.filter(
      (f) => !(f === "package.json" || f === "README.md" || f === "LICENSE" || /^dist\/.*\.js$/.test(f)),
    );
    assert.deepEqual(stray, [], "only compiled JavaScript, package.json and README");
    assert.deepEqual(
      files.filter((f) => /^dist\/(test|bench)\//.test(f)),
      [],
    );
    for (const dirName of ["bin", "core", "transports", "server", "balancer", "tui"]) {
      assert.ok(
        files.some((f) => f.startsWith(`dist/${dirName}/`)),
        `dist/${dirName} is in the package`,
      );
    }
  });

  it("runs `zmqchat --version` and `zmqchat --help` by name from another directory", async () => {
    const version = await run("zmqchat", ["--version"], { cwd: elsewhere, env });
    assert.equal(version.stdout.trim(), pkg.version);
    const help = await run("zmqchat", ["--help"], { cwd: elsewhere, env });
    assert.match(help.stdout, /^Usage: zmqchat /);
    for (const command of ["send", "history", "search", "config", "completion", "server", "balancer"]) {
      assert.match(help.stdout, new RegExp(`\\n {2}${command}\\b`), command);
    }
    const completion = await run("zmqchat", ["completion", "bash"], { cwd: elsewhere, env });
    assert.match(completion.stdout, /complete -F _zmqchat zmqchat/);
  });

  it("loads its native modules: an installed server opens its SQLite store and ZeroMQ sockets", async () => {
    const child = spawn(
      "zmqchat",
      [
        "server",
        "--store",
        `sqlite:${join(elsewhere, "store.db")}`,
        "--balancer",
        "tcp://127.0.0.1:9",
        "--http-port",
        "0",
        "--log-level",
        "info",
        // Only the native modules are under test here; the service plane has its own tests.
        "--insecure",
      ],
      {
        cwd: elsewhere,
        env: { ...env, ZMQCHAT_CLUSTER_SECRET: CLUSTER_SECRET },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on("line", (l) => lines.push(l));
    createInterface({ input: child.stderr }).on("line", (l) => lines.push(l));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const ready = await waitFor("the installed server to be ready", () => {
        const l = lines.find((x) => x.includes('"server ready"'));
        return l ? (JSON.parse(l) as { httpPort: number }) : null;
      });
      const res = await fetch(`http://127.0.0.1:${ready.httpPort}/healthz`);
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { version: string }).version, pkg.version);
      child.kill("SIGTERM");
      assert.equal(await exited, 0, lines.join("\n"));
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
