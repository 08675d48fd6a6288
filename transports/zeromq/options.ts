import { MAX_FRAME_BYTES } from "../../core/protocol/limits.js";

/** Options every zmqchat socket gets: bounded frames, no lingering on close. */
export const COMMON_SOCKET_OPTIONS = {
  maxMessageSize: MAX_FRAME_BYTES + 4096,
  linger: 0,
} as const;

/**
 * Queue bounds of the service's sockets: about a thousand frames per pipe (ZMQ_SNDHWM /
 * ZMQ_RCVHWM), and a byte budget for what waits in JavaScript before libzmq takes it, so
 * a flood of 1 MiB frames holds tens of MiB, not 100k frames of 1 MiB per hop.
 */
export const QUEUE_FRAMES = 1000;
export const QUEUE_BYTES = 64 * 1024 * 1024;

/** Splits `tcp://host:port` into its parts; throws on anything else. */
export function parseTcpEndpoint(endpoint: string): { host: string; port: number } {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(endpoint);
  if (!m) throw new Error(`not a tcp://HOST:PORT endpoint: ${endpoint}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export function isAddressInUse(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === "EADDRINUSE";
}
