import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { sleep } from "./clock.js";
import { stopChild, track } from "./processes.js";

export interface BenchInfluxd {
  pid: number;
  version: string;
  storeUrl(db: string): string;
  stop(): Promise<void>;
}

/** Why InfluxDB figures cannot be measured here, or null when influxd is installed. */
export function influxdMissing(): string | null {
  try {
    execFileSync("influxd", ["version"], { stdio: ["ignore", "pipe", "pipe"] });
    return null;
  } catch {
    return "influxd is not installed (Debian package influxdb)";
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * A private influxd (1.x, as Debian ships it) on free loopback ports with its data under
 * `dir`, configured as the integration tests run it (fsync on every write batch).
 */
export async function startInfluxd(dir: string): Promise<BenchInfluxd> {
  for (const sub of ["meta", "data", "wal"]) mkdirSync(join(dir, sub), { recursive: true });
  const version = execFileSync("influxd", ["version"]).toString().trim();
  const logPath = join(dir, "influxd.log");
  let lastError = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const http = await freePort();
    const rpc = await freePort();
    const conf = join(dir, "influxd.conf");
    writeFileSync(
      conf,
      `reporting-disabled = true
bind-address = "127.0.0.1:${rpc}"
[meta]
  dir = "${join(dir, "meta")}"
  logging-enabled = false
[data]
  dir = "${join(dir, "data")}"
  wal-dir = "${join(dir, "wal")}"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${http}"
  log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
`,
    );
    const fd = openSync(logPath, "a");
    const child: ChildProcess = spawn("influxd", ["-config", conf], { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    track(child, "influxd");
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const res = await fetch(`http://127.0.0.1:${http}/ping`, { signal: AbortSignal.timeout(1000) });
        if (res.status === 204) {
          return {
            pid: child.pid!,
            version,
            storeUrl: (db) => `influx://127.0.0.1:${http}/${db}`,
            stop: () => stopChild(child, 10_000),
          };
        }
      } catch {
        // not listening yet
      }
      await sleep(20);
    }
    await stopChild(child);
    lastError = readFileSync(logPath, "utf8").slice(-2000);
    if (!/address already in use/.test(lastError)) break;
  }
  throw new Error(`influxd did not start:\n${lastError}`);
}
