import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { Cache } from "../../core/client/cache.js";
import { ChatClient } from "../../core/client/client.js";
import { FileEndpointMemory } from "../../core/client/endpoints.js";
import {
  ensureIdentity,
  hasIdentity,
  type LoadedIdentity,
  loadIdentity,
  profilePaths,
} from "../../core/client/profile.js";
import type { Settings } from "../../core/config/config.js";
import { fingerprint } from "../../core/crypto/keys.js";
import type { Logger } from "../../core/logger.js";
import { NAME_PATTERN } from "../../core/protocol/limits.js";
import { isAlive, readStackState, stackPaths } from "../../server/local-stack.js";
import type { ProfileAccess, TuiSession } from "../../tui/controller.js";
import { runTui, TerminalScreen } from "../../tui/main.js";
import { watchCacheFile } from "../../tui/worker/cache-watch.js";
import { clientTransport, curveSecretOf, settingsOf, unlockOptions } from "../context.js";
import { makeLogger } from "../logging.js";
import { probeBalancer } from "../probe.js";
import { report } from "../report.js";
import { binPath } from "../version.js";
import { revokeFromProfile, takePushedKeys } from "./devices.js";

/** The profiles under HOME/users, each opened with a zeromq client (the TUI never builds transports). */
export function zeromqProfiles(settings: Settings, log: Logger): ProfileAccess {
  const home = settings.home;
  const build = (name: string, identity: LoadedIdentity): TuiSession => {
    const cache = new Cache(profilePaths(home, name).cache);
    const transport = clientTransport(settings, profilePaths(home, name).dir);
    const client = new ChatClient({
      connect: (e) => transport.connect(e),
      endpoints: settings.endpoints,
      identity,
      cache,
      log,
      endpointMemory: new FileEndpointMemory(join(profilePaths(home, name).dir, "endpoints.json")),
      curveSecret: curveSecretOf(profilePaths(home, name).dir),
      requestTimeoutMs: settings.requestTimeoutMs,
      readReceipts: settings.readReceipts,
      presence: settings.presence,
      typing: settings.typing,
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
  const exists = (name: string) => NAME_PATTERN.test(name) && hasIdentity(profilePaths(home, name));
  return {
    list() {
      const dir = join(home, "users");
      if (!existsSync(dir)) return [];
      return readdirSync(dir).filter(exists).sort();
    },
    exists,
    open: (name) => build(name, loadIdentity(profilePaths(home, name), name, unlockOptions())),
    async revokeDevice(name, client, id) {
      const loaded = loadIdentity(profilePaths(home, name), name, unlockOptions());
      const r = await revokeFromProfile(settings, name, client, loaded, id);
      return {
        fingerprint: fingerprint(name, r.next.identity.publicKeys),
        pushed: r.pushed,
        unreachable: r.unreachable,
      };
    },
    async pickUpKeys(name) {
      const next = await takePushedKeys(settings, name);
      return next ? fingerprint(name, next.identity.publicKeys) : null;
    },
    create(name) {
      const paths = profilePaths(home, name);
      const made = ensureIdentity(paths, name, unlockOptions());
      const s = build(name, made);
      return {
        ...s,
        async discard() {
          await s.close();
          // Only a profile made just now goes: its name could not be registered.
          if (made.created) rmSync(paths.dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/**
 * With no endpoint configured, makes sure the local stack answers on the default one: starts
 * it (`zmqchat up --detach`) when it is not running, and says what it did in the status bar.
 */
export async function ensureLocalStack(
  home: string,
  endpoint: string,
  note: (text: string) => void,
): Promise<void> {
  if (await probeBalancer(endpoint, 800)) return;
  const state = readStackState(home);
  if (state && isAlive(state.supervisorPid)) {
    note(
      `the local stack (pid ${state.supervisorPid}) does not answer at ${endpoint}; see ${stackPaths(home).logs}`,
    );
    return;
  }
  const port = /:(\d+)$/.exec(endpoint)?.[1] ?? "5570";
  note(`starting a local stack at ${endpoint}…`);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [binPath(), "up", "--detach", "--port", port], {
      env: { ...process.env, ZMQCHAT_HOME: home },
      stdio: "ignore",
    });
    child.on("error", () => resolve(null));
    child.on("exit", (c) => resolve(c));
  });
  note(
    code === 0
      ? `started a local stack at ${endpoint} (zmqchat down stops it)`
      : `could not start a local stack at ${endpoint}; see ${stackPaths(home).dir}`,
  );
}

/** `zmqchat` with no command: the full-screen UI. Logs go to HOME/tui.log, never to the screen. */
export async function tuiCommand(cmd: Command): Promise<number> {
  const settings = settingsOf(cmd);
  const debug = Boolean(cmd.optsWithGlobals().debug);
  mkdirSync(settings.home, { recursive: true, mode: 0o700 });
  const logStream = createWriteStream(join(settings.home, "tui.log"), { flags: "a", mode: 0o600 });
  const log = makeLogger("tui", settings.logLevel, logStream);
  const screen = new TerminalScreen(process.stdout, process.stdin);
  const restore = () => screen.leave();
  const crash = (err: unknown) => {
    screen.leave();
    log.error({ err }, "the TUI crashed");
    process.exit(report(err, debug));
  };
  const hangup = () => {
    screen.leave();
    process.exit(129);
  };
  const terminate = () => {
    screen.leave();
    process.exit(143);
  };
  process.on("exit", restore);
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  process.on("SIGHUP", hangup);
  process.on("SIGTERM", terminate);
  try {
    return await runTui({
      profiles: zeromqProfiles(settings, log),
      user: settings.user,
      bell: settings.bell,
      log,
      screen,
      prepare:
        settings.sources.endpoint === "default"
          ? (note) => ensureLocalStack(settings.home, settings.endpoints[0]!, note)
          : undefined,
    });
  } finally {
    screen.leave();
    process.off("uncaughtException", crash);
    process.off("unhandledRejection", crash);
    process.off("SIGHUP", hangup);
    process.off("SIGTERM", terminate);
    logStream.end();
  }
}
