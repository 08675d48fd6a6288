import { Balancer } from "../../balancer/balancer.js";
import { silentLogger } from "../../core/logger.js";
import { ZeromqClientTransport, ZeromqWorkerTransport } from "../../transports/zeromq/index.js";
import { transportContract } from "../contract/transport-contract.js";

// Plaintext on loopback with OS-assigned ports: CURVE is the business of curve.test.ts.
transportContract("zeromq", async () => {
  const any = "tcp://127.0.0.1:0";
  const balancer = await Balancer.start({
    endpoints: { frontend: any, backend: any, pubIn: any, pubOut: any },
    publicHost: null,
    version: "contract",
    log: silentLogger,
  });
  return {
    client: new ZeromqClientTransport(),
    worker: new ZeromqWorkerTransport({ version: "contract" }),
    endpoint: balancer.bound.frontend,
    workerEndpoints: [balancer.bound.backend],
    stop: async () => balancer.stop(),
  };
});
