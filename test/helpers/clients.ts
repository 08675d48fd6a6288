import { join } from "node:path";
import { Cache } from "../../core/client/cache.js";
import { ChatClient } from "../../core/client/client.js";
import { ensureIdentity, profilePaths } from "../../core/client/profile.js";
import { ZeromqClientTransport } from "../../transports/zeromq/client.js";
import { findBalancerKey, makeCurveKeys } from "../../transports/zeromq/index.js";

export type DisposableClient = ChatClient & { dispose(): Promise<void> };

/**
 * An in-process client over real ZeroMQ, in a home of its own under `dir` (the CLI's home for
 * `name` when the CLI registered it). `cache`: a cache file of its own instead of the profile's,
 * so the client and the CLI do not share one.
 */
export async function zeromqClient(
  dir: string,
  name: string,
  endpoints: string[],
  opts: { register?: boolean; attemptTimeoutMs?: number; requestTimeoutMs?: number; cache?: string } = {},
): Promise<DisposableClient> {
  const paths = profilePaths(join(dir, "homes", name), name);
  const identity = ensureIdentity(paths, name);
  const cache = new Cache(opts.cache ?? paths.cache);
  // CurveZMQ towards a balancer that published its key here, as the CLI does.
  const device = makeCurveKeys();
  const transport = new ZeromqClientTransport({
    discover: { serverKeyOf: (e) => findBalancerKey(e), keys: () => device },
  });
  const client = new ChatClient({
    connect: (e) => transport.connect(e),
    endpoints,
    identity,
    cache,
    attemptTimeoutMs: opts.attemptTimeoutMs ?? 1000,
    requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
  });
  if (opts.register !== false) await client.register();
  return Object.assign(client, {
    async dispose() {
      await client.close();
      await cache.close();
    },
  });
}
