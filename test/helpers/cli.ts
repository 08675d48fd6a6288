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
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`zmqchat ${args.join(" ")} did not finish in time\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? "");
  });
}
