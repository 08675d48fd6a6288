import { join } from "node:path";
import type { Command } from "commander";
import { Cache } from "../core/client/cache.js";
import { ChatClient } from "../core/client/client.js";
import { ensureIdentity, type LoadedIdentity, loadIdentity, profilePaths } from "../core/client/profile.js";
import { readConfigFile, resolveHome, resolveSettings, type Settings } from "../core/config/config.js";
import { z85Decode } from "../core/crypto/session-binding.js";
import { ZmqchatError } from "../core/errors.js";
import { ZeromqClientTransport } from "../transports/zeromq/client.js";
import { deviceCurveKeys } from "./curve.js";
import { makeLogger } from "./logging.js";

export interface GlobalFlags {
  user?: string;
  endpoint?: string;
  home?: string;
  config?: string;
  debug?: boolean;
  curveServerKey?: string;
}

/** Settings for a command: its own flags and the program's global ones, merged with env and config file. */
export function settingsOf(cmd: Command, env: NodeJS.ProcessEnv = process.env): Settings {
  const flags = cmd.optsWithGlobals() as GlobalFlags;
  const { home, source } = resolveHome(flags, env);
  const configFile = flags.config || env.ZMQCHAT_CONFIG || join(home, "config.json");
  const file = readConfigFile(configFile, Boolean(flags.config || env.ZMQCHAT_CONFIG));
  return resolveSettings(
    {
      flags: { user: flags.user, endpoint: flags.endpoint, curveServerKey: flags.curveServerKey },
      env,
      file,
      configFile,
      home,
    },
    source,
  );
}

export function requireUser(settings: Settings): string {
  if (!settings.user) {
    throw new ZmqchatError("usage", "which user? pass --user NAME or set ZMQCHAT_USER");
  }
  return settings.user;
}

/** The ZeroMQ client transport, with CurveZMQ when the balancer's key is configured. */
export function clientTransport(settings: Settings, profileDir: string): ZeromqClientTransport {
  if (!settings.curveServerKey) return new ZeromqClientTransport();
  return new ZeromqClientTransport({
    curve: { serverKey: settings.curveServerKey, keys: deviceCurveKeys(profileDir) },
  });
}

/** This device's CURVE secret key (raw X25519), when the link uses CURVE: sessions are bound to it. */
export function curveSecretOf(settings: Settings, profileDir: string): Buffer | undefined {
  return settings.curveServerKey ? z85Decode(deviceCurveKeys(profileDir).secretKey) : undefined;
}

/** The passphrase that unlocks (or, at register, protects) a profile's keys: ZMQCHAT_PASSPHRASE. */
export function unlockOptions(env: NodeJS.ProcessEnv = process.env): { passphrase?: string } {
  return env.ZMQCHAT_PASSPHRASE ? { passphrase: env.ZMQCHAT_PASSPHRASE } : {};
}

export interface ClientSession {
  client: ChatClient;
  close(): Promise<void>;
}

/** Opens the user's profile and a client for it. `create` makes keys when the profile is new. */
export function openClient(
  settings: Settings,
  opts: { create?: boolean; identity?: LoadedIdentity } = {},
): ClientSession {
  const user = requireUser(settings);
  const paths = profilePaths(settings.home, user);
  const unlock = unlockOptions();
  const identity =
    opts.identity ?? (opts.create ? ensureIdentity(paths, user, unlock) : loadIdentity(paths, user, unlock));
  const cache = new Cache(paths.cache);
  const transport = clientTransport(settings, paths.dir);
  const client = new ChatClient({
    connect: (e) => transport.connect(e),
    endpoints: settings.endpoints,
    identity,
    cache,
    log: makeLogger("client", process.env.ZMQCHAT_LOG_LEVEL ?? "warn", process.stderr),
    curveSecret: curveSecretOf(settings, paths.dir),
  });
  return {
    client,
    async close() {
      await client.close();
      cache.close();
    },
  };
}
