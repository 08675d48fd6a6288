/**
 * Drives programs in tmux as a person would: keys in with send-keys, the screen out with
 * capture-pane. Each instance runs its own tmux server (-L), so tests never touch a user's tmux.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const TMUX = process.env.TMUX_BIN ?? "/usr/bin/tmux";

export class Tmux {
  private readonly socket = `zmqchat-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  constructor(private readonly artifacts?: string) {
    if (artifacts) mkdirSync(artifacts, { recursive: true });
  }

  tmux(...args: string[]): string {
    return execFileSync(TMUX, ["-L", this.socket, "-f", "/dev/null", ...args], { encoding: "utf8" });
  }

  /** A new session running an interactive shell (so what the program leaves behind can be checked). */
  newSession(
    name: string,
    opts: { width: number; height: number; env: Record<string, string>; cwd?: string },
  ): void {
    const env = Object.entries(opts.env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    this.tmux(
      "new-session",
      "-d",
      "-s",
      name,
      "-x",
      String(opts.width),
      "-y",
      String(opts.height),
      ...(opts.cwd ? ["-c", opts.cwd] : []),
      ...env,
      "bash --norc --noprofile",
    );
    this.tmux("set-option", "-t", name, "window-size", "manual");
  }

  /** Sends key names (Enter, Tab, C-n, BTab, Escape, PageUp…), as tmux understands them. */
  keys(target: string, ...keys: string[]): void {
    this.tmux("send-keys", "-t", target, ...keys);
  }

  /** Types literal text. */
  type(target: string, text: string): void {
    this.tmux("send-keys", "-t", target, "-l", text);
  }

  /** Runs a command line in the session's shell. */
  run(target: string, commandLine: string): void {
    this.type(target, commandLine);
    this.keys(target, "Enter");
  }

  /** Pastes text as a terminal does (bracketed when the program asked for it). */
  paste(target: string, text: string): void {
    this.tmux("set-buffer", "--", text);
    this.tmux("paste-buffer", "-p", "-d", "-t", target);
  }

  capture(target: string): string {
    return this.tmux("capture-pane", "-p", "-t", target);
  }

  /** A pane property: alternate_on, cursor_flag, pane_current_command… */
  show(target: string, format: string): string {
    return this.tmux("display-message", "-p", "-t", target, format).trim();
  }

  resize(target: string, width: number, height: number): void {
    this.tmux("resize-window", "-t", target, "-x", String(width), "-y", String(height));
  }

  /** Polls the screen until `test` holds; throws with the screen on the deadline. */
  async waitFor(
    target: string,
    test: string | RegExp | ((screen: string) => boolean),
    opts: { timeoutMs?: number; what?: string } = {},
  ): Promise<string> {
    const check =
      typeof test === "function"
        ? test
        : (s: string) => (typeof test === "string" ? s.includes(test) : test.test(s));
    // Generous: the deadline only catches a hang, and other test files run alongside.
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    let screen = "";
    for (;;) {
      screen = this.capture(target);
      if (check(screen)) return screen;
      if (Date.now() > deadline) {
        throw new Error(
          `${target}: timed out waiting for ${opts.what ?? String(test)}; the screen shows:\n${screen}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stores the current screen as ARTIFACTS/NAME.txt for a reviewer. */
  save(target: string, name: string): string {
    const screen = this.capture(target);
    if (this.artifacts) writeFileSync(join(this.artifacts, `${name}.txt`), screen);
    return screen;
  }

  kill(): void {
    try {
      this.tmux("kill-server");
    } catch {
      // Already gone.
    }
  }
}
