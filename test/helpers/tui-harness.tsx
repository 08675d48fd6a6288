/**
 * Drives the real TUI (controller, store, Ink panes) over the memory transport with real
 * clients: keys go in through a fake stdin, frames come out as text.
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { render } from "ink";
import { Cache } from "../../core/client/cache.js";
import { ChatClient } from "../../core/client/client.js";
import { ensureIdentity, hasIdentity, loadIdentity, profilePaths } from "../../core/client/profile.js";
import { NAME_PATTERN } from "../../core/protocol/limits.js";
import { Root } from "../../tui/components/app.js";
import { TuiProvider } from "../../tui/components/provider.js";
import {
  Controller,
  type ControllerOptions,
  type ProfileAccess,
  type TuiSession,
} from "../../tui/controller.js";
import { HeadlessStdin, HeadlessStdout } from "../../tui/headless.js";
import { watchCacheFile } from "../../tui/worker/cache-watch.js";
import type { startMemoryStack } from "./memory-stack.js";

export type MemoryStack = Awaited<ReturnType<typeof startMemoryStack>>;

// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping terminal escapes
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

export function plain(s: string): string {
  return s.replace(ANSI, "");
}

/** Profiles under `home`, opened with real clients on the memory hub. */
export function memoryProfiles(stack: MemoryStack, home: string): ProfileAccess {
  const transport = stack.hub.clientTransport();
  const build = (name: string, identity: ReturnType<typeof loadIdentity>): TuiSession => {
    const cache = new Cache(profilePaths(home, name).cache);
    const client = new ChatClient({
      connect: (e) => transport.connect(e),
      endpoints: ["memory://hub"],
      identity,
      cache,
      attemptTimeoutMs: 500,
      requestTimeoutMs: 5000,
    });
    return {
      client,
      async close() {
        await client.close();
        await cache.close();
      },
      watchShared: (onChange) => watchCacheFile(profilePaths(home, name).cache, onChange),
    };
  };
  const exists = (n: string) => NAME_PATTERN.test(n) && hasIdentity(profilePaths(home, n));
  return {
    list: () => {
      mkdirSync(join(home, "users"), { recursive: true });
      return readdirSync(join(home, "users")).filter(exists).sort();
    },
    exists,
    open: (n) => build(n, loadIdentity(profilePaths(home, n), n)),
    create(n) {
      const paths = profilePaths(home, n);
      const made = ensureIdentity(paths, n);
      const s = build(n, made);
      return {
        ...s,
        async discard() {
          await s.close();
          if (made.created) rmSync(paths.dir, { recursive: true, force: true });
        },
      };
    },
  };
}

export const KEYS = {
  enter: "\r",
  altEnter: "\x1b\r",
  ctrlJ: "\n",
  tab: "\t",
  shiftTab: "\x1b[Z",
  esc: "\x1b",
  up: "\x1b[A",
  down: "\x1b[B",
  left: "\x1b[D",
  right: "\x1b[C",
  pageUp: "\x1b[5~",
  pageDown: "\x1b[6~",
  home: "\x1b[H",
  end: "\x1b[F",
  backspace: "\x7f",
  ctrlC: "\x03",
  ctrlN: "\x0e",
  ctrlG: "\x07",
  pasteStart: "\x1b[200~",
  pasteEnd: "\x1b[201~",
} as const;

export interface TuiHarness {
  controller: Controller;
  stdout: HeadlessStdout;
  stdin: HeadlessStdin;
  rings: () => number;
  frame(): string;
  /** Writes keys (one chunk each) and lets Ink and React settle after each. */
  press(...chunks: string[]): Promise<void>;
  /** Types text one character at a time, as a person would. */
  type(text: string): Promise<void>;
  waitFor(what: string | RegExp | ((frame: string) => boolean), timeoutMs?: number): Promise<string>;
  exited(): boolean;
  close(): Promise<void>;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Starts the TUI for `user` (or the sign-up screen) in a headless terminal. */
export async function startTui(
  stack: MemoryStack,
  opts: { home: string; user?: string; columns?: number; rows?: number } & Partial<ControllerOptions>,
): Promise<TuiHarness> {
  let rings = 0;
  const controller = new Controller({
    profiles: memoryProfiles(stack, opts.home),
    ring: () => {
      rings++;
    },
    refreshMs: 60_000,
    noticeMs: 60_000,
    ...opts,
  });
  const stdout = new HeadlessStdout(opts.columns ?? 100, opts.rows ?? 30);
  const stdin = new HeadlessStdin();
  let exited = false;
  const ink = render(
    <TuiProvider controller={controller}>
      <Root />
    </TuiProvider>,
    {
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: stdin as unknown as NodeJS.ReadStream,
      debug: true,
      exitOnCtrlC: false,
      patchConsole: false,
    },
  );
  void ink.waitUntilExit().then(() => {
    exited = true;
  });
  controller.start(opts.user);
  const h: TuiHarness = {
    controller,
    stdout,
    stdin,
    rings: () => rings,
    frame: () => plain(stdout.lastFrame()),
    async press(...chunks) {
      for (const c of chunks) {
        stdin.write(c);
        await tick();
        await tick();
      }
    },
    async type(text) {
      for (const ch of text) await h.press(ch);
    },
    // 20 s: what it waits for is there at once on an idle machine, but test files run side by side
    // and a loaded machine can take seconds to draw a long history; a failing wait costs the 20 s.
    async waitFor(what, timeoutMs = 20_000) {
      const test =
        typeof what === "function"
          ? what
          : (f: string) => (typeof what === "string" ? f.includes(what) : what.test(f));
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const f = h.frame();
        if (test(f)) return f;
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${String(what)}; the screen shows:\n${f}`);
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            stdout.off("frame", done);
            resolve();
          };
          const t = setTimeout(done, 50);
          stdout.on("frame", done);
        });
      }
    },
    exited: () => exited,
    async close() {
      ink.unmount();
      ink.cleanup();
      await controller.idle();
      await controller.stop();
    },
  };
  return h;
}
