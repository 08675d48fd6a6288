/** What a command may touch of the outside world; tests pass their own. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  readStdin(): Promise<string>;
  /** Resolves on SIGINT or SIGTERM. */
  untilInterrupted(): Promise<void>;
  /** A progress display on a terminal; silent when stderr is not a TTY. */
  progress(label: string): { update(n: number, total?: number): void; done(): void };
}

export const processIo: Io = {
  out: (line) => {
    process.stdout.write(`${line}\n`);
  },
  err: (line) => {
    process.stderr.write(`${line}\n`);
  },
  readStdin: async () => {
    if (process.stdin.isTTY) process.stderr.write("(type the message, then Ctrl-D)\n");
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  },
  untilInterrupted: () =>
    new Promise((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    }),
  progress: (label) => {
    const tty = Boolean(process.stderr.isTTY);
    let last = 0;
    return {
      update(n, total) {
        if (!tty) return;
        const now = Date.now();
        if (now - last < 100) return;
        last = now;
        const width = 30;
        const bar =
          total && total > 0
            ? `[${"#".repeat(Math.round((n / total) * width)).padEnd(width, ".")}] ${n}/${total}`
            : `${n} messages`;
        process.stderr.write(`\r${label} ${bar}`);
      },
      done() {
        if (tty && last > 0) process.stderr.write("\r\x1b[K");
      },
    };
  },
};
