import { uuidv7 } from "../core/protocol/ids.js";
import { ZeromqClientTransport } from "../transports/zeromq/client.js";

/** Asks a balancer for `hello`; resolves true when it answers within the time. */
export async function probeBalancer(endpoint: string, timeoutMs: number): Promise<boolean> {
  const link = new ZeromqClientTransport().connect(endpoint);
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

/** Polls until the balancer answers or the deadline passes. */
export async function waitForBalancer(endpoint: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probeBalancer(endpoint, Math.min(500, Math.max(50, deadline - Date.now())))) return true;
  }
  return false;
}
