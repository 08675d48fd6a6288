/**
 * Many idle, logged-in clients in one process, for the scale figures. Each speaks the real
 * protocol on its own sockets, as a ChatClient would: a DEALER to the balancer (hello,
 * register, challenge, signed login) and a SUB subscribed to its delivery topic. It then stays
 * connected and silent. (A full ChatClient per user would also open a SQLite cache each; the
 * service cannot tell the difference.)
 */
import { randomBytes, sign } from "node:crypto";
import { Context, Dealer, Subscriber } from "zeromq";
import type { Identity } from "../../core/crypto/keys.js";
import { loginChallengeBytes } from "../../core/crypto/login.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { benchIdentity } from "../lib/keys.js";
import { serve } from "../lib/rpc.js";

interface Idle {
  dealer: Dealer;
  sub: Subscriber | null;
  waiting: Map<
    string,
    (reply: { ok: boolean; body?: unknown; error?: { code: string; message: string } }) => void
  >;
}

let context: Context | null = null;
const clients: Idle[] = [];

class Unavailable extends Error {}

/** One request; an `unavailable` answer (store busy, server overloaded) is retried with backoff, as ChatClient does. */
async function request(
  c: Idle,
  route: "B" | "S",
  type: string,
  body: unknown,
  session?: string,
): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await requestOnce(c, route, type, body, session);
    } catch (err) {
      if (!(err instanceof Unavailable) || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 2000)));
    }
  }
}

function requestOnce(
  c: Idle,
  route: "B" | "S",
  type: string,
  body: unknown,
  session?: string,
): Promise<unknown> {
  const id = uuidv7();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.waiting.delete(id);
      reject(new Error(`${type}: no answer in 60 s`));
    }, 60_000);
    c.waiting.set(id, (reply) => {
      clearTimeout(timer);
      c.waiting.delete(id);
      if (reply.ok) resolve(reply.body);
      else if (reply.error?.code === "unavailable")
        reject(new Unavailable(`${type}: ${reply.error.message}`));
      else reject(new Error(`${type}: ${reply.error?.message}`));
    });
    c.dealer
      .send([route, JSON.stringify({ v: 1, id, type, ...(session ? { session } : {}), body })])
      .catch(reject);
  });
}

async function readReplies(c: Idle): Promise<void> {
  try {
    for await (const [frame] of c.dealer) {
      if (!frame) continue;
      const reply = JSON.parse(frame.toString()) as { id: string; ok: boolean; body?: unknown };
      c.waiting.get(reply.id)?.(reply);
    }
  } catch {
    // closed
  }
}

async function connectOne(endpoint: string, name: string, identity: Identity): Promise<void> {
  const dealer = new Dealer({ context: context!, linger: 0 });
  const c: Idle = { dealer, sub: null, waiting: new Map() };
  clients.push(c);
  dealer.connect(endpoint);
  void readReplies(c);
  const hello = (await request(c, "B", "hello", {})) as { pubPort: number; pubHost: string | null };
  await request(c, "S", "register", { name, keys: identity.publicKeys });
  const ch = (await request(c, "S", "challenge", { name })) as {
    nonce: string;
    expires: number;
    mac: string;
  };
  const sig = sign(null, loginChallengeBytes(name, ch.nonce, ch.expires), identity.signPrivate);
  const login = (await request(c, "S", "login", { name, ...ch, sig: sig.toString("base64url") })) as {
    topic: string;
  };
  const sub = new Subscriber({ context: context!, linger: 0 });
  c.sub = sub;
  sub.subscribe(login.topic);
  sub.connect(`tcp://${hello.pubHost ?? "127.0.0.1"}:${hello.pubPort}`);
}

/** A raw ZeroMQ client of the raw hub: one echoed request on a DEALER, one SUB on a full-length topic. */
async function connectRaw(router: string, xpub: string | null): Promise<void> {
  const dealer = new Dealer({ context: context!, linger: 0 });
  const c: Idle = { dealer, sub: null, waiting: new Map() };
  clients.push(c);
  dealer.connect(router);
  await dealer.send("hello");
  await dealer.receive();
  if (xpub === null) return;
  const sub = new Subscriber({ context: context!, linger: 0 });
  c.sub = sub;
  sub.subscribe(randomBytes(32).toString("hex"));
  sub.connect(xpub);
}

serve(
  {
    /** Connects `count` more raw clients to the raw hub. */
    async connectRaw(params: { router: string; xpub: string | null; count: number; concurrency: number }) {
      context ??= new Context({ maxSockets: 12_000, blocky: false });
      let left = params.count;
      const lane = async () => {
        while (left-- > 0) await connectRaw(params.router, params.xpub);
      };
      await Promise.all(Array.from({ length: params.concurrency }, lane));
      return clients.length;
    },
    /** Connects and logs in `count` more clients named PREFIX-N, `concurrency` at a time. */
    async connect(params: { endpoint: string; prefix: string; count: number; concurrency: number }) {
      // libzmq sizes its socket table once, when the first socket is made.
      context ??= new Context({ maxSockets: 12_000, blocky: false });
      const first = clients.length;
      const names = Array.from({ length: params.count }, (_, i) => `${params.prefix}-${first + i}`);
      const identities = names.map((n) => benchIdentity(n));
      let next = 0;
      const lane = async () => {
        for (;;) {
          const i = next++;
          if (i >= names.length) return;
          await connectOne(params.endpoint, names[i]!, identities[i]!);
        }
      };
      await Promise.all(Array.from({ length: params.concurrency }, lane));
      return clients.length;
    },
    count: () => clients.length,
  },
  () => {
    for (const c of clients) {
      c.dealer.close();
      c.sub?.close();
    }
  },
);
