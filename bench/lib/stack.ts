import { startStack as startRealStack } from "../../test/helpers/stack.js";
import { track } from "./processes.js";
import { profileFlags } from "./profile.js";

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

/**
 * Starts one balancer and `servers` servers on `store` (a store URL) through the tests' stack
 * launcher (test/helpers/stack.ts), the bench's way: plaintext, unlimited, each server with
 * its metrics port, every process tracked (killed should the bench die) and, with
 * ZMQCHAT_BENCH_PROFILE, profiled; `stop` lets them exit cleanly (profiles are written then).
 */
export async function startStack(store: string, servers = 2, label = "stack"): Promise<Stack> {
  // The operator's own ZMQCHAT_* settings still win over the bench's limits, as before.
  const env = { ...UNLIMITED, ...process.env };
  const stack = await startRealStack({
    store,
    servers,
    label,
    // Plaintext, as the benchmarks were measured so far; the CURVE cost is a separate question.
    insecure: true,
    balancerArgs: ["--bind", "127.0.0.1"],
    balancerEnv: env,
    env,
    serverHttp: true,
    stopGraceMs: 3000,
    startTimeoutMs: 60_000,
    keepLines: 400,
    nodeArgs: profileFlags,
    onSpawn: (child, name) => track(child, name),
    onLine: process.env.ZMQCHAT_BENCH_DEBUG
      ? (name, l) => process.stderr.write(`[${name}] ${l}\n`)
      : undefined,
  });
  const balancerPid = stack.balancers[0]!.child.pid!;
  const serverPids = stack.servers.map((s) => s.child.pid!);
  return {
    endpoint: stack.endpoint,
    balancerPid,
    serverPids,
    pids: [balancerPid, ...serverPids],
    metricsUrls: stack.metricsUrls,
    stop: () => stack.stop(),
  };
}
