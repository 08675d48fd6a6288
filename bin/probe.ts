import { uuidv7 } from "../core/protocol/ids.js";
import { ZeromqClientTransport } from "../transports/zeromq/client.js";
import { findBalancerKey, makeCurveKeys } from "../transports/zeromq/index.js";

/**
 * Asks a balancer for `hello`; resolves true when it answers within the time. Over CurveZMQ
 * (with a throwaway device key) when a balancer on this machine published its key for the endpoint.
 */
export async function probeBalancer(endpoint: string, timeoutMs: number): Promise<boolean> {
  const link = new ZeromqClientTransport({
    discover: { serverKeyOf: (e) => findBalancerKey(e), keys: makeCurveKeys },
  }).connect(endpoint);
  try {
    return await new Promise<boolean>((resolve) => {
      const id = uuidv7();
      const timer = setTimeout(() => resolve(false), timeoutMs);
      link.onReply((frame) => {
        if (frame.toString().includes(`"id":"${id}"`)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      link.send(Buffer.from(JSON.stringify({ v: 1, id, type: "hello", body: {} })), "broker");
    });
  } finally {
    await link.close();
  }
}

/**
 * Polls until the balancer answers or the deadline passes, or at once when `stillStarting`
 * (if given) says whatever was starting it has given up.
 */
export async function waitForBalancer(
  endpoint: string,
  timeoutMs: number,
  stillStarting: () => boolean = () => true,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && stillStarting()) {
    if (await probeBalancer(endpoint, Math.min(500, Math.max(50, deadline - Date.now())))) return true;
  }
  return false;
}
