export { type BrokerEndpoints, type BrokerHandlers, ZeromqBrokerSockets } from "./broker.js";
export { ZeromqClientTransport } from "./client.js";
export { parseTcpEndpoint } from "./options.js";
export { ZeromqWorkerTransport } from "./worker.js";
