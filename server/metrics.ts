import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { MetricsOptions } from "../core/ops.js";
import type { ServiceMetrics } from "./service.js";
import type { StoreMetrics } from "./store/store.js";

/** Prometheus metrics of one server process, in a registry of its own. */
export function serverMetrics({ processMetrics = true }: MetricsOptions = {}): {
  registry: Registry;
  metrics: ServiceMetrics;
  store: StoreMetrics;
} {
  const registry = new Registry();
  if (processMetrics) collectDefaultMetrics({ register: registry, prefix: "zmqchat_server_" });
  const requests = new Counter({
    name: "zmqchat_server_requests_total",
    help: "Requests handled, by type and outcome",
    labelNames: ["type", "outcome"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "zmqchat_server_request_seconds",
    help: "Time to handle a request, by type",
    labelNames: ["type"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const stored = new Counter({
    name: "zmqchat_server_messages_stored_total",
    help: "Mailbox copies stored (one per recipient)",
    registers: [registry],
  });
  const published = new Counter({
    name: "zmqchat_server_deliveries_published_total",
    help: "Mailbox copies handed to live delivery, one per recipient (a quiet send leaves the sender's copy off the sending device but counts it)",
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: "zmqchat_server_store_batch_size",
    help: "Appends per group commit of the store",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  });
  const batchSeconds = new Histogram({
    name: "zmqchat_server_store_batch_seconds",
    help: "Time to write one group commit durably",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  const lockWaits = new Histogram({
    name: "zmqchat_server_store_lock_wait_seconds",
    help: "Time a group commit waited for another process's write lock (SQLite), from its first refused try",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2],
    registers: [registry],
  });
  const lockTries = new Counter({
    name: "zmqchat_server_store_lock_tries_total",
    help: "Tries of group commits refused because another process held the write lock (SQLite)",
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: "zmqchat_server_store_errors_total",
    help: "Store operations that failed, by operation",
    labelNames: ["operation"],
    registers: [registry],
  });
  storeErrors.inc({ operation: "append" }, 0);
  const limited = new Counter({
    name: "zmqchat_server_limited_total",
    help: "Requests refused by a quota (server/limits.ts), by quota",
    labelNames: ["limit"],
    registers: [registry],
  });
  return {
    registry,
    store: {
      batch(appends, seconds) {
        batchSize.observe(appends);
        batchSeconds.observe(seconds);
      },
      lockWait(seconds, tries) {
        lockWaits.observe(seconds);
        lockTries.inc(tries);
      },
      error: (operation) => storeErrors.inc({ operation }),
    },
    metrics: {
      request(type, outcome, seconds) {
        requests.inc({ type, outcome });
        latency.observe({ type }, seconds);
      },
      stored: (n) => stored.inc(n),
      published: (n) => published.inc(n),
      limited: (limit) => limited.inc({ limit }),
    },
  };
}
