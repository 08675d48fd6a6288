import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { topicTagKey } from "../../core/protocol/topics.js";
import { type CurveKeys, makeCurveKeys } from "../../transports/zeromq/index.js";
import { type CliResult, runCli, ZMQCHAT_BIN } from "./cli.js";

export const CLUSTER_SECRET = "integration-test-secret-0123456789";

export interface StackProcess {
  /** `LABEL-balancer` (`LABEL-balancer-N` from the second on) or `LABEL-server-N`. */
  name: string;
  child: ChildProcess;
  output: string[];
}

/** How the stack's processes are started, watched and told apart (the bench sets these). */
interface LaunchOptions {
  /** Node flags before the CLI, per process name (the bench's CPU profiles). */
  nodeArgs?: (name: string) => string[];
  /** Called with each process started. */
  onSpawn?: (child: ChildProcess, name: string) => void;
  /** Called with each line a process writes. */
  onLine?: (name: string, line: string) => void;
  /** Keep about this many of the latest output lines per process; default all. */
  keepLines?: number;
}

/** The CURVE keys of a helper stack: the balancers' pair and the listed servers' pairs. */
export interface StackCurve {
  balancer: CurveKeys;
  balancerFile: string;
  /** With `keyPerBalancer`: balancer i's own pair and file (else every entry is `balancer`). */
  balancers: Array<{ keys: CurveKeys; file: string }>;
  /** Listed servers' key pairs and their files; servers started by the helper take them in turn. */
  servers: Array<{ keys: CurveKeys; file: string }>;
  serversAllow: string;
}

/** Key pair files for a stack under `dir` (0700; files 0600), as `zmqchat up` makes them. */
function makeStackCurve(dir: string, balancers: number, servers = 4): StackCurve {
  const curveDir = join(dir, "curve");
  mkdirSync(curveDir, { recursive: true, mode: 0o700 });
  const write = (name: string, keys: CurveKeys) => {
    const file = join(curveDir, name);
    writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
    return file;
  };
  const balancer = makeCurveKeys();
  const list = Array.from({ length: servers }, (_, i) => {
    const keys = makeCurveKeys();
    return { keys, file: write(`server-${i + 1}.curve`, keys) };
  });
  const serversAllow = join(curveDir, "servers.allow");
  writeFileSync(serversAllow, `${list.map((s) => s.keys.publicKey).join("\n")}\n`, { mode: 0o600 });
  const balancerFile = write("balancer.curve", balancer);
  const own = Array.from({ length: balancers }, (_, i) => {
    if (i === 0) return { keys: balancer, file: balancerFile };
    const keys = makeCurveKeys();
    return { keys, file: write(`balancer-${i + 1}.curve`, keys) };
  });
  return { balancer, balancerFile, balancers: own, servers: list, serversAllow };
}

const sets = (args: string[]) => args.includes("--curve-keys") || args.includes("--insecure");

export interface RealStack {
  /** The stack's own CURVE keys; null when it runs `insecure` or on keys a test passed. */
  curve: StackCurve | null;
  /**
   * Options for a raw zeromq socket of a test: as a client (a fresh device key pinning the
   * balancer's) or as a listed server; none on an insecure stack.
   */
  socketSecurity(role: "client" | "server"): Record<string, unknown>;
  /** The balancers' client endpoints, comma-separated, as `--endpoint` takes them. */
  endpoint: string;
  endpoints: string[];
  backends: string[];
  /** The balancers' ops HTTP ports (/healthz, /metrics). */
  httpPorts: number[];
  /** Prometheus endpoints: each balancer's, then (with `serverHttp`) each server's. */
  metricsUrls: string[];
  dir: string;
  store: string;
  balancers: StackProcess[];
  servers: StackProcess[];
  startServer(extraArgs?: string[]): Promise<StackProcess>;
  /** Starts balancer `index` again on its ports (needs `fixedPorts`). */
  restartBalancer(index: number): Promise<void>;
  /** Runs the CLI as `user` with this stack's endpoint and a home of the user's own. */
  cli(
    user: string,
    args: string[],
    opts?: { stdin?: string; home?: string; endpoint?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv },
  ): Promise<CliResult>;
  balancerHealth(index?: number): Promise<{ liveServers: number; leadServer: string | null }>;
  /**
   * The server balancer `index` sends requests to first (its lead, balancer/dispatch.ts): the one
   * a fault test kills or stops to hit the requests in flight. Throws before the first request.
   */
  leadServer(index?: number): Promise<StackProcess>;
  stop(): Promise<void>;
}

