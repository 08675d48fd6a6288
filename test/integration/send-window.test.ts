import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { ChatMessage } from "../../core/client/cache.js";
import { zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

type Client = Awaited<ReturnType<typeof zeromqClient>>;

/** The ids of `owner`'s mailbox, in mailbox order, straight from the server's SQLite store. */
function mailbox(stack: RealStack, owner: string): string[] {
  const db = new Database(stack.store.replace(/^sqlite:/, ""), { readonly: true });
  try {
    return (
      db.prepare("SELECT msg_id FROM mailbox WHERE owner = ? ORDER BY pos").all(owner) as Array<{
        msg_id: string;
      }>
    ).map((r) => r.msg_id);
  } finally {
    db.close();
  }
}

/** Counts the requests of each type a client makes (ChatClient.request is its one way out). */
function countRequests(client: Client): Map<string, number> {
  const counts = new Map<string, number>();
  const request = client.request.bind(client);
  client.request = ((type, body, opts, route) => {
    counts.set(type, (counts.get(type) ?? 0) + 1);
    return request(type, body, opts, route);
  }) as typeof client.request;
  return counts;
}

describe("send window: many sends in flight, coalesced into send.many (real processes)", () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  async function setUp(servers: number) {
    const stack = await startStack({ servers });
    cleanups.push(() => stack.stop());
    const alice = await zeromqClient(stack.dir, "alice", stack.endpoints, { requestTimeoutMs: 60_000 });
    const bob = await zeromqClient(stack.dir, "bob", stack.endpoints, { requestTimeoutMs: 60_000 });
    cleanups.push(
      () => alice.dispose(),
      () => bob.dispose(),
    );
    return { stack, alice, bob };
  }

  it("500 sends fired at once from one client: each stored once, in send order, seen in order by the receiver", async () => {
    const { stack, alice, bob } = await setUp(2);
    const seen: ChatMessage[] = [];
    bob.on((e) => {
      if (e.type === "message" && e.message.from === "alice") seen.push(e.message);
    });
    await bob.goLive();
    await alice.login();
    const counts = countRequests(alice);
    const texts = Array.from({ length: 500 }, (_, i) => `burst ${i}`);
    const acked = await Promise.all(texts.map((t) => alice.send({ user: "bob" }, t)));
    assert.equal(acked.length, 500);
    // In alice's own mailbox, her copies follow the order she sent them in.
    const cursors = acked.map((m) => BigInt(m.cursor));
    for (let i = 1; i < cursors.length; i++)
      assert.ok(cursors[i]! > cursors[i - 1]!, `ack ${i} after ack ${i - 1}`);
    assert.deepEqual(
      acked.map((m) => m.seq),
      texts.map((_, i) => i + 1),
    );
    // Coalesced: far fewer requests than messages.
    const requests = (counts.get("send") ?? 0) + (counts.get("send.many") ?? 0);
    assert.ok((counts.get("send.many") ?? 0) > 0, "send.many was used");
    assert.ok(requests <= 50, `${requests} send requests for 500 messages`);

    const ids = acked.map((m) => m.id);
    assert.deepEqual(
      mailbox(stack, "bob").filter((id) => ids.includes(id)),
      ids,
      "bob's mailbox holds each once, in send order",
    );
    await waitFor("bob sees all 500 live", () => seen.length >= 500, 60_000);
    assert.deepEqual(
      seen.map((m) => m.text),
      texts,
      "bob's events: each once, in order",
    );
    assert.deepEqual(
      bob.cache.history("u:alice", 1000).map((m) => m.text),
      texts,
      "bob's cache: in order",
    );
  });

  it("kill -9 a server in the middle of batches: nothing acknowledged lost, nothing doubled, order kept", async () => {
    const { stack, alice, bob } = await setUp(2);
    await alice.login();
    const texts = Array.from({ length: 1500 }, (_, i) => `fault ${i}`);
    let killed = false;
    const sends = Promise.all(texts.map((t) => alice.send({ user: "bob" }, t, { timeoutMs: 60_000 })));
    await waitFor("300 stored", () => mailbox(stack, "bob").length >= 300, 60_000);
    (await stack.leadServer()).child.kill("SIGKILL");
    killed = true;
    const acked = await sends;
    assert.ok(killed);
    assert.equal(acked.length, 1500, "every send acknowledged (by the surviving server)");
    const box = mailbox(stack, "bob");
    assert.equal(new Set(box).size, box.length, "no message stored twice");
    const ids = acked.map((m) => m.id);
    assert.deepEqual(box, ids, "each acknowledged message stored once, in send order");
    await bob.sync();
    const h = bob.cache.history("u:alice", 5000);
    assert.deepEqual(
      h.map((m) => m.text),
      texts,
      "bob recovers all, in order",
    );
  });
});
