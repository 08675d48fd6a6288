export { type BrokerEndpoints, type BrokerHandlers, ZAP_DOMAIN, ZeromqBrokerSockets } from "./broker.js";
export { ZeromqClientTransport } from "./client.js";
export { type CurveKeys, makeCurveKeys, Z85_KEY, ZapHandler, type ZapPolicy } from "./curve.js";
export { parseTcpEndpoint } from "./options.js";
export {
  findBalancerKey,
  publishBalancerKey,
  publishedKeysDir,
  unpublishBalancerKey,
} from "./published-keys.js";
export { ZeromqWorkerTransport } from "./worker.js";
