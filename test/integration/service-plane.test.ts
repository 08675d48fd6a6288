import assert from "node:assert/strict";
import { readFileSync, rmSync, statSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Dealer, Publisher } from "zeromq";
import { parseTopicKey, taggedTopic } from "../../core/protocol/topics.js";
import { type CurveKeys, findBalancerKey, makeCurveKeys } from "../../transports/zeromq/index.js";
import { runCli } from "../helpers/cli.js";
import { watchOverLink } from "../helpers/link-watch.js";
import { freeBasePort, type RealStack, startStack, waitFor } from "../helpers/stack.js";

/** A stack started the way `zmqchat up --detach` starts it, in a home of its own. */
interface UpStack {
  home: string;
  port: number;
  endpoint: string;
  /** Alice and bob, each with a home of their own (so neither shares the stack's home). */
  cli(user: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

async function up(root: string, name: string, extra: string[] = []): Promise<UpStack> {
  const home = join(root, name);
  const port = await freeBasePort();
  const r = await runCli(["up", "--detach", "--servers", "1", "--port", String(port), ...extra], { home });
  assert.equal(r.code, 0, r.stderr);
  const endpoint = `tcp://127.0.0.1:${port}`;
  return {
    home,
    port,
    endpoint,
    cli: (user, args) => runCli(["--user", user, ...args], { home: join(root, `${name}-${user}`), endpoint }),
  };
}

/**
 * A burst of requests from one raw client, sent without waiting for answers: the balancer takes
 * them in one read, so its lead server gets AFFINITY_SLACK + 1 more than the least busy and the
 * rest go to the other servers (balancer/dispatch.ts), a listed newcomer or a rogue among them.
 * Each request's id is PREFIX and its index.
 */
async function requestBurst(client: Dealer, prefix: string, n = 20): Promise<void> {
  for (let i = 0; i < n; i++)
    await client.send([
      "S",
      JSON.stringify({ v: 1, id: `${prefix}${i}`, type: "users", body: { names: ["x"] } }),
    ]);
}

const curveOf = (serverKey: string, own: CurveKeys) => ({
  curveServerKey: serverKey,
  curvePublicKey: own.publicKey,
  curveSecretKey: own.secretKey,
});

/**
 * Raw DEALERs that announce themselves as servers (READY, then heartbeats) on each of a
 * stack's four ports: one in plaintext, one with a CURVE key of its own that pins the real
 * balancer key. Counts the requests (`REQ`) they are handed.
 */
function rogueServers(port: number, balancerKey: string | null) {
  const rogues: Dealer[] = [];
  for (let p = port; p < port + 4; p++) {
    rogues.push(new Dealer({ linger: 0, routingId: `rogue-plain-${p}` }));
    if (balancerKey) {
      rogues.push(
        new Dealer({ linger: 0, routingId: `rogue-curve-${p}`, ...curveOf(balancerKey, makeCurveKeys()) }),
      );
    }
    for (const d of rogues.slice(balancerKey ? -2 : -1)) d.connect(`tcp://127.0.0.1:${p}`);
  }
  const requests: string[] = [];
  let closed = false;
  for (const d of rogues) {
    void (async () => {
      try {
        for await (const [command, ticket] of d) {
          if (command?.toString() === "REQ") requests.push(String(ticket));
        }
      } catch {
        // closed
      }
    })();
  }
  // One send at a time per socket (zeromq.js refuses more); a DEALER that never got in just waits.
  const busy = new Set<Dealer>();
  const announce = () => {
    for (const d of rogues) {
      if (closed || busy.has(d)) continue;
      busy.add(d);
      d.send(["READY", JSON.stringify({ version: "rogue" })])
        .then(() => d.send(["HB"]))
        .catch(() => {})
        .finally(() => busy.delete(d));
    }
  };
  announce();
  const timer = setInterval(announce, 300);
  return {
    requests,
    close() {
      closed = true;
      clearInterval(timer);
      for (const d of rogues) d.close();
    },
  };
}

describe("the service plane: only listed servers join, publish and answer", () => {
  let root: string;
  let secure: UpStack;
  let insecure: UpStack;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "zmqchat-plane-"));
    [secure, insecure] = await Promise.all([up(root, "secure"), up(root, "insecure", ["--insecure"])]);
    for (const s of [secure, insecure]) {
      for (const user of ["alice", "bob"]) {
        const r = await s.cli(user, ["register"]);
        assert.equal(r.code, 0, r.stderr);
      }
    }
  });
  after(async () => {
    for (const s of [secure, insecure]) if (s) await runCli(["down"], { home: s.home });
    rmSync(root, { recursive: true, force: true });
  });

  it("zmqchat up keeps its CURVE keys private and publishes the balancer's key to this user only", async () => {
    const dir = join(secure.home, "stack", "curve");
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of ["balancer.curve", "server-1.curve"])
      assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600);
    const published = findBalancerKey(secure.endpoint);
    const own = JSON.parse(readFileSync(join(dir, "balancer.curve"), "utf8")) as CurveKeys;
    assert.equal(published, own.publicKey, "clients find the stack's own balancer key");
    assert.equal(findBalancerKey(insecure.endpoint), null, "an --insecure stack publishes no key");
    const status = async (s: UpStack) =>
      (JSON.parse((await runCli(["status", "--json"], { home: s.home })).stdout) as { insecure: boolean })
        .insecure;
    assert.equal(await status(secure), false);
    assert.equal(await status(insecure), true, "status --json says the stack is insecure");
    assert.match(readFileSync(join(insecure.home, "stack", "logs", "balancer.log"), "utf8"), /INSECURE/);
  });

  it("the stack the TUI starts by itself runs CURVE too, and a client with another home finds its key", async () => {
    // The TUI's own start-up path (from the built package, as the TUI runs it), on a free port.
    const { ensureLocalStack } = (await import(
      new URL("../../dist/bin/commands/tui.js", import.meta.url).href
    )) as typeof import("../../bin/commands/tui.js");
    const home = join(root, "tui-stack");
    const endpoint = `tcp://127.0.0.1:${await freeBasePort()}`;
    const notes: string[] = [];
    try {
      await ensureLocalStack(home, endpoint, (n) => notes.push(n));
      assert.match(notes.at(-1) ?? "", /started a local stack/, notes.join("; "));
      const own = JSON.parse(
        readFileSync(join(home, "stack", "curve", "balancer.curve"), "utf8"),
      ) as CurveKeys;
      assert.equal(findBalancerKey(endpoint), own.publicKey);
      const r = await runCli(["--user", "erin", "register"], { home: join(root, "tui-erin"), endpoint });
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await runCli(["down"], { home });
    }
  });

  it("a rogue DEALER announcing READY on each port gets no request while alice and bob chat; on --insecure it does", async () => {
    const rogue = rogueServers(secure.port, findBalancerKey(secure.endpoint));
    try {
      for (let i = 0; i < 4; i++) {
        const r = await secure.cli("alice", ["send", "bob", `secret ${i}`]);
        assert.equal(r.code, 0, r.stderr);
      }
      const h = await secure.cli("bob", ["history", "alice", "--json"]);
      assert.equal(h.stdout.trim().split("\n").length, 4, h.stderr);
      assert.deepEqual(rogue.requests, [], "a rogue was handed requests");
    } finally {
      rogue.close();
    }
    // Positive control: the very same probe on a plaintext stack is handed clients' requests.
    // Requests go to the balancer's lead server first; a burst it cannot answer at once
    // overflows to the other servers, the rogues among them (balancer/dispatch.ts).
    const control = rogueServers(insecure.port, null);
    const client = new Dealer({ linger: 0 });
    client.connect(insecure.endpoint);
    let tries = 0;
    try {
      await waitFor(
        "the rogue on the --insecure stack to be handed a request",
        async () => {
          await insecure.cli("alice", ["send", "bob", "leaks", "--timeout", "1s"]);
          await requestBurst(client, `leak${tries++}-`);
          return control.requests.length > 0;
        },
        20_000,
      );
    } finally {
      control.close();
      client.close();
    }
  });

  it("a raw PUB cannot get a frame to a subscribed client; a listed server's PUB can, and on --insecure anyone can", async () => {
    // A topic the stack's balancer admits: tagged with its key (core/protocol/topics.ts).
    const topicOf = (s: UpStack) =>
      taggedTopic(
        parseTopicKey(readFileSync(join(s.home, "stack", "topic.key"), "utf8"))!,
        Buffer.alloc(16, 0xab),
      );
    // A client as the product's subscribes: over its connection to the balancer (`zmqchat up`
    // binds no port for SUB sockets).
    const watch = (s: UpStack, key: string | null) =>
      watchOverLink(s.endpoint, [topicOf(s)], key ? { serverKey: key, keys: makeCurveKeys() } : undefined);
    const publisher = (s: UpStack, security: object) => {
      const pub = new Publisher({ linger: 0, ...security });
      for (let p = s.port; p < s.port + 4; p++) pub.connect(`tcp://127.0.0.1:${p}`);
      return pub;
    };
    const key = findBalancerKey(secure.endpoint)!;
    const listed = JSON.parse(
      readFileSync(join(secure.home, "stack", "curve", "server-1.curve"), "utf8"),
    ) as CurveKeys;
    const client = await watch(secure, key);
    const rogues = [publisher(secure, {}), publisher(secure, curveOf(key, makeCurveKeys()))];
    const real = publisher(secure, curveOf(key, listed));
    try {
      // The rogues publish all along; the listed key's frame arriving proves the SUB is subscribed.
      await waitFor("a listed server's publication to arrive", async () => {
        for (const r of rogues) await r.send([topicOf(secure), "forged"]);
        await real.send([topicOf(secure), "genuine"]);
        return client.got.includes("genuine");
      });
      for (const r of rogues) await r.send([topicOf(secure), "forged"]);
      await real.send([topicOf(secure), "genuine again"]);
      await waitFor("the second genuine frame", () => client.got.includes("genuine again"));
      assert.ok(!client.got.includes("forged"), "a rogue publisher reached the client");
    } finally {
      await client.close();
      for (const s of [...rogues, real]) s.close();
    }
    const control = await watch(insecure, null);
    const anyone = publisher(insecure, {});
    try {
      await waitFor("the plaintext rogue's frame on the --insecure stack", async () => {
        await anyone.send([topicOf(insecure), "forged"]);
        return control.got.includes("forged");
      });
    } finally {
      await control.close();
      anyone.close();
    }
  });
});

