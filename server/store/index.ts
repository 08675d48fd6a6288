import { ZmqchatError } from "../../core/errors.js";
import { SqliteStore } from "./sqlite.js";
import type { Store, StoreMetrics } from "./store.js";

export { SqliteStore } from "./sqlite.js";
export type {
  AppendInput,
  AppendResult,
  GroupRecord,
  Store,
  StoredItem,
  StoreMetrics,
  UserRecord,
} from "./store.js";

/**
 * Opens the store a URL names: `sqlite:PATH` (or a bare path), `influx://HOST:PORT/DB`.
 * `metrics` receives batch sizes and errors.
 */
export async function openStore(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
  options: { metrics?: StoreMetrics } = {},
): Promise<Store> {
  let store: Store;
  if (url.startsWith("sqlite:")) {
    store = new SqliteStore(url.slice("sqlite:".length), { metrics: options.metrics });
  } else if (url.startsWith("influx://") || url.startsWith("influxs://")) {
    const { InfluxStore } = await import("./influx.js").catch((cause) => {
      throw new ZmqchatError("usage", "this build has no InfluxDB store", { cause });
    });
    const influx = InfluxStore.fromUrl(url, env);
    influx.metrics = options.metrics ?? null;
    store = influx;
  } else if (!url.includes("://")) {
    store = new SqliteStore(url, { metrics: options.metrics });
  } else {
    throw new ZmqchatError("usage", `unknown store URL ${url}`, {
      hint: "use sqlite:PATH or influx://HOST:PORT/DB",
    });
  }
  await store.init();
  return store;
}
