import { spawn } from "node:child_process";
import type { Io } from "../../bin/io.js";
import { ZMQCHAT_BIN } from "./paths.js";

export { ZMQCHAT_BIN };

/** An Io for building the command tree in-process: prints nothing, reads nothing, never interrupted. */
export const quietIo: Io = {
  out() {},
  err() {},
  readStdin: async () => "",
  untilInterrupted: () => new Promise(() => {}),
  progress: () => ({ update() {}, done() {} }),
};

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * How long a test lets `zmqchat up` run: past the minute `up --detach` itself waits for a slow
 * start on a busy machine (DETACHED_START_MS in bin/commands/stack.ts), after which it fails with
 * its own message. Killed at 30 s, it failed once in CI while the Ansible converge shared the machine.
 */
export const UP_TIMEOUT_MS = 75_000;

/** Runs `zmqchat ARGS` with its own home and optional stdin; resolves when it exits. */
export function runCli(
  args: string[],
  options: { home: string; endpoint?: string; stdin?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // Each request may wait 20 s for its answer (the product's default is 10 s): test files share
    // the machine, and under their load an answer can take longer. Still under the 30 s kill below;
    // a test that wants the default or its own sets ZMQCHAT_REQUEST_TIMEOUT or passes --timeout.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ZMQCHAT_HOME: options.home,
      ZMQCHAT_REQUEST_TIMEOUT: "20s",
      ...options.env,
    };
    if (options.endpoint) env.ZMQCHAT_ENDPOINT = options.endpoint;
    delete env.ZMQCHAT_USER;
    const child = spawn(process.execPath, [ZMQCHAT_BIN, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(
      () => {
        child.kill("SIGKILL");
        reject(new Error(`zmqchat ${args.join(" ")} did not finish in time\n${stderr}`));
      },
      options.timeoutMs ?? (args[0] === "up" ? UP_TIMEOUT_MS : 30_000),
    );
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? "");
  });
}
