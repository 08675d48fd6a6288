import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { REPO_ROOT } from "./paths.js";

const ensureScript = join(REPO_ROOT, "scripts", "ensure-influxd.sh");

export interface Influxd {
  /** The running influxd's process id (a new one after `restart`). */
  readonly pid: number;
  /** What `influxd version` says. */
  version: string;
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  /** A store URL for `openStore`: `influx://127.0.0.1:PORT/DB`. */
  storeUrl(db: string): string;
  /** Admin credentials when started with `auth: true`. */
  admin: { user: string; password: string } | null;
  /** The influxd log so far (for failure messages). */
  log(): string;
  /** SIGKILLs influxd (no clean shutdown) and waits until it is gone. */
  kill(): Promise<void>;
  /** Starts influxd again on the same ports and data (after kill, or stops it first). */
  restart(): Promise<void>;
  /** Stops influxd and deletes its data. */
  stop(): Promise<void>;
}

export interface InfluxdOptions {
  /** Turn on HTTP auth and create an admin user (returned in `admin`). */
  auth?: boolean;
  /** Deadline for influxd to answer /ping, per start. */
  startTimeoutMs?: number;
  /** Keep the data here (made when missing, left in place by `stop`); default: a new temporary directory that `stop` deletes. */
  dir?: string;
  /** Called with each influxd process started (the bench tracks them to kill them should it crash). */
  onSpawn?: (child: ChildProcess) => void;
}

/** Why influxd cannot be started here, or null when it is installed (the bench reports InfluxDB figures as missing). */
export function influxdMissing(): string | null {
  try {
    execFileSync("influxd", ["version"], { stdio: ["ignore", "pipe", "pipe"] });
    return null;
  } catch {
    return "influxd is not installed (Debian package influxdb)";
  }
}

let ensured = false;

/** Makes sure `influxd` exists, installing it through scripts/ensure-influxd.sh when possible. */
function ensureInfluxd(): void {
  if (ensured) return;
  try {
    execFileSync("bash", [ensureScript], { stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(
      `influxd is required for the InfluxDB store tests and could not be found or installed:\n${e.stderr?.toString() ?? e.message}`,
    );
  }
  ensured = true;
}

/** A port that was free a moment ago on loopback (the OS picks it). */
async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === "object") resolvePort(addr.port);
        else reject(new Error("no port"));
      });
    });
  });
}

function config(dir: string, httpPort: number, rpcPort: number, auth: boolean): string {
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

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
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = ${auth}
  log-enabled = false
  pprof-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
`;
}

/**
 * Starts a private influxd (1.x, as Debian ships it) on free loopback ports, configured as the
 * tests and the bench run it (fsync on every write batch), with its data in a temporary
 * directory, and waits (polling /ping with a deadline) until it answers. Fails loudly when
 * influxd is missing. The one influxd launcher of the tests and the bench.
 */
export async function startInfluxd(options: InfluxdOptions = {}): Promise<Influxd> {
  ensureInfluxd();
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "zmqchat-influxd-"));
  for (const sub of ["meta", "data", "wal"]) mkdirSync(join(dir, sub), { recursive: true });
  const version = execFileSync("influxd", ["version"]).toString().trim();
  const logPath = join(dir, "influxd.log");
  const configPath = join(dir, "influxd.conf");
  const auth = options.auth ?? false;
  const admin = auth ? { user: "admin", password: "s3cret-'\"pw" } : null;

  let httpPort = 0;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const readLog = () => {
    try {
      return readFileSync(logPath, "utf8");
    } catch {
      return "";
    }
  };

  const launch = async (): Promise<void> => {
    const fd = openSync(logPath, "a");
    const proc = spawn("influxd", ["-config", configPath], { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    child = proc;
    options.onSpawn?.(proc);
    let alive = true;
    exited = new Promise((res) => {
      proc.once("exit", () => {
        alive = false;
        res();
      });
      proc.once("error", () => {
        alive = false;
        res();
      });
    });
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (!alive) throw new Error(`influxd exited during start-up; its log:\n${readLog().slice(-4000)}`);
      try {
        const res = await fetch(`http://127.0.0.1:${httpPort}/ping`, { signal: AbortSignal.timeout(1000) });
        if (res.status === 204) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        await exited;
        throw new Error(
          `influxd did not answer /ping within ${startTimeoutMs} ms; its log:\n${readLog().slice(-4000)}`,
        );
      }
      await delay(20);
    }
  };

  // A port found free can be taken before influxd binds it: try a few fresh pairs.
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    httpPort = await freePort();
    const rpcPort = await freePort();
    writeFileSync(configPath, config(dir, httpPort, rpcPort, auth));
    try {
      await launch();
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
      if (!/address already in use/.test(readLog())) break;
    }
  }
  if (lastError) {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw lastError;
  }

  const url = `http://127.0.0.1:${httpPort}`;
  if (admin) {
    // With auth on and no users yet, influxd lets exactly this statement through.
    const q = `CREATE USER "${admin.user}" WITH PASSWORD '${admin.password.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}' WITH ALL PRIVILEGES`;
    const res = await fetch(`${url}/query`, {
      method: "POST",
      body: new URLSearchParams({ q }),
    });
    const text = await res.text();
    if (res.status !== 200 || text.includes('"error"'))
      throw new Error(`cannot create the influxd admin user: ${text}`);
  }

  const waitGone = async (signal: NodeJS.Signals) => {
    const proc = child as ChildProcess | null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    if (signal === "SIGKILL") {
      await exited;
      return;
    }
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };

  return {
    get pid() {
      return (child as ChildProcess | null)?.pid ?? 0;
    },
    version,
    url,
    port: httpPort,
    admin,
    storeUrl: (db) => `influx://127.0.0.1:${httpPort}/${db}`,
    log: readLog,
    kill: () => waitGone("SIGKILL"),
    restart: async () => {
      await waitGone("SIGTERM");
      await launch();
    },
    stop: async () => {
      await waitGone("SIGTERM");
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
