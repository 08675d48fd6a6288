import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, release, totalmem, type } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import * as zmq from "zeromq";
import { REPO_ROOT } from "./paths.js";

function pkgVersion(name: string): string {
  try {
    return (
      JSON.parse(readFileSync(join(REPO_ROOT, "node_modules", name, "package.json"), "utf8")) as {
        version: string;
      }
    ).version;
  } catch {
    return "unknown";
  }
}

function gitCommit(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: REPO_ROOT }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: REPO_ROOT })
      .toString()
      .trim();
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return "unknown";
  }
}

function loadAverage(): number[] {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

/** The machine and the versions of everything measured, for the results file. */
export function machineInfo(influxd: string | null): Record<string, unknown> {
  const cpu = cpus();
  const db = new Database(":memory:");
  const sqlite = (db.prepare("select sqlite_version() as v").get() as { v: string }).v;
  db.close();
  const zmqchat = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  return {
    machine: {
      os: `${type()} ${release()}`,
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? "unknown",
      memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
      loadAverageAtStart: loadAverage(),
    },
    versions: {
      zmqchat: zmqchat.version,
      commit: gitCommit(),
      node: process.version,
      v8: process.versions.v8,
      openssl: process.versions.openssl,
      "zeromq.js": pkgVersion("zeromq"),
      libzmq: zmq.version,
      "better-sqlite3": pkgVersion("better-sqlite3"),
      sqlite,
      "@influxdata/influxdb-client": pkgVersion("@influxdata/influxdb-client"),
      influxd: influxd ?? "not installed",
      ink: pkgVersion("ink"),
      react: pkgVersion("react"),
    },
  };
}
