import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Command } from "commander";
import { Balancer } from "../../balancer/balancer.js";
import { balancerMetrics } from "../../balancer/metrics.js";
import { rateLimitsFromEnv } from "../../balancer/rate-limit.js";
import { parseDuration } from "../../core/config/duration.js";
import { ZmqchatError } from "../../core/errors.js";
import { startOpsServer } from "../../core/ops.js";
import { parseTopicKey, topicTagKey } from "../../core/protocol/topics.js";
import { fileLimitsFromEnv } from "../../server/blobs/files.js";
import { defaultBlobUrl, openBlobStore } from "../../server/blobs/open.js";
import { serverQuotasFromEnv } from "../../server/limits.js";
import { serverMetrics } from "../../server/metrics.js";
import { ChatServer } from "../../server/server.js";
import { openStore } from "../../server/store/index.js";
import {
  makeCurveKeys,
  parseTcpEndpoint,
  publishBalancerKey,
  unpublishBalancerKey,
  Z85_KEY,
} from "../../transports/zeromq/index.js";
import { ZeromqWorkerTransport } from "../../transports/zeromq/worker.js";
import { readAllowList, readCurveKeys, writeCurveKeys } from "../curve.js";
import { freeRun } from "../free-ports.js";
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
  insecure?: boolean;
  sessionTtl?: string;
  blobs?: string;
}

const INSECURE_WARNING =
  "INSECURE: CurveZMQ is off (--insecure): links are plaintext and any process that reaches the ports can join as a server or publisher";

