import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { ChatClient } from "../../core/client/client.js";
import { ensureIdentity, profilePaths } from "../../core/client/profile.js";
import { Sealer } from "../../core/crypto/envelope.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import type { PublicKeys } from "../../core/protocol/schema.js";
import { zeromqClient } from "../helpers/clients.js";
import { startMemoryStack } from "../helpers/memory-stack.js";
import { startStack, waitFor } from "../helpers/stack.js";

type Client = Awaited<ReturnType<typeof zeromqClient>>;
type Result =
  | { id: string; cursor: string; serverTime: string; duplicate: boolean; prev?: string | null }
  | { id: string; error: { code: string; message: string; retryAfterMs?: number } };

/** Counts the `send.many` requests a client has in flight, and those naming a predecessor. */
function watchRequests(client: ChatClient) {
  const seen = { inFlight: 0, maxInFlight: 0, chained: 0, many: 0, refusedChain: 0 };
  const request = client.request.bind(client) as (...a: unknown[]) => Promise<unknown>;
  (client as unknown as { request: (...a: unknown[]) => Promise<unknown> }).request = async (...args) => {
    if (args[0] !== "send.many") return request(...args);
    seen.many++;
    if ((args[1] as { follows?: string }).follows !== undefined) seen.chained++;
    seen.inFlight++;
    seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
    try {
      const reply = (await request(...args)) as { results: Result[] };
      if (reply.results.some((r) => "error" in r && r.error.message.includes("follows is not stored")))
        seen.refusedChain++;
      return reply;
    } finally {
      seen.inFlight--;
    }
  };
  return seen;
}

/** Runs `count` sends with at most `inFlight` awaiting their acknowledgement; returns the acked ids. */
async function burst(client: ChatClient, to: string, count: number, inFlight: number) {
  const acked: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      acked.push((await client.send({ user: to }, `m ${i}`, { timeoutMs: 60_000 })).id);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return acked;
}

/** Each mailbox copy of `owner`, in mailbox order: the envelope's sender, device, sequence number and id. */
function mailbox(storePath: string, owner: string) {
  const db = new Database(storePath, { readonly: true });
  try {
    return (
      db.prepare("SELECT envelope FROM mailbox WHERE owner = ? ORDER BY pos").all(owner) as Array<{
        envelope: string;
      }>
    ).map((r) => JSON.parse(r.envelope) as { id: string; from: string; device: string; seq: number });
  } finally {
    db.close();
  }
}

/** Every sender device's copies in `owner`'s mailbox carry 1..n in increasing order: its send order, each once. */
function assertSendOrder(storePath: string, owner: string, counts: Record<string, number>): void {
  const copies = mailbox(storePath, owner);
  assert.equal(new Set(copies.map((c) => c.id)).size, copies.length, `no copy twice in ${owner}'s mailbox`);
  for (const [from, n] of Object.entries(counts)) {
    const seqs = copies.filter((c) => c.from === from).map((c) => c.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: n }, (_, i) => i + 1),
      `${from}'s messages in ${owner}'s mailbox: all, once each, in the order sent`,
    );
  }
}

