/**
 * The defaults of every setting a user or an operator may leave out, in one place: the client
 * settings table (config.ts) and the operator commands' flags (`up`, `server`, `balancer`) both
 * read them from here.
 */

/** Where a local stack listens, and the address operator commands bind by default. */
export const DEFAULT_HOST = "127.0.0.1";

/** The first of a balancer's four ports: clients, servers (+1), pub in (+2), pub out (+3). */
export const DEFAULT_PORT = 5570;

/** The balancer a client reaches when nothing says otherwise. */
export const DEFAULT_ENDPOINT = `tcp://${DEFAULT_HOST}:${DEFAULT_PORT}`;

export const DEFAULT_LOG_LEVEL = "info";

/** How long a client command waits for one request's answer (setting `requestTimeout`). */
export const DEFAULT_REQUEST_TIMEOUT = "10s";

/** Defaults of the operator commands' flags, as commander takes them (text, like a typed flag). */
export const OPERATOR_DEFAULTS = {
  /** `up --servers`. */
  servers: "2",
  /** `up --port`, `balancer --port`. */
  port: String(DEFAULT_PORT),
  /** `balancer --bind`. */
  bind: DEFAULT_HOST,
  /** `server --http-host`, `balancer --http-host`. */
  httpHost: DEFAULT_HOST,
  /** `server --balancer`: the default balancer's server-facing port. */
  balancer: `tcp://${DEFAULT_HOST}:${DEFAULT_PORT + 1}`,
  /** `server --store`. */
  store: "sqlite:./zmqchat-store.db",
  /** `server --log-level`, `balancer --log-level`. */
  logLevel: DEFAULT_LOG_LEVEL,
} as const;
