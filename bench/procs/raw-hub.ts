/**
 * The raw baseline for the scale figures: the sockets a balancer holds per client and nothing
 * else. A ROUTER that echoes (the client's request socket) and an XPUB that takes
 * subscriptions (its delivery socket), so memory per client can be compared with ZeroMQ's own.
 */
import { Router, XPublisher } from "zeromq";
import { serve } from "../lib/rpc.js";

/** ZMQ_IN_BATCH_SIZE / ZMQ_OUT_BATCH_SIZE (libzmq 4.3 draft options; 8,192 bytes by default). */
const ZMQ_IN_BATCH_SIZE = 101;
const ZMQ_OUT_BATCH_SIZE = 102;

class SizedRouter extends Router {
  batch(bytes: number): void {
    this.setInt32Option(ZMQ_IN_BATCH_SIZE, bytes);
    this.setInt32Option(ZMQ_OUT_BATCH_SIZE, bytes);
  }
}

class SizedXPublisher extends XPublisher {
  batch(bytes: number): void {
    this.setInt32Option(ZMQ_IN_BATCH_SIZE, bytes);
    this.setInt32Option(ZMQ_OUT_BATCH_SIZE, bytes);
  }
}

const router = new SizedRouter({ sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
const xpub = new SizedXPublisher({ sendHighWaterMark: 10_000 });

async function echo(): Promise<void> {
  for await (const [id, body] of router) if (id && body) await router.send([id, body]);
}

async function subscriptions(): Promise<void> {
  for await (const _ of xpub) {
    // Read and drop: XPUB queues subscription messages for its reader.
  }
}

serve(
  {
    /** `batchBytes`: set ZeroMQ's per-connection I/O batch buffers (null: libzmq's defaults). */
    async start(params: { batchBytes?: number | null } = {}): Promise<{ router: string; xpub: string }> {
      if (params.batchBytes) {
        router.batch(params.batchBytes);
        xpub.batch(params.batchBytes);
      }
      await router.bind("tcp://127.0.0.1:0");
      await xpub.bind("tcp://127.0.0.1:0");
      void echo();
      void subscriptions();
      return { router: router.lastEndpoint!, xpub: xpub.lastEndpoint! };
    },
  },
  () => {
    router.close();
    xpub.close();
  },
);
