import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { topicTagKey } from "../core/protocol/topics.js";
import { type CurveKeys, makeCurveKeys, Z85_KEY } from "../transports/zeromq/index.js";

/** Files of the local stack under the zmqchat home: `HOME/stack/`. */
export function stackPaths(home: string) {
  const dir = join(home, "stack");
  return {
    dir,
    state: join(dir, "state.json"),
    secret: join(dir, "secret"),
    topicKey: join(dir, "topic.key"),
    store: join(dir, "store.db"),
    logs: join(dir, "logs"),
    curve: join(dir, "curve"),
  };
}

/** The local stack's CURVE files: key pair files and the balancer's allow-list of servers. */
export interface StackCurve {
  balancerKeys: string;
  balancerPublicKey: string;
  serverKeys: string[];
  serversAllow: string;
}

/**
 * Makes (once) the CURVE key pairs of the local stack's balancer and of servers 1..N under
 * `HOME/stack/curve/` (directory 0700, files 0600) and writes the allow-list of those servers.
 */
export function ensureStackCurve(home: string, servers: number): StackCurve {
  const dir = stackPaths(home).curve;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const pair = (name: string): { path: string; keys: CurveKeys } => {
    const path = join(dir, `${name}.curve`);
    let keys: CurveKeys | null = null;
    try {
      const k = JSON.parse(readFileSync(path, "utf8")) as Partial<CurveKeys>;
      if (k.publicKey && k.secretKey && Z85_KEY.test(k.publicKey) && Z85_KEY.test(k.secretKey))
        keys = k as CurveKeys;
    } catch {
      keys = null;
    }
    if (!keys) {
      keys = makeCurveKeys();
      writeFileSync(`${path}.tmp`, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    }
    chmodSync(path, 0o600);
    return { path, keys };
  };
  const balancer = pair("balancer");
  const serverPairs = Array.from({ length: servers }, (_, i) => pair(`server-${i + 1}`));
  const serversAllow = join(dir, "servers.allow");
  writeFileSync(
    serversAllow,
    `# the local stack's chat servers\n${serverPairs.map((p) => p.keys.publicKey).join("\n")}\n`,
    { mode: 0o600 },
  );
  return {
    balancerKeys: balancer.path,
    balancerPublicKey: balancer.keys.publicKey,
    serverKeys: serverPairs.map((p) => p.path),
    serversAllow,
  };
}

export interface ProcessState {
  name: string;
  pid: number | null;
  startedAt: string | null;
  restarts: number;
}

export interface StackState {
  supervisorPid: number;
  endpoint: string;
  store: string;
  /** Plaintext links (`up --insecure`); absent in state files of older versions. */
  insecure?: boolean;
  startedAt: string;
  processes: ProcessState[];
}

export function readStackState(home: string): StackState | null {
  const p = stackPaths(home).state;
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as StackState;
  } catch {
    return null;
  }
}

export function isAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The local stack's cluster secret, made on first use (mode 0600). */
export function ensureStackSecret(home: string): string {
  const paths = stackPaths(home);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  if (!existsSync(paths.secret))
    writeFileSync(paths.secret, randomBytes(32).toString("hex"), { mode: 0o600 });
  return paths.secret;
}

/**
 * The local stack's topic tag key (core/protocol/topics.ts), from its cluster secret, for the
 * balancer's --topic-key-file: written again each time, so it always matches the secret.
 */
export function ensureStackTopicKey(home: string): string {
  const paths = stackPaths(home);
  const secret = Buffer.from(readFileSync(ensureStackSecret(home), "utf8").trim());
  writeFileSync(paths.topicKey, topicTagKey(secret).toString("hex"), { mode: 0o600 });
  return paths.topicKey;
}

export interface ProcessSpec {
  name: string;
  args: string[];
}

interface Running {
  spec: ProcessSpec;
  child: ChildProcess | null;
  state: ProcessState;
  backoffMs: number;
  timer: NodeJS.Timeout | null;
}

/**
 * Keeps the local stack's processes running: one that dies is started again within a few
 * seconds (backoff from 250 ms to 4 s), and the state file says who runs, since when, how often restarted.
 */
export class Supervisor {
  private readonly running: Running[];
  private stopping = false;

  constructor(
    specs: ProcessSpec[],
    private readonly options: {
      node: string;
      script: string;
      home: string;
      endpoint: string;
      store: string;
      insecure?: boolean;
    },
  ) {
    this.running = specs.map((spec) => ({
      spec,
      child: null,
      state: { name: spec.name, pid: null, startedAt: null, restarts: 0 },
      backoffMs: 250,
      timer: null,
    }));
  }

  start(): void {
    mkdirSync(stackPaths(this.options.home).logs, { recursive: true });
    for (const r of this.running) this.launch(r);
    this.writeState();
  }

  /** Stops every process (SIGTERM, then SIGKILL after the grace period) and removes the state file. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    for (const r of this.running) if (r.timer) clearTimeout(r.timer);
    await Promise.all(
      this.running.map(async (r) => {
        const child = r.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((res) => child.once("exit", () => res()));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
    rmSync(stackPaths(this.options.home).state, { force: true });
  }

  states(): ProcessState[] {
    return this.running.map((r) => ({ ...r.state }));
  }

  private launch(r: Running): void {
    const log = openSync(join(stackPaths(this.options.home).logs, `${r.spec.name}.log`), "a");
    const child = spawn(this.options.node, [this.options.script, ...r.spec.args], {
      stdio: ["ignore", log, log],
      env: process.env,
    });
    closeSync(log);
    r.child = child;
    r.state.pid = child.pid ?? null;
    r.state.startedAt = new Date().toISOString();
    const startedMs = Date.now();
    child.once("exit", () => {
      r.child = null;
      r.state.pid = null;
      if (this.stopping) return;
      // A process that ran a while gets a fast restart; one that keeps dying backs off.
      r.backoffMs = Date.now() - startedMs > 10_000 ? 250 : Math.min(r.backoffMs * 2, 4000);
      r.timer = setTimeout(() => {
        r.timer = null;
        if (this.stopping) return;
        r.state.restarts++;
        this.launch(r);
        this.writeState();
      }, r.backoffMs);
      this.writeState();
    });
  }

  private writeState(): void {
    if (this.stopping) return;
    const state: StackState = {
      supervisorPid: process.pid,
      endpoint: this.options.endpoint,
      insecure: this.options.insecure === true,
      store: this.options.store,
      startedAt: this.startedAt,
      processes: this.states(),
    };
    const p = stackPaths(this.options.home).state;
    writeFileSync(`${p}.tmp`, JSON.stringify(state, null, 2));
    renameSync(`${p}.tmp`, p);
  }

  private readonly startedAt = new Date().toISOString();
}
