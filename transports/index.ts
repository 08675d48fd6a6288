import { ZmqchatError } from "../core/errors.js";
import type { ClientTransport } from "../core/transport.js";
import { ZeromqClientTransport } from "./zeromq/client.js";

/** Picks the client transport by URL scheme: `tcp://` is ZeroMQ; `memory://` needs a hub passed in. */
export function clientTransportFor(endpoint: string, memory?: ClientTransport): ClientTransport {
  if (endpoint.startsWith("tcp://")) return new ZeromqClientTransport();
  if (endpoint.startsWith("memory://") && memory) return memory;
  throw new ZmqchatError("usage", `unsupported endpoint ${endpoint}`, {
    hint: "endpoints look like tcp://HOST:PORT",
  });
}
