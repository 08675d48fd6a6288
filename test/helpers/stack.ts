import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type CliResult, runCli, ZMQCHAT_BIN } from "./cli.js";

export const CLUSTER_SECRET = "integration-test-secret-0123456789";

export interface StackProcess {
  child: ChildProcess;
  output: string[];
}

export interface RealStack {
  /** The balancers' client endpoints, comma-separated, as `--endpoint` takes them. */
  endpoint: string;
  endpoints: string[];
  backends: string[];
  dir: string;
  store: string;
  balancers: StackProcess[];
  servers: StackProcess[];
  startServer(): Promise<StackProcess>;
  /** Runs the CLI as `user` with this stack's endpoint and a home of the user's own. */
  cli(
    user: string,
    args: string[],
    opts?: { stdin?: string; home?: string; endpoint?: string; timeoutMs?: number },
  ): Promise<CliResult>;
  balancerHealth(index?: number): Promise<{ liveServers: number }>;
  stop(): Promise<void>;
}

function launch(args: string[], env: NodeJS.ProcessEnv = {}): StackProcess {
  const child = spawn(process.execPath, [ZMQCHAT_BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (l) => output.push(l));
  createInterface({ input: child.stderr! }).on("line", (l) => output.push(l));
  return { child, output };
}

/** Waits for a condition, polling; throws with `what` when the deadline passes. */
export async function waitFor<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 15_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function startBalancer(): Promise<{
  proc: StackProcess;
  frontend: string;
  backend: string;
  httpPort: number;
}> {
  const proc = launch(["balancer", "--port", "0", "--http-port", "0", "--log-level", "warn"]);
  const line = await waitFor("the balancer to be ready", () =>
    proc.output.find((l) => l.includes('"balancer_ready"')),
  );
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
  options: { servers?: number; balancers?: number; store?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RealStack> {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-it-"));
  const store = options.store ?? `sqlite:${join(dir, "store.db")}`;
  const bs: Array<Awaited<ReturnType<typeof startBalancer>>> = [];
  for (let i = 0; i < (options.balancers ?? 1); i++) bs.push(await startBalancer());
  const backends = bs.map((b) => b.backend);
  const servers: StackProcess[] = [];
  let serial = 0;
  const stack: RealStack = {
    endpoint: bs.map((b) => b.frontend).join(","),
    endpoints: bs.map((b) => b.frontend),
    backends,
    dir,
    store,
    balancers: bs.map((b) => b.proc),
    servers,
    async startServer() {
      const proc = launch(
        [
          "server",
          "--balancer",
          backends.join(","),
          "--store",
          store,
          "--id",
          `it-${++serial}`,
          "--log-level",
          "warn",
        ],
        { ZMQCHAT_CLUSTER_SECRET: CLUSTER_SECRET, ...options.env },
      );
      servers.push(proc);
      return proc;
    },
    cli(user, args, opts = {}) {
      return runCli(["--user", user, ...args], {
        home: opts.home ?? join(dir, "homes", user),
        endpoint: opts.endpoint ?? stack.endpoint,
        stdin: opts.stdin,
        timeoutMs: opts.timeoutMs,
      });
    },
    async balancerHealth(index = 0) {
      const res = await fetch(`http://127.0.0.1:${bs[index]!.httpPort}/healthz`);
      return (await res.json()) as { liveServers: number };
    },
    async stop() {
      const all = [...servers, ...bs.map((b) => b.proc)];
      await Promise.all(
        all.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
              p.child.once("exit", () => resolve());
              p.child.kill("SIGKILL");
            }),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < (options.servers ?? 2); i++) await stack.startServer();
  const want = options.servers ?? 2;
  for (let i = 0; i < bs.length; i++) {
    await waitFor(
      `${want} servers at balancer ${i}`,
      async () => (await stack.balancerHealth(i)).liveServers >= want,
    );
  }
  return stack;
}
