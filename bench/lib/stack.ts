import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { sleep } from "./clock.js";
import { ZMQCHAT_BIN } from "./paths.js";
import { stopChild, track } from "./processes.js";
import { profileFlags } from "./profile.js";

export const BENCH_SECRET = "bench-cluster-secret-0123456789abcdef";

interface Proc {
  name: string;
  child: ChildProcess;
  output: string[];
}

/** A real balancer and its servers on loopback, as `zmqchat balancer` / `zmqchat server` run them. */
export interface Stack {
  /** The balancer's client endpoint (its ROUTER frontend). */
  endpoint: string;
  balancerPid: number;
  serverPids: number[];
  /** Balancer first, then the servers. */
  pids: number[];
  /** Prometheus endpoints: the balancer's, then each server's. */
  metricsUrls: string[];
  stop(): Promise<void>;
}

/** A loopback port that was free a moment ago (for the servers' ops HTTP port). */
function freePort(): Promise<number> {
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
 * The benchmark measures what the service can carry, so its clients (a few processes, each
 * speaking for many users) are not held to the per-connection, per-sender and registration
 * limits a real client meets (balancer/rate-limit.ts, server/limits.ts).
 */
const UNLIMITED: NodeJS.ProcessEnv = {
  ZMQCHAT_RATE_CONNECTION: "1000000/s:1000000",
  ZMQCHAT_RATE_CONNECTION_BYTES: "100000000000/s:100000000000",
  ZMQCHAT_RATE_SESSION: "1000000/s:1000000",
  ZMQCHAT_RATE_REGISTRATIONS: "1000000/s:1000000",
  ZMQCHAT_QUOTA_MESSAGES_PER_MINUTE: "100000000",
  ZMQCHAT_QUOTA_BYTES_PER_MINUTE: "100000000000",
  ZMQCHAT_QUOTA_GROUPS_PER_USER: "1000000",
};

function launch(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [...profileFlags(name), ZMQCHAT_BIN, ...args], {
    env: { ...UNLIMITED, ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(child, name);
  const output: string[] = [];
  const keep = (l: string) => {
    output.push(l);
    if (output.length > 400) output.splice(0, 200);
    if (process.env.ZMQCHAT_BENCH_DEBUG) process.stderr.write(`[${name}] ${l}\n`);
  };
  createInterface({ input: child.stdout! }).on("line", keep);
  createInterface({ input: child.stderr! }).on("line", keep);
  return { name, child, output };
}

async function waitFor<T>(
  what: string,
  proc: Proc,
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (proc.child.exitCode !== null || proc.child.signalCode !== null)
      throw new Error(`${proc.name} exited while waiting for ${what}:\n${proc.output.slice(-20).join("\n")}`);
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}:\n${proc.output.slice(-20).join("\n")}`);
    await sleep(25);
  }
}

/** Starts one balancer and `servers` servers on `store` (a store URL), and waits until all are live. */
export async function startStack(store: string, servers = 2, label = "stack"): Promise<Stack> {
  const procs: Proc[] = [];
  const serverPorts: number[] = [];
  const stopAll = async () => {
    await Promise.all(procs.map((p) => stopChild(p.child)));
  };
  try {
    const balancer = launch(`${label}-balancer`, [
      "balancer",
      "--bind",
      "127.0.0.1",
      "--port",
      "0",
      "--http-port",
      "0",
      "--log-level",
      "warn",
      // Plaintext, as the benchmarks were measured so far; the CURVE cost is a separate question.
      "--insecure",
    ]);
    procs.push(balancer);
    const ready = await waitFor("the balancer to be ready", balancer, () => {
      const line = balancer.output.find((l) => l.includes('"balancer_ready"'));
      return line
        ? (JSON.parse(line) as { endpoints: { frontend: string; backend: string }; httpPort: number })
        : undefined;
    });
    for (let i = 1; i <= servers; i++) {
      const httpPort = await freePort();
      serverPorts.push(httpPort);
      procs.push(
        launch(
          `${label}-server-${i}`,
          [
            "server",
            "--balancer",
            ready.endpoints.backend,
            "--store",
            store,
            "--id",
            `bench-${i}`,
            "--http-host",
            "127.0.0.1",
            "--http-port",
            String(httpPort),
            "--log-level",
            "warn",
            "--insecure",
          ],
          { ZMQCHAT_CLUSTER_SECRET: BENCH_SECRET },
        ),
      );
    }
    const liveServers = async (): Promise<true | undefined> => {
      try {
        const res = await fetch(`http://127.0.0.1:${ready.httpPort}/healthz`);
        const body = (await res.json()) as { liveServers?: number };
        return (body.liveServers ?? 0) >= servers ? true : undefined;
      } catch {
        return undefined;
      }
    };
    await waitFor(`${servers} live servers`, balancer, liveServers, 60_000).catch((err: Error) => {
      throw new Error(
        `${err.message}\n${procs
          .slice(1)
          .map((p) => `${p.name}: ${p.output.slice(-10).join("\n")}`)
          .join("\n")}`,
      );
    });
    return {
      endpoint: ready.endpoints.frontend,
      balancerPid: balancer.child.pid!,
      serverPids: procs.slice(1).map((p) => p.child.pid!),
      pids: procs.map((p) => p.child.pid!),
      metricsUrls: [ready.httpPort, ...serverPorts].map((port) => `http://127.0.0.1:${port}/metrics`),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
