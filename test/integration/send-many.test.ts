import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ensureIdentity, profilePaths } from "../../core/client/profile.js";
import { Sealer } from "../../core/crypto/envelope.js";
import { silentLogger } from "../../core/logger.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { MAX_FRAME_BYTES, MAX_SEND_MANY, MAX_TEXT_BYTES } from "../../core/protocol/limits.js";
import type { Envelope, PublicKeys } from "../../core/protocol/schema.js";
import { Authority } from "../../server/auth.js";
import { DEFAULT_SERVER_QUOTAS, type ServerQuotas } from "../../server/limits.js";
import { ChatService } from "../../server/service.js";
import { SqliteStore } from "../../server/store/sqlite.js";
import { startMemoryStack, TEST_SECRET } from "../helpers/memory-stack.js";

type Stack = Awaited<ReturnType<typeof startMemoryStack>>;
type Result =
  | { id: string; cursor: string; serverTime: string; duplicate: boolean; prev?: string | null }
  | { id: string; error: { code: string; message: string; retryAfterMs?: number } };

/** A stack whose store reports each commit's size, and that counts every delivery frame it publishes by owner and id. */
async function stackWith(quotas?: ServerQuotas, servers = 2) {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-many-"));
  const commits: number[] = [];
  const store = new SqliteStore(join(dir, "store.db"), {
    metrics: { batch: (n) => commits.push(n), error() {} },
  });
  const stack = await startMemoryStack({ servers, store, quotas });
  const rung = new Map<string, Map<string, number>>();
  /** Delivery frames published per topic (a deliver.many counts once). */
  const frames = new Map<string, number>();
  const publish = stack.hub.publish.bind(stack.hub);
  stack.hub.publish = (topic, frame) => {
    const f = JSON.parse(Buffer.from(frame).toString("utf8"));
    if (f.type === "deliver" || f.type === "deliver.many") {
      frames.set(topic, (frames.get(topic) ?? 0) + 1);
      for (const d of f.type === "deliver" ? [f] : f.frames) {
        // Per copy and topic: in the first 15 minutes of a topic period a copy also goes to the last period's topic.
        const key = `${d.owner}/${d.item.envelope.id}`;
        const perTopic = rung.get(key) ?? new Map<string, number>();
        perTopic.set(topic, (perTopic.get(topic) ?? 0) + 1);
        rung.set(key, perTopic);
      }
    }
    publish(topic, frame);
  };
  return {
    stack,
    commits,
    rung,
    frames,
    /** Waits (up to 5 s) until `n` copies were published: deliveries leave a turn after the reply. */
    async published(n: number) {
      for (let i = 0; i < 500 && rung.size < n; i++) await new Promise((r) => setTimeout(r, 10));
    },
    async stop() {
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A sealer with `name`'s identity in the memory stack's profile for it. */
function sealerOf(stack: Stack, name: string): Sealer {
  return new Sealer(identityOf(stack, name).identity);
}

function identityOf(stack: Stack, name: string) {
  return ensureIdentity(profilePaths(join(stack.dir, "homes", name), name), name);
}

function keysOf(stack: Stack, name: string): PublicKeys {
  return sealerOf(stack, name).identity.publicKeys;
}

function seal(
  sealer: Sealer,
  to: string,
  recipients: Array<{ name: string; keys: PublicKeys }>,
  text = "hi",
) {
  return sealer.seal({
    id: uuidv7(),
    device: "0123456789abcdef",
    to,
    group: null,
    seq: 1,
    sentAt: new Date().toISOString(),
    text,
    recipients,
  });
}

const refused = (r: Result | undefined) => (r && "error" in r ? r.error.code : "stored");

describe("send.many", () => {
  it("answers each envelope on its own: the good ones stored and delivered once, the others refused with their reason", async () => {
    const t = await stackWith();
    try {
      const alice = await t.stack.client("alice");
      await t.stack.client("bob");
      await t.stack.client("carol");
      await alice.login();
      const a = sealerOf(t.stack, "alice");
      const bob = { name: "bob", keys: keysOf(t.stack, "bob") };
      const carol = { name: "carol", keys: keysOf(t.stack, "carol") };
      const good1 = seal(a, "bob", [bob], "one");
      const forged = seal(sealerOf(t.stack, "carol"), "bob", [bob], "carol's words, sent by alice");
      const tooLarge = {
        ...seal(a, "bob", [bob]),
        ct: "A".repeat(Math.ceil((MAX_TEXT_BYTES * 2 + 80) * (4 / 3)) + 8),
      };
      // Addressed to carol, sealed for bob: carol could not open it.
      const notForThem = { ...seal(a, "bob", [bob]), to: "carol" };
      const good2 = seal(a, "carol", [carol], "two");
      const envelopes: Envelope[] = [good1, forged, tooLarge, notForThem, good1, good2];
      const commitsBefore = t.commits.length;
      const { results } = (await alice.request("send.many", { envelopes })) as { results: Result[] };

      assert.deepEqual(
        results.map((r) => [r.id, refused(r)]),
        [
          [good1.id, "stored"],
          [forged.id, "forbidden"],
          [tooLarge.id, "too_large"],
          [notForThem.id, "conflict"],
          [good1.id, "stored"],
          [good2.id, "stored"],
        ],
      );
      const [first, , , , again, second] = results as Array<Extract<Result, { cursor: string }>>;
      assert.equal(first!.duplicate, false);
      assert.equal(again!.duplicate, true, "the repeated id is recognised as a resend");
      assert.equal(again!.cursor, first!.cursor);
      assert.equal(second!.duplicate, false);
      assert.deepEqual(
        t.commits.slice(commitsBefore),
        [3],
        "the accepted envelopes (the repeat included) went to the store in one transaction",
      );

      const ids = async (owner: string) =>
        (await t.stack.store.read(owner, null, 100)).items.map((i) => JSON.parse(i.envelope).id as string);
      await t.published(4);
      assert.deepEqual(await ids("bob"), [good1.id], "bob's mailbox: the good message, once");
      assert.deepEqual(await ids("carol"), [good2.id]);
      assert.deepEqual(await ids("alice"), [good1.id, good2.id], "the sender's own copies");
      assert.deepEqual(
        Object.fromEntries([...t.rung].map(([k, perTopic]) => [k, Math.max(...perTopic.values())])),
        {
          [`bob/${good1.id}`]: 1,
          [`alice/${good1.id}`]: 1,
          [`carol/${good2.id}`]: 1,
          [`alice/${good2.id}`]: 1,
        },
        "each stored copy published once on each of its topics; nothing refused was published",
      );

      // The same batch again (a resend after a lost reply): nothing new is stored.
      const { results: resent } = (await alice.request("send.many", { envelopes: [good1, good2] })) as {
        results: Result[];
      };
      assert.deepEqual(
        resent.map((r) => ("duplicate" in r ? r.duplicate : r.error.code)),
        [true, true],
      );
      assert.deepEqual(await ids("bob"), [good1.id]);
    } finally {
      await t.stop();
    }
  });

  it("a burst's deliveries to one device go several to a frame on its batch topic and one a frame on its plain topic; a client on the batch topic applies them all, in order", async () => {
    const t = await stackWith();
    try {
      const alice = await t.stack.client("alice");
      const bob = await t.stack.client("bob");
      await alice.login();
      await bob.login();
      const got: string[] = [];
      bob.on((e) => {
        if (e.type === "message") got.push(e.message.id);
      });
      const a = sealerOf(t.stack, "alice");
      const bobKeys = { name: "bob", keys: keysOf(t.stack, "bob") };
      const envelopes = Array.from({ length: MAX_SEND_MANY }, (_, i) => seal(a, "bob", [bobKeys], `m${i}`));
      await alice.request("send.many", { envelopes });
      for (let i = 0; i < 500 && got.length < envelopes.length; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(
        got,
        envelopes.map((e) => e.id),
        "bob's client: every message once, in order",
      );

      const auth = new Authority(TEST_SECRET);
      const device = identityOf(t.stack, "bob").device;
      const plain = auth.deliveryTopics("bob", [device]);
      const batched = auth.deliveryTopics("bob", [device], true);
      for (const topic of plain)
        assert.equal(t.frames.get(topic), MAX_SEND_MANY, "plain: one delivery a frame");
      for (const topic of batched)
        assert.ok(
          (t.frames.get(topic) ?? 0) <= 2,
          `batched: ${t.frames.get(topic)} frames for ${MAX_SEND_MANY}`,
        );
      for (const e of envelopes)
        assert.deepEqual(
          [...plain, ...batched].map((topic) => t.rung.get(`bob/${e.id}`)?.get(topic)),
          [...plain, ...batched].map(() => 1),
          "each copy once on each topic",
        );
      // A client that knows batch topics subscribes there only (an older one, to the plain topic).
      const subscribers = (t.stack.hub as unknown as { subscribers: Map<string, Set<unknown>> }).subscribers;
      assert.equal(subscribers.get(batched[0]!)?.size, 1);
      assert.equal(subscribers.get(plain[0]!)?.size ?? 0, 0);
    } finally {
      await t.stop();
    }
  });

  it("quiet: the sender's own copies are not rung on the sending device's topics (it stores them from the reply); the recipient's are, and without quiet so are the sender's", async () => {
    const t = await stackWith();
    try {
      const alice = await t.stack.client("alice");
      const bob = await t.stack.client("bob");
      await alice.login();
      await bob.login();
      const a = sealerOf(t.stack, "alice");
      const bobKeys = { name: "bob", keys: keysOf(t.stack, "bob") };
      const aliceKeys = { name: "alice", keys: keysOf(t.stack, "alice") };
      const recipients = [bobKeys, aliceKeys];
      const quiet = [seal(a, "bob", recipients, "q1"), seal(a, "bob", recipients, "q2")];
      const loud = [seal(a, "bob", recipients, "l1")];
      const r = await alice.request("send.many", { envelopes: quiet, quiet: true });
      assert.deepEqual((r as { results: Result[] }).results.map(refused), ["stored", "stored"]);
      await alice.request("send.many", { envelopes: loud });
      // alice's three copies and bob's three: wait for the five that are rung, then a turn more.
      await t.published(5);
      await new Promise((r) => setTimeout(r, 100));
      const rungTo = (owner: string, id: string) => [...(t.rung.get(`${owner}/${id}`)?.keys() ?? [])];
      const auth = new Authority(TEST_SECRET);
      const aliceDevice = identityOf(t.stack, "alice").device;
      const aliceTopics = [
        ...auth.deliveryTopics("alice", [aliceDevice]),
        ...auth.deliveryTopics("alice", [aliceDevice], true),
      ];
      for (const e of quiet) {
        assert.deepEqual(rungTo("alice", e.id), [], "the sending device is not rung for its own copy");
        assert.ok(rungTo("bob", e.id).length > 0, "the recipient is rung");
      }
      assert.deepEqual(
        rungTo("alice", loud[0]!.id).sort(),
        [...aliceTopics].sort(),
        "without quiet the sender's copy is rung on its device's topics (positive control)",
      );
    } finally {
      await t.stop();
    }
  });

  it("quiet is refused as malformed when it is not `true` (bad_request)", async () => {
    const t = await stackWith();
    try {
      const alice = await t.stack.client("alice");
      await alice.login();
      const a = sealerOf(t.stack, "alice");
      const self = { name: "alice", keys: keysOf(t.stack, "alice") };
      await assert.rejects(
        alice.request("send.many", { envelopes: [seal(a, "alice", [self])], quiet: false } as never),
        (e: { code?: string }) => e.code === "bad_request",
      );
    } finally {
      await t.stop();
    }
  });

  it(`refuses a batch of more than ${MAX_SEND_MANY} envelopes, and an empty one, whole (bad_request)`, async () => {
    const t = await stackWith();
    try {
      const alice = await t.stack.client("alice");
      await t.stack.client("bob");
      await alice.login();
      const a = sealerOf(t.stack, "alice");
      const bob = { name: "bob", keys: keysOf(t.stack, "bob") };
      const many = Array.from({ length: MAX_SEND_MANY + 1 }, () => seal(a, "bob", [bob]));
      await assert.rejects(alice.request("send.many", { envelopes: many }), { code: "bad_request" });
      await assert.rejects(alice.request("send.many", { envelopes: [] }), { code: "bad_request" });
      assert.equal(await t.stack.store.mailboxSize("bob"), 0);
      // Positive control: the largest allowed batch goes through whole.
      const { results } = (await alice.request("send.many", { envelopes: many.slice(0, MAX_SEND_MANY) })) as {
        results: Result[];
      };
      assert.equal(results.filter((r) => refused(r) === "stored").length, MAX_SEND_MANY);
      assert.equal(await t.stack.store.mailboxSize("bob"), MAX_SEND_MANY);
    } finally {
      await t.stop();
    }
  });

  it("refuses a frame over the frame limit (too_large) and stores none of it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-many-"));
    const store = new SqliteStore(join(dir, "store.db"));
    await store.init();
    try {
      const published: string[] = [];
      const service = new ChatService(
        store,
        new Authority(TEST_SECRET),
        { publish: (topic) => published.push(topic) },
        silentLogger,
      );
      const env = { id: uuidv7(), ct: "A".repeat(20_000) };
      const frame = Buffer.from(
        JSON.stringify({ v: 1, id: "r1", type: "send.many", body: { envelopes: Array(60).fill(env) } }),
      );
      assert.ok(frame.length > MAX_FRAME_BYTES);
      const reply = JSON.parse((await service.handle(frame)).toString());
      assert.equal(reply.ok, false);
      assert.equal(reply.error.code, "too_large");
      assert.equal(await store.mailboxSize("bob"), 0);
      assert.deepEqual(published, []);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("charges the sender rate per envelope: a batch cannot pass the quota that single sends meet", async () => {
    // One server: the sender quota is kept per server (server/limits.ts).
    const t = await stackWith({ ...DEFAULT_SERVER_QUOTAS, messagesPerMinute: 5 }, 1);
    try {
      const alice = await t.stack.client("alice");
      await t.stack.client("bob");
      await alice.login();
      const a = sealerOf(t.stack, "alice");
      const bob = { name: "bob", keys: keysOf(t.stack, "bob") };
      const envelopes = Array.from({ length: 8 }, (_, i) => seal(a, "bob", [bob], `m${i}`));
      const { results } = (await alice.request("send.many", { envelopes })) as { results: Result[] };
      // Positive control: the first five are within the quota and stored.
      assert.deepEqual(results.map(refused), [...Array(5).fill("stored"), ...Array(3).fill("rate_limited")]);
      for (const r of results.slice(5)) {
        assert.ok("error" in r && (r.error.retryAfterMs ?? 0) > 0, "a refusal says when to retry");
      }
      assert.equal(await t.stack.store.mailboxSize("bob"), 5);
      // The batch used up the quota that single sends meet too.
      await assert.rejects(
        alice.request("send", { envelope: seal(a, "bob", [bob], "after") }, { timeoutMs: 1500 }),
        { code: "rate_limited" },
      );
    } finally {
      await t.stop();
    }
  });

  it("holds a batch to a mailbox's quota: the envelopes that would pass it are refused, other mailboxes are not", async () => {
    const t = await stackWith({ ...DEFAULT_SERVER_QUOTAS, mailboxMessages: 5 }, 1);
    try {
      const alice = await t.stack.client("alice");
      await t.stack.client("bob");
      await t.stack.client("carol");
      await alice.login();
      const a = sealerOf(t.stack, "alice");
      const bob = { name: "bob", keys: keysOf(t.stack, "bob") };
      const carol = { name: "carol", keys: keysOf(t.stack, "carol") };
      for (let i = 0; i < 3; i++) await alice.request("send", { envelope: seal(a, "bob", [bob]) });
      const envelopes = [
        ...Array.from({ length: 4 }, () => seal(a, "bob", [bob])),
        seal(a, "carol", [carol]),
      ];
      const { results } = (await alice.request("send.many", { envelopes })) as { results: Result[] };
      assert.deepEqual(results.map(refused), ["stored", "stored", "forbidden", "forbidden", "stored"]);
      assert.match((results[2] as { error: { message: string } }).error.message, /mailbox of bob is full/);
      assert.equal(await t.stack.store.mailboxSize("bob"), 5, "bob's mailbox stops at its quota");
      assert.equal(await t.stack.store.mailboxSize("carol"), 1, "carol's has room and takes hers");
    } finally {
      await t.stop();
    }
  });
});