/** Plaintext only on request: without CURVE keys, `--insecure` must say so. */
function requireCurveOrInsecure(hasCurve: boolean, insecure: boolean | undefined, what: string): void {
  if (hasCurve && insecure)
    throw new ZmqchatError("usage", `--insecure and --curve-keys contradict each other`);
  if (!hasCurve && !insecure) {
    throw new ZmqchatError("usage", `the ${what} runs CurveZMQ unless told otherwise: give it --curve-keys`, {
      hint: `${what === "balancer" ? "--curve-keys FILE --curve-servers FILE" : "--curve-keys FILE --curve-balancer-key KEY"} (zmqchat curve keygen FILE makes keys), or --insecure for plaintext`,
    });
  }
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
  const {
    registry,
    metrics,
    store: storeMetrics,
  } = serverMetrics({ processMetrics: httpPort !== undefined });
  const store = await openStore(flags.store, process.env, { metrics: storeMetrics });
  const blobUrl = flags.blobs ?? (process.env.ZMQCHAT_BLOBS || defaultBlobUrl(flags.store));
  const blobs = blobUrl ? await openBlobStore(blobUrl) : null;
  if (!blobs) log.warn({}, "no blob store (--blobs): this server refuses file uploads and downloads");
  const id = flags.id ?? `${hostname()}-${process.pid}`;
  if (Boolean(flags.curveKeys) !== Boolean(flags.curveBalancerKey)) {
    throw new ZmqchatError("usage", "CURVE needs both --curve-keys (this server's) and --curve-balancer-key");
  }
  requireCurveOrInsecure(Boolean(flags.curveKeys), flags.insecure, "server");
  // One key for every balancer, or one per --balancer endpoint, in the same order.
  const balancerKeys = (flags.curveBalancerKey ?? "").split(",").map((k) => k.trim());
  const curve = flags.curveKeys
    ? {
        keys: readCurveKeys(flags.curveKeys),
        serverKey: balancerKeys.length === 1 ? balancerKeys[0]! : balancerKeys,
      }
    : undefined;
  if (curve && !balancerKeys.every((k) => Z85_KEY.test(k)))
    throw new ZmqchatError(
      "usage",
      "--curve-balancer-key is not a Z85 public key (or a comma-separated list)",
    );
  if (curve && balancerKeys.length > 1 && balancerKeys.length !== endpoints.length)
    throw new ZmqchatError(
      "usage",
      "give one --curve-balancer-key for all balancers or one per --balancer endpoint",
    );
  if (!curve) log.warn({ insecure: true }, INSECURE_WARNING);
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
    blobs,
    fileLimits: fileLimitsFromEnv(process.env),
  });
  let ready = true;
  const ops =
    httpPort === undefined
      ? null
      : await startOpsServer(flags.httpHost, httpPort, {
          health: () => ({ ready, version, id, inFlight: server.pending, insecure: !curve }),
          metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
        });
  log.info(
    {
      id,
      balancers: endpoints,
      store: flags.store.replace(/\/\/[^@]*@/, "//"),
      blobs: blobUrl,
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
  topicKeyFile?: string;
  /** false with --no-legacy-subscribers: PORT+3 (the XPUB) is not bound. */
  legacySubscribers?: boolean;
  insecure?: boolean;
}

/** The delivery topics' tag key from --topic-key-file (zmqchat topic-key writes it). */
function readTopicKey(file: string): Buffer {
  const key = parseTopicKey(readSecretFile(file));
  if (!key)
    throw new ZmqchatError("usage", `${file} does not hold a topic key (64 hex characters)`, {
      hint: "zmqchat topic-key --secret-file CLUSTER_SECRET_FILE > FILE makes it",
    });
  return key;
}

/** `zmqchat topic-key`: the delivery topics' tag key of a cluster secret, for its balancers. */
export function topicKeyCommand(io: Io, flags: { secretFile?: string }): void {
  io.out(topicTagKey(clusterSecret(flags.secretFile, process.env)).toString("hex"));
}

export async function balancerCommand(_cmd: Command, io: Io, flags: BalancerFlags): Promise<void> {
  const version = packageVersion();
  const log = makeLogger("balancer", flags.logLevel);
  const asked = port(flags.port, "--port")!;
  const httpPort = port(flags.httpPort, "--http-port");
  const { registry, metrics } = balancerMetrics({ processMetrics: httpPort !== undefined });
  if (flags.curveKeys && !flags.curveServers) {
    throw new ZmqchatError(
      "usage",
      "with --curve-keys, list the servers' public keys in --curve-servers FILE",
    );
  }
  requireCurveOrInsecure(Boolean(flags.curveKeys), flags.insecure, "balancer");
  const curve = flags.curveKeys
    ? {
        keys: readCurveKeys(flags.curveKeys),
        allowServers: readAllowList(flags.curveServers!),
        allowClients: flags.curveClients ? readAllowList(flags.curveClients) : null,
      }
    : undefined;
  if (!curve) log.warn({ insecure: true }, INSECURE_WARNING);
  const topicKey = flags.topicKeyFile ? readTopicKey(flags.topicKeyFile) : null;
  if (!topicKey)
    log.warn(
      { topicKey: false },
      "no --topic-key-file: any full-length topic may be subscribed to, so a client can fill this balancer's and the servers' memory with made-up subscriptions",
    );
  const start = (base: number) => {
    const at = (offset: number) => `tcp://${flags.bind}:${base + offset}`;
    return Balancer.start({
      curve,
      endpoints: {
        frontend: at(0),
        backend: at(1),
        pubIn: at(2),
        pubOut: flags.legacySubscribers === false ? "" : at(3),
      },
      publicHost: flags.publicHost ?? null,
      version,
      log,
      metrics,
      rateLimits: rateLimitsFromEnv(process.env),
      topicKey,
    });
  };
  // --port 0: four free ports in a row, PORT to PORT+3 as the help says (another process may
  // take one between the look and the bind: look again).
  let balancer: Balancer | null = null;
  for (let attempt = 0; !balancer; attempt++) {
    try {
      balancer = await start(
        asked === 0 ? await freeRun(flags.bind === "*" ? "0.0.0.0" : flags.bind, 4) : asked,
      );
    } catch (err) {
      const inUse = err instanceof ZmqchatError && /in use/i.test(String((err.cause as Error)?.message));
      if (asked !== 0 || !inUse || attempt >= 10) throw err;
    }
  }
  const ops =
    httpPort === undefined
      ? null
      : await startOpsServer(flags.httpHost, httpPort, {
          health: () => ({
            ready: true,
            version,
            liveServers: balancer.liveServers(),
            leadServer: balancer.leadServer(),
            insecure: !curve,
          }),
          metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
        });
  // Clients of this user on this machine find the key here and pin it with no flag (see README).
  const local = localEndpoints(balancer.bound.frontend);
  try {
    for (const e of local) {
      if (curve) publishBalancerKey(e, curve.keys.publicKey);
      else unpublishBalancerKey(e);
    }
  } catch (err) {
    // A sandboxed service may have no writable runtime directory: its clients are configured instead.
    log.warn({ err: (err as Error).message }, "could not publish the balancer key for local clients");
  }
  io.out(
    JSON.stringify({
      event: "balancer_ready",
      endpoints: balancer.bound,
      httpPort: ops?.port ?? null,
      version,
      insecure: !curve,
    }),
  );
  await io.untilInterrupted();
  try {
    if (curve) for (const e of local) unpublishBalancerKey(e, curve.keys.publicKey);
  } catch {
    // nothing was published
  }
  balancer.stop();
  await ops?.close();
  log.info({}, "balancer stopped");
}

/** The client endpoints a process on this machine may use for a bound frontend. */
function localEndpoints(bound: string): string[] {
  const { host, port } = parseTcpEndpoint(bound);
  const loopback = [`tcp://127.0.0.1:${port}`, `tcp://localhost:${port}`];
  if (host === "0.0.0.0" || host === "*" || host === "127.0.0.1") return [...new Set([bound, ...loopback])];
  return [bound];
}

/** Writes a new CURVE key pair file (mode 0600) and prints its public key. */
export async function curveKeygenCommand(_cmd: Command, io: Io, file: string): Promise<void> {
  if (existsSync(file)) throw new ZmqchatError("conflict", `${file} exists; not overwriting a key`);
  const keys = makeCurveKeys();
  writeCurveKeys(file, keys);
  io.out(keys.publicKey);
}
