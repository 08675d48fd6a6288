import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { MetricsOptions } from "../core/ops.js";
import type { BalancerMetrics } from "./balancer.js";

/** Prometheus metrics of one balancer process, in a registry of its own. */
export function balancerMetrics({ processMetrics = true }: MetricsOptions = {}): {
  registry: Registry;
  metrics: BalancerMetrics;
} {
  const registry = new Registry();
  if (processMetrics) collectDefaultMetrics({ register: registry, prefix: "zmqchat_balancer_" });
  const forwarded = new Counter({
    name: "zmqchat_balancer_requests_forwarded_total",
    help: "Client requests dispatched to a server",
    registers: [registry],
  });
  const refused = new Counter({
    name: "zmqchat_balancer_refused_total",
    help: "Requests or subscriptions refused, by reason",
    labelNames: ["reason"],
    registers: [registry],
  });
  const live = new Gauge({
    name: "zmqchat_balancer_live_servers",
    help: "Servers alive and taking requests",
    registers: [registry],
  });
  const clients = new Gauge({
    name: "zmqchat_balancer_clients",
    help: "Clients connected: heard from (a request or a ping) in the last 10 s",
    registers: [registry],
  });
  return {
    registry,
    metrics: {
      clients: (n) => clients.set(n),
      forwarded: () => forwarded.inc(),
      refused: (reason) => refused.inc({ reason }),
      liveServers: (n) => live.set(n),
    },
  };
}
