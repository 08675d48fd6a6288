import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

export interface Moto {
  /** `http://127.0.0.1:PORT`: moto_server's AWS APIs (S3 among them). */
  endpoint: string;
  stop(): Promise<void>;
}

/** Fake credentials for moto; it accepts any. */
export const MOTO_ENV = {
  AWS_ACCESS_KEY_ID: "testing",
  AWS_SECRET_ACCESS_KEY: "testing",
  AWS_REGION: "us-east-1",
  AWS_EC2_METADATA_DISABLED: "true",
};

/**
 * Starts `moto_server` (the machine Python's moto, a local AWS stand-in) on an OS-assigned
 * loopback port and resolves once it says where it listens.
 */
export async function startMoto(timeoutMs = 30_000): Promise<Moto> {
  const child = spawn("moto_server", ["-H", "127.0.0.1", "-p", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...MOTO_ENV },
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const output: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`moto_server did not start: ${output.join("\n")}`)),
      timeoutMs,
    );
    const onLine = (line: string) => {
      output.push(line);
      const m = /Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`moto_server exited (${code}): ${output.join("\n")}`));
    });
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
