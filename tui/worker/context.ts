/**
 * What every part of the TUI's worker shares: the store to dispatch to, the signed-in client,
 * and a way to run background work. The controller builds one and hands it to each part.
 */

import type { ChatClient } from "../../core/client/client.js";
import type { Logger } from "../../core/logger.js";
import type { Action, NoticeLevel, State } from "../state.js";

export interface WorkerContext {
  dispatch(action: Action): void;
  state(): State;
  /** The signed-in client; null on the sign-up screen and after stop. */
  client(): ChatClient | null;
  notice(text: string, level?: NoticeLevel): void;
  /** Runs work in the background; a failure becomes an error notice. */
  track(work: Promise<unknown>): void;
  /** Resolves once the name is known to be registered: requests that need a login wait for it. */
  registered(): Promise<void>;
  stopped(): boolean;
  log: Logger;
}
