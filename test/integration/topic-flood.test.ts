/**
 * A client's SUB socket can send the balancer as many subscriptions as it likes. Each admitted
 * one is held by the balancer's XPUB and passed on to every server's (measured here: about 6 KiB
 * of balancer and 3.4 KiB of server memory each), so a balancer that admitted any full-length
 * topic let one client fill the service's memory with made-up ones. With --topic-key-file it
 * admits only topics a server issued (core/protocol/topics.ts). Real balancer and server over
 * loopback; the flood is bounded (FLOOD subscriptions, one client).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Subscriber } from "zeromq";
import { isSubscribedFrame } from "../../core/protocol/broker.js";
import { Authority } from "../../server/auth.js";
import { CLUSTER_SECRET, currentDevice, type RealStack, startStack, waitFor } from "../helpers/stack.js";

const FLOOD = 20_000;
/** Memory the made-up subscriptions may add to the server with the key (the control adds ~3.4 KiB each). */
const KEYED_GROWTH_MIB = 10;
const CONTROL_GROWTH_MIB = 30;

const rssMiB = (pid: number): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

/** Floods `stack`'s balancer with FLOOD made-up topics, then one real topic; what it admitted and its growth. */
async function flood(
  stack: RealStack,
): Promise<{ admitted: number; balancerMiB: number; serverMiB: number }> {
  const pid = stack.balancers[0]!.child.pid!;
  const server = stack.servers[0]!.child.pid!;
  const pubOut = JSON.parse(stack.balancers[0]!.output.find((l) => l.includes("balancer_ready"))!).endpoints
    .pubOut as string;
  const sub = new Subscriber({ linger: 0, ...stack.socketSecurity("client") });
  const admitted = new Set<string>();
  const reading = (async () => {
    try {
      for await (const [topic, body] of sub) if (isSubscribedFrame(body!)) admitted.add(String(topic));
    } catch {
      // closed
    }
  })();
  try {
    sub.connect(pubOut);
    // A topic a server issued (the servers' own secret makes it): admitted either way.
    const real = new Authority(Buffer.from(CLUSTER_SECRET)).topic("mallory", undefined, "d1");
    sub.subscribe(real);
    await waitFor("the real topic's subscription is taken", () => admitted.has(real), 20_000);
    const before = rssMiB(pid);
    const serverBefore = rssMiB(server);
    for (let i = 0; i < FLOOD; i++) {
      sub.subscribe(randomBytes(32).toString("hex"));
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    // Then the real one again (unsubscribed and subscribed): taken after everything before it.
    const again = new Authority(Buffer.from(CLUSTER_SECRET)).topic("mallory", undefined, "d2");
    sub.subscribe(again);
    await waitFor("the balancer has read the whole flood", () => admitted.has(again), 60_000);
    // What the balancer passed on has reached the server: a round trip through both.
    await stack.cli("mallory", ["register"]);
    return {
      admitted: admitted.size - 2,
      balancerMiB: rssMiB(pid) - before,
      serverMiB: rssMiB(server) - serverBefore,
    };
  } finally {
    sub.close();
    await reading;
  }
}

describe("a topic from a login before tagged topics (an upgrade)", () => {
  it("still gets the device's deliveries while a balancer holds it (one without the key, for the first day)", async () => {
    const stack = await startStack({ servers: 1, label: "legacy", topicKey: false, legacySubscribers: true });
    const sub = new Subscriber({ linger: 0, ...stack.socketSecurity("client") });
    try {
      for (const u of ["alice", "bob"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
      const device = await currentDevice(stack, "bob");
      // What a login gave bob's device before tagged topics: the whole HMAC, plain and batched.
      const auth = new Authority(Buffer.from(CLUSTER_SECRET));
      const legacy = [
        auth.topic("bob", undefined, device, false, true),
        auth.topic("bob", undefined, device, true, true),
      ];
      const got = new Map<string, string[]>();
      const reading = (async () => {
        for await (const [topic, body] of sub) {
          if (isSubscribedFrame(body!)) continue;
          const list = got.get(String(topic)) ?? [];
          list.push(String(body));
          got.set(String(topic), list);
        }
      })().catch(() => {});
      const pubOut = JSON.parse(stack.balancers[0]!.output.find((l) => l.includes("balancer_ready"))!)
        .endpoints.pubOut as string;
      for (const t of legacy) sub.subscribe(t);
      sub.connect(pubOut);
      let n = 0;
      await waitFor(
        "a delivery on each of bob's topics from before",
        async () => {
          assert.equal((await stack.cli("alice", ["send", "bob", `after the upgrade ${n++}`])).code, 0);
          return legacy.every((t) => (got.get(t) ?? []).some((b) => b.includes("bob")));
        },
        30_000,
      );
      sub.close();
      await reading;
    } finally {
      sub.close();
      await stack.stop();
    }
  });
});

describe("made-up subscriptions (a client floods the balancer's XPUB)", () => {
  it("are refused by a balancer with the topic key and never reach the servers; one without it passes them all on (the control)", async () => {
    const keyed = await startStack({ servers: 1, label: "keyed", legacySubscribers: true });
    let guarded: Awaited<ReturnType<typeof flood>>;
    try {
      guarded = await flood(keyed);
      const refused = await (await fetch(keyed.metricsUrls[0]!)).text();
      const count = Number(
        /zmqchat_balancer_refused_total\{reason="subscription"\} (\d+)/.exec(refused)?.[1],
      );
      // Most of the flood reached it (a SUB drops subscriptions past its pipe's high-water mark).
      assert.ok(count >= FLOOD / 2, `refusals counted: ${count}`);
    } finally {
      await keyed.stop();
    }
    const open = await startStack({ servers: 1, label: "open", topicKey: false, legacySubscribers: true });
    let control: Awaited<ReturnType<typeof flood>>;
    try {
      control = await flood(open);
    } finally {
      await open.stop();
    }
    // The control proves the test sees the harm: the same flood, admitted, held by the server too.
    assert.ok(control.admitted > FLOOD / 2, `the unkeyed balancer admitted ${control.admitted}`);
    assert.ok(control.serverMiB > CONTROL_GROWTH_MIB, `the server behind it grew ${control.serverMiB} MiB`);
    assert.equal(guarded.admitted, 0, "a made-up topic was admitted");
    assert.ok(
      guarded.serverMiB < KEYED_GROWTH_MIB,
      `the server behind the keyed balancer grew ${guarded.serverMiB} MiB`,
    );
    // Not asserted: the balancer itself still grows while the flooding connection stays (libzmq's
    // XPUB in manual mode keeps every subscription a connection sent, admitted or not, until the
    // connection ends): about 4 KiB a made-up topic against 6 admitted. Told, so the figure is seen.
    console.log(
      `growth for ${FLOOD} subscriptions sent: balancer keyed ${guarded.balancerMiB.toFixed(1)} MiB, unkeyed ${control.balancerMiB.toFixed(1)}; server keyed ${guarded.serverMiB.toFixed(1)}, unkeyed ${control.serverMiB.toFixed(1)}`,
    );
  });
});
