/** The raw baseline's worker: a DEALER that echoes every request (the echo is the ack). */
import { Dealer } from "zeromq";
import { serve } from "../lib/rpc.js";

const dealer = new Dealer({ sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });

async function echo(): Promise<void> {
  for await (const [client, body] of dealer) {
    if (client && body) await dealer.send([client, body]);
  }
}

serve(
  {
    async start(params: { backend: string }): Promise<void> {
      dealer.connect(params.backend);
      await dealer.send(["READY"]);
      void echo();
    },
  },
  () => dealer.close(),
);