function launch(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  how: LaunchOptions = {},
): StackProcess {
  const child = spawn(process.execPath, [...(how.nodeArgs?.(name) ?? []), ZMQCHAT_BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  how.onSpawn?.(child, name);
  const output: string[] = [];
  const keep = (l: string) => {
    output.push(l);
    if (how.keepLines !== undefined && output.length > how.keepLines) output.splice(0, output.length >> 1);
    how.onLine?.(name, l);
  };
  createInterface({ input: child.stdout! }).on("line", keep);
  createInterface({ input: child.stderr! }).on("line", keep);
  return { name, child, output };
}

/** A port the OS gives for the asking (free now; another process may take it before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** Ends a process: SIGKILL at once, or SIGTERM and SIGKILL after `graceMs`; resolves when it has exited. */
function stopProcess(p: StackProcess, graceMs?: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
    const timer = graceMs === undefined ? null : setTimeout(() => p.child.kill("SIGKILL"), graceMs);
    p.child.once("exit", () => {
      if (timer) clearTimeout(timer);
      resolve();
    });
    p.child.kill(graceMs === undefined ? "SIGKILL" : "SIGTERM");
  });
}

/**
 * Waits for a condition, polling; throws with `what` when the deadline passes. The deadline only
 * catches a hang: generous, as processes start slowly while other test files run alongside.
 */
export async function waitFor<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 60_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A base port P with P..P+3 free on loopback, for a balancer that must come back on the same ports. */
/** The id of `user`'s current device on `stack`, as `devices --json` tells it (its delivery topics are made from it). */
export async function currentDevice(stack: RealStack, user: string): Promise<string> {
  const listed = await stack.cli(user, ["devices", "--json"]);
  if (listed.code !== 0) throw new Error(`devices --json failed: ${listed.stderr}`);
  const device = listed.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; current: boolean })
    .find((d) => d.current)?.id;
  if (!device) throw new Error(`${user} has no current device`);
  return device;
}

export async function freeBasePort(): Promise<number> {
  const { createServer } = await import("node:net");
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
  for (let tries = 0; tries < 200; tries++) {
    // Below Linux's ephemeral range (32768+), so no OS-assigned port of a test running alongside
    // can take these between this check and the bind.
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = true;
    for (let p = base; p < base + 4 && ok; p++) ok = await free(p);
    if (ok) return base;
  }
  throw new Error("no four free consecutive ports");
}

async function startBalancer(
  name: string,
  port = 0,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
  how: LaunchOptions = {},
  timeoutMs?: number,
): Promise<{
  proc: StackProcess;
  frontend: string;
  backend: string;
  httpPort: number;
}> {
  const proc = launch(
    name,
    ["balancer", "--port", String(port), "--http-port", "0", "--log-level", "warn", ...extra],
    env,
    how,
  );
  // A balancer that never gets ready is killed: a child left running keeps the test file's
  // process alive after its last test, and node --test waits for it forever.
  let line: string;
  try {
    line = await waitFor(
      "the balancer to be ready",
      () => {
        const found = proc.output.find((l) => l.includes('"balancer_ready"'));
        if (!found && (proc.child.exitCode !== null || proc.child.signalCode !== null))
          throw new Error(`${name} exited before it was ready:\n${proc.output.slice(-20).join("\n")}`);
        return found;
      },
      timeoutMs,
    );
  } catch (err) {
    await stopProcess(proc);
    throw err;
  }
  const ready = JSON.parse(line) as { endpoints: { frontend: string; backend: string }; httpPort: number };
  return {
    proc,
    frontend: ready.endpoints.frontend,
    backend: ready.endpoints.backend,
    httpPort: ready.httpPort,
  };
}

/**
 * A real stack on loopback: `balancers` balancer processes (OS-picked ports) and `servers`
 * server processes attached to all of them, sharing one store. Stops everything in `stop`.
 */
