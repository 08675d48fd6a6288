import { join } from "node:path";
import type { Command } from "commander";
import { Cache } from "../core/client/cache.js";
import { ChatClient } from "../core/client/client.js";
import { FileEndpointMemory } from "../core/client/endpoints.js";
import { ensureIdentity, type LoadedIdentity, loadIdentity, profilePaths } from "../core/client/profile.js";
import { readConfigFile, resolveHome, resolveSettings, type Settings } from "../core/config/config.js";
import { z85Decode } from "../core/crypto/session-binding.js";
import { ZmqchatError } from "../core/errors.js";
import { ZeromqClientTransport } from "../transports/zeromq/client.js";
import { findBalancerKey } from "../transports/zeromq/index.js";
import { deviceCurveKeys } from "./curve.js";
import { keyChangedSentence, makeCliLogger } from "./logging.js";

export interface GlobalFlags {
  user?: string;
  endpoint?: string;
  home?: string;
  config?: string;
  debug?: boolean;
  curveServerKey?: string;
  requestTimeout?: string;
}

/** Settings for a command: its own flags and the program's global ones, merged with env and config file. */
export function settingsOf(cmd: Command, env: NodeJS.ProcessEnv = process.env): Settings {
  const flags = cmd.optsWithGlobals() as GlobalFlags;
  const { home, source } = resolveHome(flags, env);
  const configFile = flags.config || env.ZMQCHAT_CONFIG || join(home, "config.json");
  const file = readConfigFile(configFile, Boolean(flags.config || env.ZMQCHAT_CONFIG));
  return resolveSettings(
    {
      flags: {
        user: flags.user,
        endpoint: flags.endpoint,
        curveServerKey: flags.curveServerKey,
        requestTimeout: flags.requestTimeout,
      },
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

/**
 * The ZeroMQ client transport, with CurveZMQ pinning the balancer's key: the configured one, or
 * else the one a balancer of this user on this machine published for the endpoint (local stack).
 */
export function clientTransport(settings: Settings, profileDir: string): ZeromqClientTransport {
  if (!settings.curveServerKey) {
    return new ZeromqClientTransport({
      discover: { serverKeyOf: (e) => findBalancerKey(e), keys: () => deviceCurveKeys(profileDir) },
    });
  }
  const keys = settings.curveServerKey.split(",");
  if (keys.length === 1) {
    return new ZeromqClientTransport({ curve: { serverKey: keys[0]!, keys: deviceCurveKeys(profileDir) } });
  }
  if (keys.length !== settings.endpoints.length) {
    throw new ZmqchatError("usage", "give one CURVE server key for all endpoints or one per endpoint", {
      hint: `${settings.endpoints.length} endpoints, ${keys.length} keys`,
    });
  }
  // One key per balancer, in the order of the endpoints.
  const byEndpoint = new Map(settings.endpoints.map((e, i) => [e, keys[i]!]));
  return new ZeromqClientTransport({
    discover: { serverKeyOf: (e) => byEndpoint.get(e) ?? null, keys: () => deviceCurveKeys(profileDir) },
  });
}

/**
 * This device's CURVE secret key (raw X25519), the one its CURVE links use: sessions are bound to
 * it whether or not the link runs CURVE (`--insecure`), so a stolen token is useless elsewhere.
 */
export function curveSecretOf(profileDir: string): Buffer {
  return z85Decode(deviceCurveKeys(profileDir).secretKey);
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
    log: makeCliLogger("client", {
      debug: process.argv.includes("--debug"),
      level: settings.sources.logLevel === "default" ? undefined : settings.logLevel,
    }),
    curveSecret: curveSecretOf(paths.dir),
    endpointMemory: new FileEndpointMemory(join(paths.dir, "endpoints.json")),
    requestTimeoutMs: settings.requestTimeoutMs,
    readReceipts: settings.readReceipts,
    presence: settings.presence,
    typing: settings.typing,
  });
  const warned = new Set<string>();
  client.on((e) => {
    if (e.type !== "key_changed" || warned.has(e.name)) return;
    warned.add(e.name);
    process.stderr.write(`${keyChangedSentence(e.name)}\n`);
  });
  return {
    client,
    async close() {
      await client.close();
      await cache.close();
    },
  };
}

/**
 * Brings the client's cache up to date with the service. Offline (timeout, unavailable), warns
 * (without the `zmqchat: warning:` prefix) that the command goes on with `fallback` and returns
 * false; any other failure is thrown.
 */
export async function syncOrWarn(
  client: ChatClient,
  warn: (line: string) => void,
  fallback: string,
): Promise<boolean> {
  try {
    await client.sync();
    return true;
  } catch (err) {
    if (!(err instanceof ZmqchatError) || (err.code !== "timeout" && err.code !== "unavailable")) throw err;
    warn(`offline (${err.message}); ${fallback}`);
    return false;
  }
}
