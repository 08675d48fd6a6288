import { spawn } from "node:child_process";
import { openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { Command } from "commander";
import { resolveHome } from "../../core/config/config.js";
import { ZmqchatError } from "../../core/errors.js";
import {
  ensureStackCurve,
  ensureStackSecret,
  ensureStackTopicKey,
  isAlive,
  type ProcessSpec,
  readStackState,
  Supervisor,
  stackPaths,
} from "../../server/local-stack.js";
import { commandLine, stopRecorded, tightenStackFiles, whoListens } from "../../server/stack-guard.js";
import type { GlobalFlags } from "../context.js";
import type { Io } from "../io.js";
import { waitForBalancer } from "../probe.js";
import { binPath } from "../version.js";

export interface UpFlags {
  servers: string;
  port: string;
  store?: string;
  detach?: boolean;
  supervise?: boolean;
  insecure?: boolean;
  httpPort?: string;
}

function homeOf(cmd: Command): string {
  return resolveHome(cmd.optsWithGlobals() as GlobalFlags, process.env).home;
}

/**
 * What `up` starts: one balancer on PORT..PORT+3 and N servers attached to it, over CurveZMQ
 * with the stack's own keys (only its servers are allow-listed) unless `insecure`.
 */
export function stackSpecs(
  home: string,
  servers: number,
  port: number,
  store: string,
  insecure = false,
  /** /healthz and /metrics: the balancer on this port, server N on this port + N. */
  httpPort?: number,
): ProcessSpec[] {
  const http = (offset: number) => (httpPort === undefined ? [] : ["--http-port", String(httpPort + offset)]);
  const secret = ensureStackSecret(home);
  const topicKey = ensureStackTopicKey(home);
  const curve = insecure ? null : ensureStackCurve(home, servers);
  const specs: ProcessSpec[] = [
    {
      name: "balancer",
      args: [
        "balancer",
        "--bind",
        "127.0.0.1",
        "--port",
        String(port),
        "--log-level",
        "warn",
        ...(curve
          ? ["--curve-keys", curve.balancerKeys, "--curve-servers", curve.serversAllow]
          : ["--insecure"]),
        "--topic-key-file",
        topicKey,
        // Its clients are this install's: they take deliveries over their connection.
        "--no-legacy-subscribers",
        ...http(0),
      ],
    },
  ];
  for (let i = 1; i <= servers; i++) {
    specs.push({
      name: `server-${i}`,
      args: [
        "server",
        "--balancer",
        `tcp://127.0.0.1:${port + 1}`,
        "--store",
        store,
        "--secret-file",
        secret,
        "--id",
        `local-${i}`,
        "--log-level",
        "warn",
        ...(curve
          ? ["--curve-keys", curve.serverKeys[i - 1]!, "--curve-balancer-key", curve.balancerPublicKey]
          : ["--insecure"]),
        ...http(i),
      ],
    });
  }
  return specs;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** How long `up --detach` waits for the balancer it started to answer. */
const DETACHED_START_MS = 60_000;

export async function upCommand(cmd: Command, io: Io, flags: UpFlags): Promise<void> {
  const home = homeOf(cmd);
  const servers = Number(flags.servers);
  const port = Number(flags.port);
  if (!Number.isInteger(servers) || servers < 1 || servers > 32)
    throw new ZmqchatError("usage", "--servers takes 1 to 32");
  if (!Number.isInteger(port) || port < 1 || port > 65532)
    throw new ZmqchatError("usage", "--port takes a port number");
  const httpPort = flags.httpPort === undefined ? undefined : Number(flags.httpPort);
  if (httpPort !== undefined && (!Number.isInteger(httpPort) || httpPort < 1 || httpPort + servers > 65535))
    throw new ZmqchatError("usage", `--http-port takes a port number with ${servers} free after it`);
  const endpoint = `tcp://127.0.0.1:${port}`;
  const store = flags.store ?? `sqlite:${stackPaths(home).store}`;
  const existing = readStackState(home);
  if (existing && isAlive(existing.supervisorPid) && !flags.supervise) {
    io.out(`the local stack is already running at ${existing.endpoint} (pid ${existing.supervisorPid})`);
    return;
  }
  if (flags.insecure && !flags.supervise) {
    io.err(
      "zmqchat: WARNING: --insecure: the local stack runs without CurveZMQ; any local process can join it as a server or publisher and read what passes",
    );
  }
  const needed = [port, port + 1, port + 2, port + 3];
  if (httpPort !== undefined) for (let i = 0; i <= servers; i++) needed.push(httpPort + i);
  for (const p of needed) {
    if (!(await portFree(p))) throw portTaken(home, p);
  }
  // Everything the stack writes (store, logs, state, keys) is the user's alone.
  process.umask(0o077);
  tightenStackFiles(home);
  if (flags.detach) {
    const log = openSync(join(ensureDir(home), "supervisor.log"), "a", 0o600);
    const args = [
      binPath(),
      "up",
      "--supervise",
      "--servers",
      String(servers),
      "--port",
      String(port),
      "--store",
      store,
      ...(flags.insecure ? ["--insecure"] : []),
      ...(httpPort !== undefined ? ["--http-port", String(httpPort)] : []),
    ];
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ["ignore", log, log],
      env: { ...process.env, ZMQCHAT_HOME: home },
    });
    child.unref();
    // The supervisor is watched: its exit ends the wait at once; a slow start on a busy machine
    // is waited for (a minute), not reported as a failure after 15 s while it is still coming up.
    let exited: string | null = null;
    child.on("exit", (code, signal) => {
      exited = signal ?? `exit code ${code}`;
    });
    if (!(await waitForBalancer(endpoint, DETACHED_START_MS, () => exited === null))) {
      throw new ZmqchatError(
        "unavailable",
        exited === null
          ? `the local stack did not answer within ${DETACHED_START_MS / 1000} s; see ${stackPaths(home).dir}/logs`
          : `the local stack did not come up (its supervisor ended: ${exited}); see ${stackPaths(home).dir}/logs and ${join(stackPaths(home).dir, "supervisor.log")}`,
      );
    }
    io.out(
      `local stack up at ${endpoint}: balancer + ${servers} servers (pid ${child.pid}); stop it with zmqchat down`,
    );
    return;
  }
  const supervisor = new Supervisor(stackSpecs(home, servers, port, store, flags.insecure, httpPort), {
    node: process.execPath,
    script: binPath(),
    home,
    endpoint,
    store,
    insecure: flags.insecure === true,
  });
  supervisor.start();
  if (!flags.supervise) {
    if (await waitForBalancer(endpoint, 15_000)) {
      io.out(`local stack up at ${endpoint}: balancer + ${servers} servers; Ctrl-C stops it`);
    } else {
      io.err(`zmqchat: the balancer does not answer yet; see ${stackPaths(home).logs}`);
    }
  }
  await io.untilInterrupted();
  await supervisor.stop();
}

