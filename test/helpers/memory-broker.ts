import { Balancer, type BrokerOptions } from "../../balancer/balancer.js";
import { silentLogger } from "../../core/logger.js";
import { MemoryHub } from "../../transports/memory/index.js";

/**
 * The in-process network with the production broker on it: the memory transport moves frames,
 * the real `Balancer` dispatches them. `stop` ends the broker's heartbeat timer.
 */
export function startMemoryBroker(options: Partial<BrokerOptions> = {}): {
  hub: MemoryHub;
  balancer: Balancer;
  stop(): void;
} {
  const hub = new MemoryHub(options.heartbeatMs);
  const balancer = Balancer.over((handlers) => hub.brokerSockets(handlers), {
    publicHost: null,
    version: "memory",
    log: silentLogger,
    ...options,
  });
  return { hub, balancer, stop: () => balancer.stop() };
}
