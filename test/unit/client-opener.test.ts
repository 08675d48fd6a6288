import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Contact } from "../../core/client/cache.js";
import { Opener, type OpenLookup, PARALLEL_MIN, THREAD_START_MIN } from "../../core/client/opener.js";
import { Sealer } from "../../core/crypto/envelope.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import type { MailboxItem } from "../../core/protocol/schema.js";
import { startMemoryStack } from "../helpers/memory-stack.js";

/** `count` messages from alice to bob as bob's mailbox holds them; the one at `forged` has its ciphertext altered. */
function mailbox(count: number, forged: number) {
  const alice = generateIdentity("alice");
  const bob = generateIdentity("bob");
  const sealer = new Sealer(alice);
  const items: MailboxItem[] = [];
  for (let i = 0; i < count; i++) {
    const envelope = sealer.seal({
      id: uuidv7(),
      device: "d1",
      to: "bob",
      group: null,
      seq: i + 1,
      sentAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      text: `message ${i}`,
      recipients: [{ name: "bob", keys: bob.publicKeys }],
    });
    if (i === forged) {
      const ct = Buffer.from(envelope.ct, "base64url");
      ct[0]! ^= 1;
      envelope.ct = ct.toString("base64url");
    }
    items.push({ cursor: String(1000 + i), serverTime: new Date().toISOString(), envelope });
  }
  const contact: Contact = {
    name: "alice",
    keys: alice.publicKeys,
    pinnedAt: new Date().toISOString(),
    pending: null,
    verified: false,
    verifiedKeys: null,
  };
  const lookup = { contact: (n: string) => (n === "alice" ? contact : null), keysOf: () => null };
  return { bob, items, lookup };
}

/**
 * Opens `items` and counts the turns of the event loop meanwhile: a timer set before the batch
 * fires before it ends only if the opening yields.
 */
async function openCountingTurns(opener: Opener, items: MailboxItem[], lookup: OpenLookup) {
  let turns = 0;
  const tick = setInterval(() => turns++, 0);
  try {
    const opened = await opener.open(items, lookup);
    return { opened, turns };
  } finally {
    clearInterval(tick);
  }
}

describe("client opener (worker threads for large batches)", () => {
  it("opens a large batch on worker threads exactly as on the calling thread, in order, forgery flagged", async () => {
    const { bob, items, lookup } = mailbox(300, 137);
    const threaded = new Opener({ me: "bob", sealers: [new Sealer(bob)], threads: 2 });
    const here = new Opener({ me: "bob", sealers: [new Sealer(bob)], threads: 0 });
    try {
      await threaded.ready();
      const a = await threaded.open(items, lookup);
      const b = await here.open(items, lookup);
      // The threads ran (a thread that fails falls back to the calling thread without a word):
      // from source under tsx they could not start until core/worker-start.ts.
      assert.equal(threaded.onThreads, 1, "opened on the worker threads");
      assert.equal(here.onThreads, 0);
      assert.deepEqual(a, b);
      assert.deepEqual(
        a.map((o) => o.message.cursor),
        items.map((i) => i.cursor),
        "same order as the mailbox",
      );
      const bad = a.filter((o) => !o.message.verified);
      assert.equal(bad.length, 1);
      assert.equal(bad[0]!.message.cursor, "1137");
      assert.match(bad[0]!.message.problem!, /altered or forged/);
      assert.equal(a[3]!.message.text, "message 3");
    } finally {
      await threaded.close();
      await here.close();
    }
  });

  it("does not wait for threads that are still starting: a large batch meanwhile is opened here, in chunks with turns of the event loop between, the same; the threads take batches once ready", async () => {
    const { bob, items, lookup } = mailbox(300, 137);
    const threaded = new Opener({ me: "bob", sealers: [new Sealer(bob)], threads: 2 });
    const here = new Opener({ me: "bob", sealers: [new Sealer(bob)], threads: 0 });
    try {
      const { opened: first, turns } = await openCountingTurns(threaded, items, lookup);
      assert.equal(threaded.onThreads, 0, "not on the threads, which were still starting");
      assert.ok(turns > 0, "the event loop turned while the batch opened");
      assert.deepEqual(first, await here.open(items, lookup));
      await threaded.ready();
      assert.deepEqual(await threaded.open(items, lookup), first);
      assert.equal(threaded.onThreads, 1, "once ready, the threads take the batch");
    } finally {
      await threaded.close();
      await here.close();
    }
  });

  it("a batch below THREAD_START_MIN does not start the threads (opened here, in chunks); once running they take batches from PARALLEL_MIN", async () => {
    const { bob, items, lookup } = mailbox(THREAD_START_MIN, 7);
    // Above PARALLEL_MIN (threads that run take it), below THREAD_START_MIN, in four chunks.
    const small = items.slice(0, THREAD_START_MIN - 56);
    assert.ok(small.length >= PARALLEL_MIN);
    const threaded = new Opener({ me: "bob", sealers: [new Sealer(bob)], threads: 2 });
    const here = new Opener({ me: "bob", sealers: [new Sealer(bob)], threads: 0 });
    try {
      const { opened: first, turns } = await openCountingTurns(threaded, small, lookup);
      assert.equal(threaded.threadsStarted, false, `a batch of ${small.length} started the threads`);
      assert.equal(threaded.onThreads, 0);
      assert.ok(turns > 0, "the event loop turned while the batch opened");
      assert.deepEqual(first, await here.open(small, lookup));
      // Control: a batch of THREAD_START_MIN starts them (and, while they start, opens here).
      await threaded.open(items, lookup);
      assert.equal(threaded.threadsStarted, true);
      await threaded.ready();
      assert.deepEqual(await threaded.open(small, lookup), first);
      assert.equal(threaded.onThreads, 1, "once running, the threads take the small batch");
    } finally {
      await threaded.close();
      await here.close();
    }
  });

  it("recovers a mailbox into a fresh cache through the threaded opener: every message once, in order", async () => {
    const stack = await startMemoryStack();
    try {
      const alice = await stack.client("alice");
      const bob = await stack.client("bob");
      const n = 240;
      for (let i = 0; i < n; i += 40)
        await Promise.all(
          Array.from({ length: 40 }, (_, k) => alice.send({ user: "bob" }, `recovery ${i + k}`)),
        );
      const seen: string[] = [];
      bob.on((e) => {
        if (e.type === "message") seen.push(e.message.text);
      });
      assert.equal(await bob.sync(), n);
      const history = bob.cache.history("u:alice", n + 10);
      assert.equal(history.length, n);
      assert.ok(history.every((m) => m.verified && m.from === "alice"));
      const sentOrder = alice.cache.history("u:bob", n + 10).map((m) => m.text);
      assert.deepEqual(
        history.map((m) => m.text),
        sentOrder,
        "bob's order is the mailbox's, which is alice's ack order",
      );
      assert.equal(new Set(seen).size, n, "each message announced once");
      assert.equal(seen.length, n);
      assert.equal(await bob.sync(), 0, "a second sync finds nothing new");
    } finally {
      await stack.stop();
    }
  });
});
