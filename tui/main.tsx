/** Entry of the full-screen UI: alternate screen, the Ink app, and a clean way out. */

import { render } from "ink";
import { ZmqchatError } from "../core/errors.js";
import { App, Root } from "./components/app.js";
import { TuiProvider } from "./components/provider.js";
import { Controller, type ControllerOptions } from "./controller.js";
import { osc9 } from "./mentions.js";
import { TerminalScreen } from "./screen.js";

export type { NewSession, ProfileAccess, TuiSession } from "./controller.js";
export { Controller } from "./controller.js";
export { TerminalScreen } from "./screen.js";
export { App, Root, TuiProvider };

export interface RunTuiOptions extends ControllerOptions {
  /** The user to sign in as (from --user, ZMQCHAT_USER or the config file). */
  user?: string;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  /** The screen to use; pass one in to restore it from a crash handler. */
  screen?: TerminalScreen;
}

/** Runs the TUI until the user leaves; resolves with the exit status. Restores the terminal on every way out. */
export async function runTui(options: RunTuiOptions): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stdin = options.stdin ?? process.stdin;
  if (!stdout.isTTY || !stdin.isTTY) {
    throw new ZmqchatError("usage", "the full-screen UI needs a terminal", {
      hint: "run zmqchat in a terminal, or use the commands (zmqchat --help)",
    });
  }
  const screen = options.screen ?? new TerminalScreen(stdout, stdin);
  const controller = new Controller({
    ring: () => stdout.write("\x07"),
    notify: (text) => stdout.write(osc9(text)),
    ...options,
  });
  screen.enter();
  try {
    const ink = render(
      <TuiProvider controller={controller}>
        <Root />
      </TuiProvider>,
      { stdout, stdin, exitOnCtrlC: false, patchConsole: false, incrementalRendering: true },
    );
    controller.start(options.user);
    await ink.waitUntilExit();
  } finally {
    await controller.stop();
    screen.leave();
  }
  return 0;
}
