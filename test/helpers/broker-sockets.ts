import { ZeromqBrokerSockets } from "../../transports/zeromq/broker.js";

/** The balancer's ZeroMQ sockets alone, bound on loopback ports the OS picks, admitting any 64-byte topic. */
export async function bindBrokerSockets() {
  const sockets = new ZeromqBrokerSockets({
    onClient() {},
    onWorker() {},
    onWorkerUnreachable() {},
    acceptTopic: (t) => t.length === 64,
  });
  const ep = "tcp://127.0.0.1:0";
  const bound = await sockets.bind({ frontend: ep, backend: ep, pubIn: ep, pubOut: ep });
  return { sockets, bound };
}