describe("the balancer trusts a reply only from the server it asked, once", () => {
  let stack: RealStack;
  before(async () => {
    stack = await startStack({ servers: 1 });
  });
  after(async () => {
    await stack?.stop();
  });

  /** A raw server with a real listed key: READY, then heartbeats; its requests in order. */
  function listedServer(name: string) {
    const d = new Dealer({ linger: 0, routingId: name, ...stack.socketSecurity("server") });
    d.connect(stack.backends[0]!);
    const requests: Array<{ ticket: Buffer; frame: Buffer }> = [];
    void (async () => {
      try {
        for await (const [command, ticket, frame] of d) {
          if (command?.toString() === "REQ") requests.push({ ticket: ticket!, frame: frame! });
        }
      } catch {
        // closed
      }
    })();
    // zeromq.js takes one send at a time per socket: queue them.
    let chain: Promise<void> = Promise.resolve();
    const send = (parts: Array<string | Buffer>) => {
      chain = chain.then(() => d.send(parts)).catch(() => {});
      return chain;
    };
    void send(["READY", JSON.stringify({ version: "test" })]);
    const timer = setInterval(() => void send(["HB"]), 300);
    return {
      send,
      requests,
      close() {
        clearInterval(timer);
        d.close();
      },
    };
  }

  const dropped = (name: string) =>
    stack.balancers[0]!.output.some((l) => l.includes("not given") && l.includes(name));

  it("a listed server answering a request it was never given is dropped and its reply discarded", async () => {
    const rogue = listedServer("liar");
    try {
      await waitFor(
        "the listed rogue to be live",
        async () => (await stack.balancerHealth()).liveServers === 2,
      );
      const health = (await stack.balancerHealth()) as { liveServers: number; insecure?: boolean };
      assert.equal(health.insecure, false, "/healthz of a CURVE balancer says it is not insecure");
      await rogue.send(["REP", "made-up", JSON.stringify({ v: 1, id: "x", ok: true, body: {} })]);
      await waitFor("the balancer to drop it", () => dropped("liar"));
      await waitFor("one live server again", async () => (await stack.balancerHealth()).liveServers === 1);
      // Its heartbeats do not bring it back: chat goes on, and the dropped server is handed nothing.
      const before = rogue.requests.length;
      assert.equal((await stack.cli("alice", ["register"])).code, 0);
      assert.equal((await stack.cli("alice", ["send", "alice", "note"])).code, 0);
      assert.equal((await stack.balancerHealth()).liveServers, 1);
      assert.equal(rogue.requests.length, before);
    } finally {
      rogue.close();
    }
  });

  it("a listed server's first answer reaches the client; its second answer to the same request drops it", async () => {
    const rogue = listedServer("twice");
    // One client's burst: what the honest lead cannot take at once goes to the rogue.
    const client = new Dealer({ linger: 0, ...stack.socketSecurity("client") });
    client.connect(stack.endpoint);
    const replies: string[] = [];
    void (async () => {
      try {
        for await (const [frame] of client) replies.push(String(frame));
      } catch {
        // closed
      }
    })();
    try {
      await waitFor(
        "the listed rogue to be live",
        async () => (await stack.balancerHealth()).liveServers === 2,
      );
      let n = 0;
      await waitFor("a request to reach the rogue", async () => {
        await requestBurst(client, `q${n++}-`);
        return rogue.requests.length > 0;
      });
      const { ticket, frame } = rogue.requests[0]!;
      const id = (JSON.parse(String(frame)) as { id: string }).id;
      const answer = (text: string) => JSON.stringify({ v: 1, id, ok: true, body: { text } });
      await rogue.send(["REP", ticket, answer("first")]);
      // Positive control: an answer from the server that was asked does reach the client.
      await waitFor("the first answer", () => replies.some((r) => r.includes('"first"')));
      await rogue.send(["REP", ticket, answer("second")]);
      await waitFor("the balancer to drop it", () => dropped("twice"));
      await waitFor("one live server again", async () => (await stack.balancerHealth()).liveServers === 1);
      // A later genuine reply still arrives after the discarded one would have.
      await client.send(["B", JSON.stringify({ v: 1, id: "after", type: "ping", body: {} })]);
      await waitFor("the ping reply", () => replies.some((r) => r.includes('"after"')));
      assert.ok(!replies.some((r) => r.includes('"second"')), "the second answer reached the client");
    } finally {
      rogue.close();
      client.close();
    }
  });
});
