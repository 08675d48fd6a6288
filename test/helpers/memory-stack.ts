import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Dispatcher } from "../../balancer/dispatch.js";
import { Cache } from "../../core/client/cache.js";
import { ChatClient } from "../../core/client/client.js";
import { ensureIdentity, profilePaths } from "../../core/client/profile.js";
import { silentLogger } from "../../core/logger.js";
import { topicTagKey } from "../../core/protocol/topics.js";
import type { WorkerTransport } from "../../core/transport.js";
import type { ServerQuotas } from "../../server/limits.js";
import { ChatServer } from "../../server/server.js";
import type { ServiceMetrics } from "../../server/service.js";
import { SqliteStore } from "../../server/store/sqlite.js";
import type { Store } from "../../server/store/store.js";
import { startMemoryBroker } from "./memory-broker.js";

export const TEST_SECRET = Buffer.from("0123456789abcdef0123456789abcdef");

/** An in-process stack: the real balancer on the memory hub, N servers on one SQLite store, and clients in temp homes. */
export async function startMemoryStack(
  options: {
    servers?: number;
    store?: Store;
    quotas?: ServerQuotas;
    /** Each server's request metrics (which server took what). */
    metrics?: (server: string) => ServiceMetrics;
    /** Sees every publication of a server before the hub takes it. */
    onPublish?: (server: string, topic: string) => void;
    /** The balancer's dispatch rules (default: the production ones). */
    dispatcher?: Dispatcher;
  } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-mem-"));
  // The broker admits only topics the servers issued, as a balancer with --topic-key-file does.
  const broker = startMemoryBroker({ topicKey: topicTagKey(TEST_SECRET), dispatcher: options.dispatcher });
  const hub = broker.hub;
  const store = options.store ?? new SqliteStore(join(dir, "store.db"));
  await store.init();
  const servers: ChatServer[] = [];
  const onPublish = options.onPublish;
  const workers = (): WorkerTransport => {
    const plain = hub.workerTransport();
    if (!onPublish) return plain;
    return {
      attach: async (endpoints, id) => {
        const link = await plain.attach(endpoints, id);
        const publish = link.publish.bind(link);
        link.publish = (topic, frame) => {
          onPublish(id, topic);
          publish(topic, frame);
        };
        return link;
      },
    };
  };
  for (let i = 0; i < (options.servers ?? 2); i++) {
    servers.push(
      await ChatServer.start({
        transport: workers(),
        metrics: options.metrics?.(`s${i}`),
        endpoints: ["memory://hub"],
        store,
        secret: TEST_SECRET,
        log: silentLogger,
        id: `s${i}`,
        quotas: options.quotas,
      }),
    );
  }
  const clients: ChatClient[] = [];
  const transport = hub.clientTransport();
  async function client(
    name: string,
    opts: { register?: boolean; home?: string; subscribeConfirmMs?: number } = {},
  ): Promise<ChatClient> {
    const home = opts.home ?? join(dir, "homes", name);
    const paths = profilePaths(home, name);
    const identity = ensureIdentity(paths, name);
    const c = new ChatClient({
      connect: (e) => transport.connect(e),
      endpoints: ["memory://hub"],
      identity,
      cache: new Cache(paths.cache),
      attemptTimeoutMs: 500,
      requestTimeoutMs: 5000,
      subscribeConfirmMs: opts.subscribeConfirmMs,
    });
    clients.push(c);
    if (opts.register !== false) await c.register();
    return c;
  }
  return {
    hub,
    store,
    servers,
    dir,
    client,
    async stop() {
      for (const c of clients) {
        await c.close();
        await c.cache.close();
      }
      for (const s of servers) await s.stop();
      broker.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