export async function startStack(
  options: {
    servers?: number;
    balancers?: number;
    store?: string;
    env?: NodeJS.ProcessEnv;
    fixedPorts?: boolean;
    balancerArgs?: string[];
    /** Extra environment of the balancers (e.g. ZMQCHAT_RATE_CONNECTION). */
    balancerEnv?: NodeJS.ProcessEnv;
    serverArgs?: string[];
    /** Extra environment of CLI runs (e.g. ZMQCHAT_CURVE_SERVER_KEY). */
    cliEnv?: NodeJS.ProcessEnv;
    /**
     * Plaintext links (`--insecure`). Otherwise the stack runs CurveZMQ with keys of its own
     * (servers allow-listed; clients find the balancer's key as with `zmqchat up`), unless
     * balancerArgs / serverArgs bring their own `--curve-keys`.
     */
    insecure?: boolean;
    /** False: the balancers run without --topic-key-file (any full-length topic passes, as before tagged topics). */
    topicKey?: boolean;
    /**
     * True: the balancers bind PORT+3 for clients that subscribe there (older releases; raw SUB
     * sockets in tests). Default: --no-legacy-subscribers, as `zmqchat up` and the Ansible roles run.
     */
    legacySubscribers?: boolean;
    /** Each balancer with a key pair of its own (servers pin one key per balancer). */
    keyPerBalancer?: boolean;
    /** Names the processes (`LABEL-balancer`, `LABEL-server-N`) and the servers' ids (`LABEL-N`); default `it`. */
    label?: string;
    /** Each server serves /healthz and /metrics on a loopback port of its own (see `metricsUrls`). */
    serverHttp?: boolean;
    /** `stop` sends SIGTERM and waits this long before SIGKILL; default SIGKILL at once. */
    stopGraceMs?: number;
    /** Deadline for the balancers to be ready and the servers to be live; default `waitFor`'s, each. */
    startTimeoutMs?: number;
  } & LaunchOptions = {},
): Promise<RealStack> {
  const label = options.label ?? "it";
  const how: LaunchOptions = {
    nodeArgs: options.nodeArgs,
    onSpawn: options.onSpawn,
    onLine: options.onLine,
    keepLines: options.keepLines,
  };
  const balancerName = (i: number) => (i === 0 ? `${label}-balancer` : `${label}-balancer-${i + 1}`);
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-it-"));
  const nBalancers = options.balancers ?? 1;
  const ownCurve =
    options.insecure || sets(options.balancerArgs ?? [])
      ? null
      : makeStackCurve(dir, options.keyPerBalancer ? nBalancers : 1);
  // The balancers admit only topics the servers issued (core/protocol/topics.ts), as `zmqchat up`'s does.
  const topicKeyFile = join(dir, "topic.key");
  writeFileSync(topicKeyFile, topicTagKey(Buffer.from(CLUSTER_SECRET)).toString("hex"), { mode: 0o600 });
  const balancerArgs = (i: number) => [
    ...(options.balancerArgs ?? []),
    ...(options.topicKey === false || (options.balancerArgs ?? []).includes("--topic-key-file")
      ? []
      : ["--topic-key-file", topicKeyFile]),
    ...(options.insecure ? ["--insecure"] : []),
    ...(options.legacySubscribers ? [] : ["--no-legacy-subscribers"]),
    ...(ownCurve
      ? [
          "--curve-keys",
          (ownCurve.balancers[i] ?? ownCurve.balancers[0]!).file,
          "--curve-servers",
          ownCurve.serversAllow,
        ]
      : []),
  ];
  const balancerKeys = () =>
    options.keyPerBalancer && ownCurve
      ? ownCurve.balancers.map((b) => b.keys.publicKey).join(",")
      : ownCurve!.balancer.publicKey;
  const serverSecurity = (args: string[], n: number): string[] => {
    if (sets(args)) return [];
    if (!ownCurve) return options.insecure ? ["--insecure"] : [];
    const s = ownCurve.servers[(n - 1) % ownCurve.servers.length]!;
    return ["--curve-keys", s.file, "--curve-balancer-key", balancerKeys()];
  };
  const store = options.store ?? `sqlite:${join(dir, "store.db")}`;
  const bs: Array<Awaited<ReturnType<typeof startBalancer>>> = [];
  const basePorts: number[] = [];
  for (let i = 0; i < nBalancers; i++) {
    const base = options.fixedPorts ? await freeBasePort() : 0;
    basePorts.push(base);
    bs.push(
      await startBalancer(
        balancerName(i),
        base,
        balancerArgs(i),
        options.balancerEnv,
        how,
        options.startTimeoutMs,
      ).catch(async (err: Error) => {
        await Promise.all(bs.map((b) => stopProcess(b.proc)));
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }),
    );
  }
  const backends = bs.map((b) => b.backend);
  const servers: StackProcess[] = [];
  const serverHttpPorts: number[] = [];
  let serial = 0;
  const serverIds = new Map<string, StackProcess>();
  const stack: RealStack = {
    curve: ownCurve,
    socketSecurity(role) {
      if (!ownCurve) return {};
      const own = role === "client" ? makeCurveKeys() : ownCurve.servers[0]!.keys;
      return {
        curveServerKey: ownCurve.balancer.publicKey,
        curvePublicKey: own.publicKey,
        curveSecretKey: own.secretKey,
      };
    },
    endpoint: bs.map((b) => b.frontend).join(","),
    endpoints: bs.map((b) => b.frontend),
    backends,
    httpPorts: bs.map((b) => b.httpPort),
    get metricsUrls() {
      return [...bs.map((b) => b.httpPort), ...serverHttpPorts].map((p) => `http://127.0.0.1:${p}/metrics`);
    },
    dir,
    store,
    balancers: bs.map((b) => b.proc),
    servers,
    async restartBalancer(index) {
      if (!basePorts[index]) throw new Error("restartBalancer needs a stack started with fixedPorts");
      const b = await startBalancer(
        balancerName(index),
        basePorts[index],
        balancerArgs(index),
        options.balancerEnv,
        how,
        options.startTimeoutMs,
      );
      bs[index] = b;
      stack.balancers[index] = b.proc;
    },
    async startServer(extraArgs = options.serverArgs ?? []) {
      const n = ++serial;
      const http: string[] = [];
      if (options.serverHttp) {
        const port = await freePort();
        serverHttpPorts.push(port);
        http.push("--http-host", "127.0.0.1", "--http-port", String(port));
      }
      const proc = launch(
        `${label}-server-${n}`,
        [
          "server",
          "--balancer",
          backends.join(","),
          "--store",
          store,
          "--id",
          `${label}-${n}`,
          ...http,
          "--log-level",
          "warn",
          ...serverSecurity(extraArgs, n),
          ...extraArgs,
        ],
        { ZMQCHAT_CLUSTER_SECRET: CLUSTER_SECRET, ...options.env },
        how,
      );
      servers.push(proc);
      serverIds.set(`${label}-${n}`, proc);
      return proc;
    },
    cli(user, args, opts = {}) {
      return runCli(["--user", user, ...args], {
        home: opts.home ?? join(dir, "homes", user),
        endpoint: opts.endpoint ?? stack.endpoint,
        stdin: opts.stdin,
        timeoutMs: opts.timeoutMs,
        env: { ...options.cliEnv, ...opts.env },
      });
    },
    async balancerHealth(index = 0) {
      const res = await fetch(`http://127.0.0.1:${bs[index]!.httpPort}/healthz`);
      return (await res.json()) as { liveServers: number; leadServer: string | null };
    },
    async leadServer(index = 0) {
      const id = (await stack.balancerHealth(index)).leadServer;
      // A server's routing id is its --id and a suffix of its own run (`it-1-3f9c…`).
      const proc = [...serverIds].find(([k]) => id === k || id?.startsWith(`${k}-`))?.[1];
      if (!proc) throw new Error(`balancer ${index} names no server of this stack as its lead (${id})`);
      return proc;
    },
    async stop() {
      const all = [...servers, ...stack.balancers];
      await Promise.all(all.map((p) => stopProcess(p, options.stopGraceMs)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < (options.servers ?? 2); i++) await stack.startServer();
    const want = options.servers ?? 2;
    for (let i = 0; i < bs.length; i++) {
      await waitFor(
        `${want} servers at balancer ${i}`,
        async () => {
          // A server that exited will never register: say so now, not after the deadline.
          const gone = servers.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
          if (gone)
            throw new Error(
              `${gone.name} exited (${gone.child.exitCode ?? gone.child.signalCode}) before it registered`,
            );
          return (await stack.balancerHealth(i)).liveServers >= want;
        },
        options.startTimeoutMs,
      );
    }
  } catch (err) {
    // Leave nothing running behind a failed start, and say what the processes said.
    const logs = [...stack.balancers, ...servers].map(
      (p) => `--- ${p.name}\n${p.output.slice(-20).join("\n")}`,
    );
    await stack.stop();
    throw new Error(`${(err as Error).message}\n${logs.join("\n")}`);
  }
  return stack;
}