function ensureDir(home: string): string {
  ensureStackSecret(home);
  return stackPaths(home).dir;
}

/** The /healthz and /metrics port a stack process was started with (from its command line), or null. */
function httpPortOf(pid: number | null): number | null {
  const argv = pid ? commandLine(pid) : null;
  const at = argv?.indexOf("--http-port") ?? -1;
  const value = at >= 0 ? Number(argv![at + 1]) : Number.NaN;
  return Number.isInteger(value) ? value : null;
}

/** Says who holds a port `up` needs, and how to free it. */
function portTaken(home: string, port: number): ZmqchatError {
  const holder = whoListens(port);
  const state = readStackState(home);
  const ours = holder && state?.processes.find((p) => p.pid === holder.pid);
  const what = holder
    ? ` by pid ${holder.pid} (${holder.argv.slice(0, 4).join(" ").slice(0, 120) || "unknown"})`
    : "";
  return new ZmqchatError("unavailable", `port ${port} on 127.0.0.1 is in use${what}`, {
    hint: ours
      ? `it is the ${ours.name} of this local stack, left running by a supervisor that died: zmqchat down stops it`
      : holder
        ? `stop it (kill ${holder.pid}) or pick other ports with --port`
        : "pick other ports with --port",
  });
}

export async function downCommand(cmd: Command, io: Io): Promise<void> {
  const home = homeOf(cmd);
  const state = readStackState(home);
  if (state && !isAlive(state.supervisorPid)) {
    // The supervisor died (killed, out of memory): stop what it left running.
    const stopped = await stopRecorded(state, binPath());
    rmSync(stackPaths(home).state, { force: true });
    io.out(
      stopped.length > 0
        ? `the local stack's supervisor had died; stopped what it left running: ${stopped.map((p) => `${p.name} (pid ${p.pid})`).join(", ")}`
        : "no local stack is running",
    );
    return;
  }
  if (!state) {
    io.out("no local stack is running");
    return;
  }
  process.kill(state.supervisorPid, "SIGTERM");
  const deadline = Date.now() + 15_000;
  while (isAlive(state.supervisorPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(state.supervisorPid))
    throw new ZmqchatError("timeout", `the local stack (pid ${state.supervisorPid}) did not stop`);
  // Anything the supervisor could not stop (it was killed mid-way) goes too.
  await stopRecorded(state, binPath());
  io.out("local stack stopped");
}

export async function statusCommand(cmd: Command, io: Io, opts: { json?: boolean }): Promise<void> {
  const home = homeOf(cmd);
  const state = readStackState(home);
  const running = state !== null && isAlive(state.supervisorPid);
  const answering = running ? await waitForBalancer(state.endpoint, 1500) : false;
  const now = Date.now();
  const processes = (running ? state.processes : []).map((p) => ({
    ...p,
    alive: isAlive(p.pid),
    httpPort: httpPortOf(p.pid),
    uptimeSeconds: p.startedAt && isAlive(p.pid) ? Math.round((now - Date.parse(p.startedAt)) / 1000) : 0,
  }));
  if (opts.json) {
    io.out(
      JSON.stringify({
        running,
        answering,
        endpoint: state?.endpoint ?? null,
        store: state?.store ?? null,
        insecure: running ? state.insecure === true : null,
        processes,
      }),
    );
  } else if (!running) {
    io.out("no local stack is running (start one with zmqchat up --detach)");
  } else {
    io.out(
      `local stack at ${state.endpoint} (${answering ? "answering" : "NOT answering"}), store ${state.store}`,
    );
    for (const p of processes) {
      io.out(
        `  ${p.name.padEnd(10)} ${p.alive ? `pid ${String(p.pid).padEnd(8)} up ${p.uptimeSeconds}s` : "down".padEnd(20)}  restarts ${p.restarts}${p.httpPort ? `  http://127.0.0.1:${p.httpPort}/metrics /healthz` : ""}`,
      );
    }
  }
  if (!running || !answering)
    throw new ZmqchatError("unavailable", running ? "the local stack does not answer" : "not running");
}
