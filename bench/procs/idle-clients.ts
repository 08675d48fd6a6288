/**
 * Many idle, logged-in clients in one process, for the scale figures. Each is the product's
 * `ChatClient` over the ZeroMQ transport (a DEALER to the balancer: hello, register, challenge,
 * signed login; its delivery topic subscribed over that connection), with an in-memory cache;
 * it then stays connected and silent. The raw clients of the baseline speak to the raw hub on
 * bare sockets.
 */
import { randomBytes } from "node:crypto";
import { Context, Dealer, context as globalContext, Subscriber } from "zeromq";
import { Cache } from "../../core/client/cache.js";
import { ChatClient } from "../../core/client/client.js";
import { newDeviceId } from "../../core/client/profile.js";
import { ZeromqClientTransport } from "../../transports/zeromq/client.js";
import { benchIdentity } from "../lib/keys.js";
import { serve } from "../lib/rpc.js";

/** A raw client's sockets. */
interface Raw {
  dealer: Dealer;
  sub: Subscriber | null;
}

// libzmq sizes a context's socket table when its first socket is made: room for thousands of
// clients (two sockets each) in the product's (global) context and in the raw clients' own.
globalContext.maxSockets = 12_000;
globalContext.blocky = false;
let rawContext: Context | null = null;
const raws: Raw[] = [];
const clients: ChatClient[] = [];
const transport = new ZeromqClientTransport();

/** One product client: registers, logs in (which subscribes it to its delivery topic) and stays idle. */
async function connectOne(endpoint: string, name: string): Promise<void> {
  const client = new ChatClient({
    connect: (e) => transport.connect(e),
    endpoints: [endpoint],
    identity: { identity: benchIdentity(name), device: newDeviceId() },
    cache: new Cache(":memory:"),
    requestTimeoutMs: 60_000,
    // The service is known to run: the 1.5 s first-contact budget (for "nothing runs there")
    // is less than the stalls of a helper hosting a thousand clients on a loaded machine.
    firstContactMs: 60_000,
  });
  clients.push(client);
  await client.register();
  await client.login();
}

/** A raw ZeroMQ client of the raw hub: one echoed request on a DEALER, one SUB on a full-length topic. */
async function connectRaw(router: string, xpub: string | null): Promise<void> {
  const dealer = new Dealer({ context: rawContext!, linger: 0 });
  const c: Raw = { dealer, sub: null };
  raws.push(c);
  dealer.connect(router);
  await dealer.send("hello");
  await dealer.receive();
  if (xpub === null) return;
  const sub = new Subscriber({ context: rawContext!, linger: 0 });
  c.sub = sub;
  sub.subscribe(randomBytes(32).toString("hex"));
  sub.connect(xpub);
}

serve(
  {
    /** Connects `count` more raw clients to the raw hub. */
    async connectRaw(params: { router: string; xpub: string | null; count: number; concurrency: number }) {
      rawContext ??= new Context({ maxSockets: 12_000, blocky: false });
      let left = params.count;
      const lane = async () => {
        while (left-- > 0) await connectRaw(params.router, params.xpub);
      };
      await Promise.all(Array.from({ length: params.concurrency }, lane));
      return raws.length;
    },
    /** Connects and logs in `count` more clients named PREFIX-N, `concurrency` at a time. */
    async connect(params: { endpoint: string; prefix: string; count: number; concurrency: number }) {
      const first = clients.length;
      const names = Array.from({ length: params.count }, (_, i) => `${params.prefix}-${first + i}`);
      let next = 0;
      const lane = async () => {
        for (;;) {
          const i = next++;
          if (i >= names.length) return;
          await connectOne(params.endpoint, names[i]!);
        }
      };
      await Promise.all(Array.from({ length: params.concurrency }, lane));
      return clients.length;
    },
    count: () => clients.length + raws.length,
  },
  async () => {
    for (const c of raws) {
      c.dealer.close();
      c.sub?.close();
    }
    await Promise.all(clients.map((c) => c.close()));
    for (const c of clients) await c.cache.close();
  },
);
