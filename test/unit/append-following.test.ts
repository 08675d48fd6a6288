import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ZmqchatError } from "../../core/errors.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import type { Envelope } from "../../core/protocol/schema.js";
import { SENDS_IN_FLIGHT, SendPath } from "../../server/send.js";
import { SqliteStore } from "../../server/store/sqlite.js";
import type { AppendInput, Store } from "../../server/store/store.js";

function input(id = uuidv7(), owners = ["alice", "bob"]): AppendInput {
  return { id, owners, envelope: JSON.stringify({ id }) };
}

async function positions(store: SqliteStore, owner: string): Promise<string[]> {
  const { items } = await store.read(owner, null, 1000);
  return items.map((i) => (JSON.parse(i.envelope) as { id: string }).id);
}

describe("SqliteStore.appendFollowing", () => {
  it("stores a request only after its predecessor, also when it reached the same commit first", async () => {
    const store = new SqliteStore(":memory:");
    await store.init();
    try {
      const [a, b, c] = [input(), input(), input()];
      // b and c follow a and b, and arrive before them in one group commit.
      const pc = store.appendFollowing({ owner: "alice", id: b.id }, [c]);
      const pb = store.appendFollowing({ owner: "alice", id: a.id }, [b]);
      const pa = store.appendMany([a]);
      const [rc, rb, ra] = await Promise.all([pc, pb, pa]);
      assert.ok(ra && rb && rc, "all three stored");
      for (const owner of ["alice", "bob"])
        assert.deepEqual(await positions(store, owner), [a.id, b.id, c.id]);
      // Each reply's prev is the copy before it.
      assert.equal(rc[0]!.placed.get("bob")!.prev, rb[0]!.placed.get("bob")!.cursor);
    } finally {
      await store.close();
    }
  });

  it("a chain of 300 requests arriving in reverse order in one commit is written in chain order", async () => {
    const store = new SqliteStore(":memory:", { maxBatch: 10_000 });
    await store.init();
    try {
      const chain = Array.from({ length: 300 }, () => input());
      const writes: Array<Promise<unknown>> = [];
      for (let i = chain.length - 1; i > 0; i--)
        writes.push(store.appendFollowing({ owner: "alice", id: chain[i - 1]!.id }, [chain[i]!]));
      writes.push(store.appendMany([chain[0]!]));
      const results = await Promise.all(writes);
      assert.ok(results.every((r) => r !== null));
      assert.deepEqual(
        await positions(store, "bob"),
        chain.map((c) => c.id),
      );
    } finally {
      await store.close();
    }
  });

  it("stores nothing when the predecessor is not in the owner's mailbox (never stored, or only in another's)", async () => {
    const store = new SqliteStore(":memory:");
    await store.init();
    try {
      const bobs = input(uuidv7(), ["bob", "carol"]);
      await store.appendMany([bobs]);
      assert.equal(await store.appendFollowing({ owner: "alice", id: uuidv7() }, [input()]), null);
      // Positive control for the owner: bob's message is not alice's predecessor, but is bob's.
      assert.equal(await store.appendFollowing({ owner: "alice", id: bobs.id }, [input()]), null);
      assert.equal(await store.mailboxSize("alice"), 0);
      const ok = await store.appendFollowing({ owner: "bob", id: bobs.id }, [input(uuidv7(), ["bob"])]);
      assert.ok(ok && !ok[0]!.duplicate);
      assert.equal(await store.mailboxSize("bob"), 2);
    } finally {
      await store.close();
    }
  });
});

describe("SendPath: the pipelining offer follows the store", () => {
  const deps = (store: Store) =>
    ({
      store,
      deliver() {},
      senderQuota: { charge() {} },
      mailboxQuota: { check: async () => {}, stored() {} },
      limit: (_: string, f: () => void) => f(),
      limited() {},
      stored() {},
      published() {},
    }) as unknown as ConstructorParameters<typeof SendPath>[0];

  it("offers several in flight on a store that checks a predecessor (SQLite), none on one that cannot, and refuses `follows` there", async () => {
    const sqlite = new SqliteStore(":memory:");
    assert.equal(new SendPath(deps(sqlite)).pipeline, SENDS_IN_FLIGHT);
    // As InfluxDB today: appendMany only.
    const plain = { appendMany: async () => [] } as unknown as Store;
    const path = new SendPath(deps(plain));
    assert.equal(path.pipeline, undefined);
    await assert.rejects(
      path.sendMany([{ id: uuidv7() } as unknown as Envelope], "alice", uuidv7()),
      (err: unknown) =>
        err instanceof ZmqchatError && err.code === "bad_request" && err.message.startsWith("send.many"),
    );
  });
});
