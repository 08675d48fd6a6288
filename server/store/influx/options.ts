import { ZmqchatError } from "../../../core/errors.js";
import { DURATION, durationMs } from "./influxql.js";

export interface InfluxStoreOptions {
  /** Base URL of InfluxDB's HTTP API, `http(s)://host:port`. */
  url: string;
  db: string;
  /** Retention policy to use; created (or its duration changed) when `retention` is set. Default `zmqchat` with `retention`, else the database's default policy. */
  rp?: string;
  /** Keep data this long (an InfluxQL duration such as `30d`, or `INF`). */
  retention?: string;
  username?: string;
  password?: string;
  token?: string;
  /** Write consistency on Enterprise clusters (`any`, `one`, `quorum`, `all`). */
  consistency?: "any" | "one" | "quorum" | "all";
  /** Create the database when it is missing (InfluxDB 1.x). Default true. */
  createDatabase?: boolean;
  /**
   * The safety window: how long after its timestamp a point is assumed to be visible to every
   * reader (write latency plus clock skew between servers). Reads never hand out a position
   * younger than this until it has passed; claims (names, groups, lanes) are decided after it.
   */
  safetyWindowMs?: number;
  /** How long a write is retried (with backoff) before the callers get `unavailable`. */
  retryForMs?: number;
  /** Most points in one HTTP write. */
  maxBatchPoints?: number;
  /** Most bytes of line protocol in one HTTP write. */
  maxBatchBytes?: number;
  /** How far back a resend's first copy is looked for (also bounded by its UUIDv7 time, see docs). */
  dedupeWindowMs?: number;
  /** Per-request HTTP timeout. */
  timeoutMs?: number;
  /** Lane lease duration (see lane-lease.ts). */
  laneLeaseMs?: number;
}

export const DEFAULTS = {
  safetyWindowMs: 500,
  retryForMs: 5_000,
  maxBatchPoints: 2_000,
  maxBatchBytes: 4 * 1024 * 1024,
  dedupeWindowMs: 7 * 24 * 3600_000,
  timeoutMs: 10_000,
  laneLeaseMs: 10 * 60_000,
};

/** Options with every default filled in. */
export type ResolvedOptions = Required<
  Omit<InfluxStoreOptions, "rp" | "retention" | "username" | "password" | "token" | "consistency">
> &
  Pick<InfluxStoreOptions, "retention" | "username" | "password" | "token" | "consistency"> & {
    rp: string | undefined;
  };

/** Checks the options and fills in the defaults. */
export function resolveOptions(options: InfluxStoreOptions): ResolvedOptions {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.db)) {
    throw new ZmqchatError("usage", `bad InfluxDB database name ${JSON.stringify(options.db)}`, {
      hint: "use 1-64 characters: letters, digits, '_', '.', '-'",
    });
  }
  if (options.retention !== undefined && !DURATION.test(options.retention)) {
    throw new ZmqchatError("usage", `bad retention ${JSON.stringify(options.retention)}`, {
      hint: "use an InfluxQL duration such as 30d, 12h, 4w, or INF",
    });
  }
  const rp = options.rp ?? (options.retention !== undefined ? "zmqchat" : undefined);
  if (rp !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(rp)) {
    throw new ZmqchatError("usage", `bad retention policy name ${JSON.stringify(rp)}`);
  }
  return {
    ...DEFAULTS,
    createDatabase: true,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    url: options.url.replace(/\/+$/, ""),
    db: options.db,
    rp,
  } as ResolvedOptions;
}

/**
 * Options from a store URL and the environment: `influx://HOST[:PORT]/DB` (or `influxs://` for
 * HTTPS) with optional query parameters `retention`, `rp`, `window`, `retry`, `batch`,
 * `timeout`, `create=false`. Credentials come from the environment only:
 * ZMQCHAT_INFLUX_USER / ZMQCHAT_INFLUX_PASSWORD, or ZMQCHAT_INFLUX_TOKEN.
 */
export function optionsFromUrl(url: string, env: NodeJS.ProcessEnv): InfluxStoreOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new ZmqchatError("usage", `bad store URL ${url}`, { cause, hint: "use influx://HOST:PORT/DB" });
  }
  if (u.protocol !== "influx:" && u.protocol !== "influxs:") {
    throw new ZmqchatError("usage", `not an InfluxDB store URL: ${url}`, {
      hint: "use influx://HOST:PORT/DB",
    });
  }
  if (u.username || u.password) {
    throw new ZmqchatError("usage", "credentials do not belong in the store URL", {
      hint: "set ZMQCHAT_INFLUX_USER and ZMQCHAT_INFLUX_PASSWORD, or ZMQCHAT_INFLUX_TOKEN",
    });
  }
  const db = decodeURIComponent(u.pathname.replace(/^\/+/, "").replace(/\/+$/, ""));
  if (!db)
    throw new ZmqchatError("usage", `the store URL names no database: ${url}`, {
      hint: "use influx://HOST:PORT/DB",
    });
  const known = new Set(["retention", "rp", "window", "retry", "batch", "create", "timeout"]);
  for (const key of u.searchParams.keys()) {
    if (!known.has(key)) {
      throw new ZmqchatError("usage", `unknown store URL parameter ${key}`, {
        hint: `known: ${[...known].join(", ")}`,
      });
    }
  }
  const ms = (key: string): number | undefined => {
    const v = u.searchParams.get(key);
    if (v === null) return undefined;
    if (!DURATION.test(v) || /^inf$/i.test(v))
      throw new ZmqchatError("usage", `bad ${key}=${v} in the store URL`, { hint: "use e.g. 500ms, 5s" });
    return durationMs(v);
  };
  const batch = u.searchParams.get("batch");
  if (batch !== null && !/^[1-9][0-9]{0,5}$/.test(batch))
    throw new ZmqchatError("usage", `bad batch=${batch} in the store URL`);
  const user = env.ZMQCHAT_INFLUX_USER || undefined;
  const consistency = env.ZMQCHAT_INFLUX_CONSISTENCY || undefined;
  if (consistency !== undefined && !["any", "one", "quorum", "all"].includes(consistency)) {
    throw new ZmqchatError(
      "usage",
      `ZMQCHAT_INFLUX_CONSISTENCY=${consistency} is not any, one, quorum or all`,
    );
  }
  return {
    ...(consistency !== undefined ? { consistency: consistency as "any" | "one" | "quorum" | "all" } : {}),
    // URL.hostname keeps the brackets of an IPv6 address.
    url: `${u.protocol === "influxs:" ? "https" : "http"}://${u.hostname}:${u.port || "8086"}`,
    db,
    ...(u.searchParams.get("retention") !== null ? { retention: u.searchParams.get("retention")! } : {}),
    ...(u.searchParams.get("rp") !== null ? { rp: u.searchParams.get("rp")! } : {}),
    ...(user !== undefined ? { username: user, password: env.ZMQCHAT_INFLUX_PASSWORD ?? "" } : {}),
    ...(env.ZMQCHAT_INFLUX_TOKEN ? { token: env.ZMQCHAT_INFLUX_TOKEN } : {}),
    ...(ms("window") !== undefined ? { safetyWindowMs: ms("window")! } : {}),
    ...(ms("retry") !== undefined ? { retryForMs: ms("retry")! } : {}),
    ...(ms("timeout") !== undefined ? { timeoutMs: ms("timeout")! } : {}),
    ...(batch !== null ? { maxBatchPoints: Number(batch) } : {}),
    ...(u.searchParams.get("create") === "false" ? { createDatabase: false } : {}),
  };
}
