import type { ChildProcess } from "node:child_process";

const running = new Map<ChildProcess, string>();

/** Remembers a child so that `killAll` (also on error, Ctrl-C or a crash) ends it. */
export function track(child: ChildProcess, name: string): void {
  running.set(child, name);
  child.once("exit", () => running.delete(child));
}

/** Kills every tracked child that is still running; safe to call from an `exit` handler. */
export function killAll(signal: NodeJS.Signals = "SIGKILL"): void {
  for (const [child] of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  }
}

/** Ends one child: SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
export function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

let installed = false;

/** Makes sure children die with the bench, however it ends. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on("exit", () => killAll());
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}
