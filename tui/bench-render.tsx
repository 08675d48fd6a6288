/**
 * Headless measurement for the benchmark: how long the TUI takes to show the newest page of a
 * conversation of N messages (reducer, windowed layout and one Ink frame).
 */

import { performance } from "node:perf_hooks";
import { render } from "ink";
import type { ChatMessage } from "../core/client/cache.js";
import { App } from "./components/app.js";
import { HeadlessStdin, HeadlessStdout } from "./headless.js";
import { geometry } from "./layout.js";
import { initialState, update } from "./state.js";
import { Store, TuiContext } from "./store.js";

export interface RenderPageOptions {
  columns?: number;
  rows?: number;
  /** Who is looking (their own messages get delivery marks); defaults to the recipient of the first message. */
  me?: string;
}

/**
 * Mounts the TUI's main screen (no conversation open, as after start-up), then opens a
 * conversation holding `messages` (oldest first, one conversation) and resolves with the
 * milliseconds from opening it until the frame showing its newest message is written: what
 * a user waits for after pressing Enter on a contact.
 */
export async function renderNewestPage(
  messages: ChatMessage[],
  options: RenderPageOptions = {},
): Promise<number> {
  const columns = options.columns ?? 120;
  const rows = options.rows ?? 40;
  const newest = messages.at(-1);
  const conv = newest?.conv ?? "u:nobody";
  const me = options.me ?? messages[0]?.to ?? "me";
  const store = new Store(update, initialState({ bell: false }));
  store.dispatch({ type: "session", me, fingerprint: "", endpoint: "headless", bell: false });
  const g = geometry({ columns, rows }, 1);
  store.dispatch({ type: "layout", width: g.history.width, height: g.history.height });
  const stdout = new HeadlessStdout(columns, rows);
  const stdin = new HeadlessStdin();
  const probe = (newest?.text ?? "").split("\n")[0]!.slice(0, 12);
  const frameWith = (test: (frame: string) => boolean) =>
    new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("the expected frame was not rendered within 10 s")),
        10_000,
      );
      const onFrame = (frame: string) => {
        if (!test(frame)) return;
        clearTimeout(timer);
        stdout.off("frame", onFrame);
        resolve(performance.now());
      };
      stdout.on("frame", onFrame);
      if (test(stdout.lastFrame())) onFrame(stdout.lastFrame());
    });
  const ink = render(
    <TuiContext.Provider value={{ store, dispatch: (a) => store.dispatch(a), onExit: () => () => {} }}>
      <App size={{ columns, rows }} />
    </TuiContext.Provider>,
    {
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: stdin as unknown as NodeJS.ReadStream,
      debug: true,
      exitOnCtrlC: false,
      patchConsole: false,
    },
  );
  try {
    await frameWith((f) => f.includes("No conversation open"));
    const shown = frameWith((f) => f.includes(probe));
    const started = performance.now();
    store.dispatch({ type: "open", conv });
    store.dispatch({ type: "history", conv, messages, complete: true });
    return (await shown) - started;
  } finally {
    ink.unmount();
    ink.cleanup();
  }
}
