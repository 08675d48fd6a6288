import { MAX_FRAME_BYTES } from "../../core/protocol/limits.js";

/** Options every zmqchat socket gets: bounded frames, no lingering on close. */
export const COMMON_SOCKET_OPTIONS = {
  maxMessageSize: MAX_FRAME_BYTES + 4096,
  linger: 0,
} as const;

/** Splits `tcp://host:port` into its parts; throws on anything else. */
export function parseTcpEndpoint(endpoint: string): { host: string; port: number } {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(endpoint);
  if (!m) throw new Error(`not a tcp://HOST:PORT endpoint: ${endpoint}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export function isAddressInUse(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === "EADDRINUSE";
}
