import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Command } from "commander";
import { Balancer } from "../../balancer/balancer.js";
import { balancerMetrics } from "../../balancer/metrics.js";
import { rateLimitsFromEnv } from "../../balancer/rate-limit.js";
import { parseDuration } from "../../core/config/duration.js";
import { ZmqchatError } from "../../core/errors.js";
import { startOpsServer } from "../../core/ops.js";
import { serverQuotasFromEnv } from "../../server/limits.js";
import { serverMetrics } from "../../server/metrics.js";
import { ChatServer } from "../../server/server.js";
import { openStore } from "../../server/store/index.js";
import { makeCurveKeys, Z85_KEY } from "../../transports/zeromq/index.js";
import { ZeromqWorkerTransport } from "../../transports/zeromq/worker.js";
import { readAllowList, readCurveKeys, writeCurveKeys } from "../curve.js";
import type { Io } from "../io.js";
import { makeLogger } from "../logging.js";
import { packageVersion } from "../version.js";

export interface ServerFlags {
  balancer: string;
  store: string;
  secretFile?: string;
  httpPort?: string;
  httpHost: string;
  id?: string;
  logLevel: string;
  curveKeys?: string;
  curveBalancerKey?: string;
  sessionTtl?: string;
}

/** The cluster secret: ZMQCHAT_CLUSTER_SECRET, or the contents of --secret-file. Never a flag value. */
export function clusterSecret(secretFile: string | undefined, env: NodeJS.ProcessEnv): Buffer {
  const text = secretFile ? readSecretFile(secretFile) : env.ZMQCHAT_CLUSTER_SECRET;
  if (!text) {
    throw new ZmqchatError("usage", "no cluster secret: set ZMQCHAT_CLUSTER_SECRET or pass --secret-file", {
      hint: "every server of a cluster needs the same secret (at least 16 bytes)",
    });
  }
  const secret = Buffer.from(text.trim());
  if (secret.length < 16) throw new ZmqchatError("usage", "the cluster secret must be at least 16 bytes");
  return secret;
}

function readSecretFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new ZmqchatError("usage", `cannot read the secret file ${path}`, { cause });
  }
}

function port(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ZmqchatError("usage", `${what} must be a port number, not ${text}`);
  return n;
}

export async function serverCommand(_cmd: Command, io: Io, flags: ServerFlags): Promise<void> {
  const version = packageVersion();
  const log = makeLogger("server", flags.logLevel);
  const secret = clusterSecret(flags.secretFile, process.env);
  const endpoints = flags.balancer.split(",").map((e) => e.trim());
  const httpPort = port(flags.httpPort, "--http-port");
  const { registry, metrics, store: storeMetrics } = serverMetrics();
  const store = await openStore(flags.store, process.env, { metrics: storeMetrics });
  const id = flags.id ?? `${hostname()}-${process.pid}`;
  if (Boolean(flags.curveKeys) !== Boolean(flags.curveBalancerKey)) {
    throw new ZmqchatError("usage", "CURVE needs both --curve-keys (this server's) and --curve-balancer-key");
  }
  const curve = flags.curveKeys
    ? { keys: readCurveKeys(flags.curveKeys), serverKey: flags.curveBalancerKey! }
    : undefined;
  if (curve && !Z85_KEY.test(curve.serverKey))
    throw new ZmqchatError("usage", "--curve-balancer-key is not a Z85 public key");
  const ttlText = flags.sessionTtl ?? process.env.ZMQCHAT_SESSION_TTL;
  const sessionTtlMs = ttlText === undefined ? undefined : parseDuration(ttlText);
  if (sessionTtlMs !== undefined && sessionTtlMs < 1000)
    throw new ZmqchatError("usage", "--session-ttl must be at least 1s");
  const server = await ChatServer.start({
    sessionTtlMs,
    transport: new ZeromqWorkerTransport({ version, curve }),
    endpoints,
    store,
    secret,
    log,
    id,
    metrics,
    quotas: serverQuotasFromEnv(process.env),
  });
  let ready = true;
  const ops =
    httpPort === undefined
      ? null
      : await startOpsServer(flags.httpHost, httpPort, {
          health: () => ({ ready, version, id, inFlight: server.pending }),
          metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
        });
  log.info(
    {
      id,
      balancers: endpoints,
      store: flags.store.replace(/\/\/[^@]*@/, "//"),
      version,
      httpPort: ops?.port,
    },
    "server ready",
  );
  await io.untilInterrupted();
  ready = false;
  log.info({ inFlight: server.pending }, "stopping: finishing requests in progress");
  await server.stop();
  await ops?.close();
  log.info({}, "server stopped");
}

export interface BalancerFlags {
  bind: string;
  port: string;
  publicHost?: string;
  httpPort?: string;
  httpHost: string;
  logLevel: string;
  curveKeys?: string;
  curveServers?: string;
  curveClients?: string;
}

export async function balancerCommand(_cmd: Command, io: Io, flags: BalancerFlags): Promise<void> {
  const version = packageVersion();
  const log = makeLogger("balancer", flags.logLevel);
  const base = port(flags.port, "--port")!;
  const at = (offset: number) => `tcp://${flags.bind}:${base === 0 ? 0 : base + offset}`;
  const httpPort = port(flags.httpPort, "--http-port");
  const { registry, metrics } = balancerMetrics();
  if (flags.curveKeys && !flags.curveServers) {
    throw new ZmqchatError(
      "usage",
      "with --curve-keys, list the servers' public keys in --curve-servers FILE",
    );
  }
  const curve = flags.curveKeys
    ? {
        keys: readCurveKeys(flags.curveKeys),
        allowServers: readAllowList(flags.curveServers!),
        allowClients: flags.curveClients ? readAllowList(flags.curveClients) : null,
      }
    : undefined;
  const balancer = await Balancer.start({
    curve,
    endpoints: { frontend: at(0), backend: at(1), pubIn: at(2), pubOut: at(3) },
    publicHost: flags.publicHost ?? null,
    version,
    log,
    metrics,
    rateLimits: rateLimitsFromEnv(process.env),
  });
  const ops =
    httpPort === undefined
      ? null
      : await startOpsServer(flags.httpHost, httpPort, {
          health: () => ({ ready: true, version, liveServers: balancer.liveServers() }),
          metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
        });
  io.out(
    JSON.stringify({
      event: "balancer_ready",
      endpoints: balancer.bound,
      httpPort: ops?.port ?? null,
      version,
    }),
  );
  await io.untilInterrupted();
  balancer.stop();
  await ops?.close();
  log.info({}, "balancer stopped");
}

/** Writes a new CURVE key pair file (mode 0600) and prints its public key. */
export async function curveKeygenCommand(_cmd: Command, io: Io, file: string): Promise<void> {
  if (existsSync(file)) throw new ZmqchatError("conflict", `${file} exists; not overwriting a key`);
  const keys = makeCurveKeys();
  writeCurveKeys(file, keys);
  io.out(keys.publicKey);
}
