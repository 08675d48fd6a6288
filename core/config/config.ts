import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { ZmqchatError } from "../errors.js";
import { NAME_PATTERN, NAME_RULE } from "../protocol/limits.js";

import { DEFAULT_ENDPOINT, DEFAULT_LOG_LEVEL, DEFAULT_REQUEST_TIMEOUT } from "./defaults.js";
import { parseDuration } from "./duration.js";

export { DEFAULT_ENDPOINT } from "./defaults.js";

/** Every setting, its default (from defaults.ts), its environment variable, and how to check it. */
const FIELDS = {
  user: {
    env: "ZMQCHAT_USER",
    default: undefined as string | undefined,
    schema: z.string().regex(NAME_PATTERN, NAME_RULE),
  },
  endpoint: {
    env: "ZMQCHAT_ENDPOINT",
    default: DEFAULT_ENDPOINT,
    schema: z
      .string()
      .refine((s) => s.split(",").every((e) => /^(tcp:\/\/[^,\s]+:\d{1,5}|memory:\/\/\S+)$/.test(e.trim())), {
        message: "a comma-separated list of tcp://HOST:PORT endpoints",
      }),
  },
  bell: { env: "ZMQCHAT_BELL", default: true as boolean, schema: z.boolean() },
  /** Issue 17: false sends no read receipts and shows none (receipts.ts). */
  readReceipts: { env: "ZMQCHAT_READ_RECEIPTS", default: true as boolean, schema: z.boolean() },
  /** Issue 17: false neither shares this user's presence nor shows others'. */
  presence: { env: "ZMQCHAT_PRESENCE", default: true as boolean, schema: z.boolean() },
  /** Issue 17: false neither sends typing signals nor shows others'. */
  typing: { env: "ZMQCHAT_TYPING", default: true as boolean, schema: z.boolean() },
  logLevel: {
    env: "ZMQCHAT_LOG_LEVEL",
    default: DEFAULT_LOG_LEVEL,
    schema: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]),
  },
  curveServerKey: {
    env: "ZMQCHAT_CURVE_SERVER_KEY",
    default: undefined as string | undefined,
    schema: z
      .string()
      .regex(
        /^[0-9a-zA-Z.:+=^!/*?&<>()[\]{}@%$#-]{40}(,[0-9a-zA-Z.:+=^!/*?&<>()[\]{}@%$#-]{40})*$/,
        "a 40-character Z85 CURVE public key (or one per endpoint, comma-separated)",
      ),
  },
  /** How long a command waits for the service to answer one request, retries and failover included. */
  requestTimeout: {
    env: "ZMQCHAT_REQUEST_TIMEOUT",
    default: DEFAULT_REQUEST_TIMEOUT,
    schema: z
      .union([z.string(), z.number().positive().transform(String)])
      .refine((v) => durationMs(v) !== null, { message: "a duration such as 10s, 500ms or 2m" }),
  },
} as const;

export type SettingName = keyof typeof FIELDS;

/** The `ZMQCHAT_*` environment variable of each setting, for messages and `config show`. */
export const SETTING_ENV = Object.fromEntries(
  Object.entries(FIELDS).map(([name, field]) => [name, field.env]),
) as Record<SettingName, string>;

export type Source = "flag" | "env" | "file" | "default";

export interface Settings {
  home: string;
  user: string | undefined;
  endpoints: string[];
  bell: boolean;
  readReceipts: boolean;
  presence: boolean;
  typing: boolean;
  logLevel: string;
  /** The balancer's CURVE public key: set, the client encrypts its link with CurveZMQ and pins this key. */
  curveServerKey: string | undefined;
  /** `requestTimeout` as written (`10s`), and in milliseconds. */
  requestTimeout: string;
  requestTimeoutMs: number;
  sources: Record<SettingName | "home", Source>;
  configFile: string;
}

export interface SettingsInput {
  flags: Partial<Record<SettingName | "home" | "config", unknown>>;
  env: NodeJS.ProcessEnv;
  /** Contents of the config file, already parsed, or null when there is none. */
  file: Record<string, unknown> | null;
  configFile: string;
  home: string;
}

/** The home directory: flag > ZMQCHAT_HOME > ~/.zmqchat. The config file lives in it unless --config says otherwise. */
export function resolveHome(
  flags: { home?: unknown },
  env: NodeJS.ProcessEnv,
): { home: string; source: Source } {
  if (typeof flags.home === "string" && flags.home) return { home: flags.home, source: "flag" };
  if (env.ZMQCHAT_HOME) return { home: env.ZMQCHAT_HOME, source: "env" };
  return { home: join(homedir(), ".zmqchat"), source: "default" };
}

/** Reads a config file; a missing default file is no error, a broken one is. */
export function readConfigFile(path: string, explicit: boolean): Record<string, unknown> | null {
  if (!existsSync(path)) {
    if (explicit) throw new ZmqchatError("usage", `config file ${path} does not exist`);
    return null;
  }
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not a JSON object");
    return parsed as Record<string, unknown>;
  } catch (cause) {
    throw new ZmqchatError("usage", `config file ${path} is not valid JSON: ${(cause as Error).message}`);
  }
}

/**
 * Merges flags > ZMQCHAT_* environment > config file > defaults, field by field, and checks
 * every value once. All bad values are reported together.
 */
export function resolveSettings(input: SettingsInput, homeSource: Source): Settings {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const sources = { home: homeSource } as Settings["sources"];
  if (input.file) {
    for (const key of Object.keys(input.file)) {
      if (!(key in FIELDS)) problems.push(`${input.configFile}: unknown key "${key}"`);
    }
  }
  for (const [name, field] of Object.entries(FIELDS) as Array<[SettingName, (typeof FIELDS)[SettingName]]>) {
    let value: unknown;
    let source: Source = "default";
    const envValue = input.env[field.env];
    if (input.flags[name] !== undefined) {
      value = input.flags[name];
      source = "flag";
    } else if (envValue !== undefined && envValue !== "") {
      value = typeof field.default === "boolean" ? parseBool(envValue) : envValue;
      source = "env";
    } else if (input.file && input.file[name] !== undefined) {
      value = input.file[name];
      source = "file";
    } else {
      value = field.default;
    }
    if (value !== undefined) {
      const r = (field.schema as z.ZodType).safeParse(value);
      if (!r.success) {
        const where =
          source === "flag"
            ? `--${kebab(name)}`
            : source === "env"
              ? field.env
              : `${input.configFile}: ${name}`;
        problems.push(`${where}: ${r.error.issues[0]?.message ?? "invalid"} (got ${JSON.stringify(value)})`);
      }
    }
    values[name] = value;
    sources[name] = source;
  }
  if (problems.length > 0) {
    throw new ZmqchatError("usage", `invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  return {
    home: input.home,
    user: values.user as string | undefined,
    endpoints: String(values.endpoint)
      .split(",")
      .map((e) => e.trim())
      .filter(Boolean),
    bell: values.bell as boolean,
    readReceipts: values.readReceipts as boolean,
    presence: values.presence as boolean,
    typing: values.typing as boolean,
    logLevel: values.logLevel as string,
    curveServerKey: values.curveServerKey as string | undefined,
    requestTimeout: String(values.requestTimeout),
    requestTimeoutMs: durationMs(String(values.requestTimeout)) ?? 10_000,
    sources,
    configFile: input.configFile,
  };
}

/** A duration's milliseconds (a bare number is seconds), or null when it is none; at most a day. */
function durationMs(v: string): number | null {
  try {
    const ms = parseDuration(v);
    return ms <= 86_400_000 ? ms : null;
  } catch {
    return null;
  }
}

function parseBool(s: string): unknown {
  if (/^(1|true|yes|on)$/i.test(s)) return true;
  if (/^(0|false|no|off)$/i.test(s)) return false;
  return s;
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
