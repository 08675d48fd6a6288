/** The raw baseline's client: a DEALER that keeps a bounded number of requests in flight, or offers a fixed rate. */
import { Dealer } from "zeromq";
import { now, sleep } from "../lib/clock.js";
import { serve } from "../lib/rpc.js";

export interface RawResult {
  /** Send time and echo time of each message (ms since the epoch; NaN when never echoed). */
  sent: Float64Array;
  echoed: Float64Array;
  duplicates: number;
}

function payload(index: number, size: number): Buffer {
  const b = Buffer.alloc(size, 120);
  b.writeUInt32LE(index, 0);
  return b;
}

/** One run over a fresh DEALER: `pace` decides when message i may go. */
async function run(
  endpoint: string,
  count: number,
  size: number,
  maxInFlight: number,
  pace: (i: number) => Promise<void>,
  stallMs: number,
): Promise<RawResult> {
  const dealer = new Dealer({ sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
  dealer.connect(endpoint);
  const sent = new Float64Array(count).fill(Number.NaN);
  const echoed = new Float64Array(count).fill(Number.NaN);
  let received = 0;
  let duplicates = 0;
  let inFlight = 0;
  const waker: { wake: (() => void) | null } = { wake: null };
  let lastProgress = now();
  const reading = (async () => {
    for await (const [body] of dealer) {
      if (!body || body.length < 4) continue;
      const i = body.readUInt32LE(0);
      if (i >= count) continue;
      if (!Number.isNaN(echoed[i]!)) {
        duplicates++;
        continue;
      }
      echoed[i] = now();
      lastProgress = echoed[i]!;
      received++;
      inFlight--;
      waker.wake?.();
      if (received === count) return;
    }
  })();
  try {
    for (let i = 0; i < count; i++) {
      await pace(i);
      while (inFlight >= maxInFlight) await new Promise<void>((r) => (waker.wake = r));
      waker.wake = null;
      inFlight++;
      sent[i] = now();
      await dealer.send(payload(i, size));
    }
    // Wait for the last echoes; give up only when nothing has come back for a long while.
    while (received < count && now() - lastProgress < stallMs) await sleep(20);
  } finally {
    dealer.close();
    await reading.catch(() => {});
  }
  return { sent, echoed, duplicates };
}

serve({
  burst(p: { endpoint: string; count: number; size: number; maxInFlight: number; stallMs: number }) {
    return run(p.endpoint, p.count, p.size, p.maxInFlight, async () => {}, p.stallMs);
  },
  rate(p: {
    endpoint: string;
    rate: number;
    durationMs: number;
    size: number;
    maxInFlight: number;
    stallMs: number;
  }) {
    const count = Math.round((p.rate * p.durationMs) / 1000);
    let start = 0;
    return run(
      p.endpoint,
      count,
      p.size,
      p.maxInFlight,
      async (i) => {
        if (i === 0) start = now();
        const due = start + (i * 1000) / p.rate;
        const wait = due - now();
        if (wait > 1) await sleep(wait);
      },
      p.stallMs,
    );
  },
});
