import { transportContract } from "../contract/transport-contract.js";
import { startMemoryBroker } from "../helpers/memory-broker.js";

transportContract("memory", async () => {
  const { hub, stop } = startMemoryBroker();
  return {
    client: hub.clientTransport(),
    worker: hub.workerTransport(),
    endpoint: "memory://hub",
    workerEndpoints: ["memory://hub"],
    stop: async () => stop(),
  };
});
