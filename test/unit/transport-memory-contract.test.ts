import { MemoryHub } from "../../transports/memory/index.js";
import { transportContract } from "../contract/transport-contract.js";

transportContract("memory", async () => {
  const hub = new MemoryHub();
  return {
    client: hub.clientTransport(),
    worker: hub.workerTransport(),
    endpoint: "memory://hub",
    workerEndpoints: ["memory://hub"],
    stop: async () => {},
  };
});
