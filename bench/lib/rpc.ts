import { type ChildProcess, fork } from "node:child_process";
import { createInterface } from "node:readline";
import { track } from "./processes.js";
import { profileFlags } from "./profile.js";

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** A bench helper process (alice, bob, an echo worker …) driven by calls over its IPC channel. */
export class Helper {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly log: string[] = [];
  private exited = false;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on("message", (m: Reply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`${name}: ${m.error}`));
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on("line", (l) => this.keep(l));
    }
    child.on("exit", (code, signal) => {
      this.exited = true;
      for (const [, w] of this.waiting)
        w.reject(new Error(`${name} exited (${signal ?? code}) during a call; its output:\n${this.tail()}`));
      this.waiting.clear();
    });
  }

  /** Starts `script` (a compiled file under dist/bench/procs) as a child process with an IPC channel. */
  static start(name: string, script: string, args: string[] = [], execArgv: string[] = []): Helper {
    const child = fork(script, args, {
      serialization: "advanced",
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      execArgv: [...execArgv, ...profileFlags(name)],
    });
    track(child, name);
    return new Helper(name, child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(method: string, params: unknown = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited; its output:\n${this.tail()}`));
    const id = ++this.next;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, method, params });
    });
  }

  /** Ends the helper: asks politely (closing its IPC channel), then kills it. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await gone;
    clearTimeout(timer);
  }

  tail(): string {
    return this.log.slice(-30).join("\n");
  }

  private keep(line: string): void {
    this.log.push(line);
    if (this.log.length > 200) this.log.splice(0, 100);
    if (process.env.ZMQCHAT_BENCH_DEBUG) process.stderr.write(`[${this.name}] ${line}\n`);
  }
}

type Handlers = Record<string, (params: never) => unknown>;

/**
 * The child side: answers calls with `handlers`, and exits when the parent goes away (its IPC
 * channel closes), so a crashed bench leaves no helpers behind.
 */
export function serve(handlers: Handlers, onExit: () => Promise<void> | void = () => {}): void {
  process.on("message", (m: { id: number; method: string; params: unknown }) => {
    const handler = handlers[m.method];
    const reply = (r: Omit<Reply, "id">) => {
      if (process.connected) process.send!({ id: m.id, ...r });
    };
    if (!handler) {
      reply({ ok: false, error: `no method ${m.method}` });
      return;
    }
    Promise.resolve()
      .then(() => (handler as (p: unknown) => unknown)(m.params))
      .then(
        (result) => reply({ ok: true, result }),
        (err: unknown) =>
          reply({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  process.on("disconnect", () => {
    void Promise.resolve()
      .then(onExit)
      .finally(() => process.exit(0));
  });
}