describe("several send.many requests in flight (real processes on loopback)", () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  it("two servers, kill -9 of one mid-stream: every message stored once, in each sender's order, in every mailbox", async (t) => {
    const stack = await startStack({ servers: 2 });
    cleanups.push(() => stack.stop());
    const clients: Record<string, Client> = {};
    for (const n of ["bob", "alice", "carol"]) {
      clients[n] = await zeromqClient(stack.dir, n, stack.endpoints);
      cleanups.push(() => clients[n]!.dispose());
    }
    const storePath = stack.store.slice("sqlite:".length);
    const watched = { alice: watchRequests(clients.alice!), carol: watchRequests(clients.carol!) };
    const N = 2500;
    let killed = false;
    const [aliceAcked, carolAcked] = await Promise.all([
      burst(clients.alice!, "bob", N, 100),
      burst(clients.carol!, "bob", N, 100),
      (async () => {
        await waitFor(
          "2,000 messages stored",
          async () => {
            const db = new Database(storePath, { readonly: true });
            try {
              return (
                (db.prepare("SELECT count(*) AS n FROM mailbox WHERE owner='bob'").get() as { n: number })
                  .n >= 2000
              );
            } finally {
              db.close();
            }
          },
          120_000,
        );
        (await stack.leadServer()).child.kill("SIGKILL");
        killed = true;
      })(),
    ]);
    assert.ok(killed, "a server was killed mid-stream");
    assert.equal(aliceAcked!.length, N, "every send acknowledged");
    assert.equal(carolAcked!.length, N, "every send acknowledged");
    assertSendOrder(storePath, "bob", { alice: N, carol: N });
    assertSendOrder(storePath, "alice", { alice: N });
    assertSendOrder(storePath, "carol", { carol: N });
    // Positive control: the window did pipeline before the kill (each client on the server of its last request).
    for (const [name, w] of Object.entries(watched)) {
      assert.ok(w.maxInFlight >= 2, `${name}: at most ${w.maxInFlight} send.many in flight`);
      assert.ok(w.chained > 0, `${name}: requests named their predecessor`);
      t.diagnostic(
        `${name}: ${w.many} send.many, ${w.chained} chained (${w.refusedChain} refused for want of the predecessor), at most ${w.maxInFlight} in flight`,
      );
    }
    // And the receiver's view: all of them, once, in order.
    await clients.bob!.sync();
    for (const from of ["alice", "carol"]) {
      const h = clients.bob!.cache.history(`u:${from}`, 10_000);
      assert.deepEqual(
        h.map((m) => m.seq),
        Array.from({ length: N }, (_, i) => i + 1),
        `bob's history of ${from}`,
      );
    }
  });
});

describe("send.many `follows` (the predecessor check)", () => {
  it("a bogus predecessor stores nothing and holds nothing; a stored one lets the request through, and its resend is a duplicate", async () => {
    const stack = await startMemoryStack({ servers: 2 });
    try {
      const alice = await stack.client("alice");
      await stack.client("bob");
      await alice.login();
      const a = new Sealer(
        ensureIdentity(profilePaths(join(stack.dir, "homes", "alice"), "alice"), "alice").identity,
      );
      const bobKeys: PublicKeys = new Sealer(
        ensureIdentity(profilePaths(join(stack.dir, "homes", "bob"), "bob"), "bob").identity,
      ).identity.publicKeys;
      let seq = 0;
      const seal = () =>
        a.seal({
          id: uuidv7(),
          device: "0123456789abcdef",
          to: "bob",
          group: null,
          seq: ++seq,
          sentAt: new Date().toISOString(),
          text: `m${seq}`,
          recipients: [{ name: "bob", keys: bobKeys }],
        });
      const many = async (envelopes: ReturnType<typeof seal>[], follows?: string) =>
        (
          (await alice.request("send.many", follows ? { envelopes, follows } : { envelopes })) as {
            results: Result[];
          }
        ).results;
      // A hostile client naming ids that were never stored: refused, each time, bounded.
      for (let i = 0; i < 20; i++) {
        const results = await many([seal(), seal(), seal()], uuidv7());
        assert.ok(
          results.every((r) => "error" in r && r.error.code === "unavailable"),
          "every envelope refused as not now",
        );
      }
      assert.equal(await stack.store.mailboxSize("bob"), 0, "nothing stored");
      assert.equal(await stack.store.mailboxSize("alice"), 0, "nothing stored");
      // Positive control: naming a stored envelope of hers passes.
      const first = seal();
      const [r1] = await many([first]);
      assert.ok(r1 && !("error" in r1));
      const batch = [seal(), seal()];
      const r2 = await many(batch, first.id);
      assert.ok(
        r2.every((r) => !("error" in r) && !r.duplicate),
        "stored after its predecessor",
      );
      const again = await many(batch, first.id);
      assert.ok(
        again.every((r) => !("error" in r) && r.duplicate),
        "a resend is a duplicate",
      );
      assert.equal(await stack.store.mailboxSize("bob"), 3);
      // A chain goes on from the last of a request.
      const r3 = await many([seal()], batch[1]!.id);
      assert.ok(r3.every((r) => !("error" in r)));
      assert.equal(await stack.store.mailboxSize("bob"), 4);
    } finally {
      await stack.stop();
    }
  });
});
