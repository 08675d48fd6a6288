/**
 * The raw ZeroMQ baseline's broker, in the zguide's shape: a ROUTER for clients, a ROUTER for
 * workers, and nothing else: no parsing, no validation, no heartbeats. Whatever zmqchat's
 * balancer costs on top of this is the price of its features.
 */
import { Router } from "zeromq";
import { serve } from "../lib/rpc.js";

const READY = "READY";
const frontend = new Router({ sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
const backend = new Router({ sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
const workers: Buffer[] = [];
let turn = 0;

async function clientsToWorkers(): Promise<void> {
  for await (const [client, body] of frontend) {
    if (workers.length === 0 || !client || !body) continue;
    const worker = workers[turn++ % workers.length]!;
    await backend.send([worker, client, body]);
  }
}

async function workersToClients(): Promise<void> {
  for await (const [worker, client, body] of backend) {
    if (!worker || !client) continue;
    if (!body && client.toString() === READY) {
      workers.push(worker);
      continue;
    }
    if (body) await frontend.send([client, body]);
  }
}

serve(
  {
    async start(): Promise<{ frontend: string; backend: string }> {
      await frontend.bind("tcp://127.0.0.1:0");
      await backend.bind("tcp://127.0.0.1:0");
      void clientsToWorkers();
      void workersToClients();
      return { frontend: frontend.lastEndpoint!, backend: backend.lastEndpoint! };
    },
    workers: () => workers.length,
  },
  () => {
    frontend.close();
    backend.close();
  },
);
