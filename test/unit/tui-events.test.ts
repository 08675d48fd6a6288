/**
 * The TUI is fed by its client's events, with no polling: what another process of the same
 * profile stored first reaches the TUI through the client's `already_stored` event (proved on
 * the live path itself, then on the controller), and the shared outbox through a change of the
 * cache file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import type { ChatClient, ClientEvent, ConnectionState } from "../../core/client/client.js";
import { LiveDeliveries } from "../../core/client/live.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import type { MailboxItem } from "../../core/protocol/schema.js";
import { Controller } from "../../tui/controller.js";
import { watchCacheFile } from "../../tui/worker/cache-watch.js";

function mailboxItem(n: number): MailboxItem {
  const at = new Date(1_700_000_000_000 + n).toISOString();
  return {
    cursor: String(100 + n),
    serverTime: at,
    envelope: {
      v: 1,
      suite: "test",
      id: `0190f000-0000-7000-8000-${String(n).padStart(12, "0")}`,
      from: "bob",
      device: "0123456789abcdef",
      to: "sam",
      group: null,
      seq: n,
      sentAt: at,
      nonce: "AA",
      ct: "",
      keys: [{ to: "sam", wk: "AA" }],
      sig: "AA",
    },
  };
}

/** The message an item opens to (no crypto: the units under test are the paths, not the opener). */
function messageOf(i: MailboxItem): ChatMessage {
  const e = i.envelope;
  return {
    id: e.id,
    conv: "u:bob",
    from: e.from,
    to: e.to,
    group: null,
    text: `from bob #${e.seq}`,
    sentAt: e.sentAt,
    serverTime: i.serverTime,
    cursor: i.cursor,
    verified: true,
    problem: null,
    seq: e.seq,
    device: e.device,
  };
}

const deliver = (i: MailboxItem, prev: string | null) => ({
  v: 1,
  type: "deliver",
  owner: "sam",
  item: i,
  prev,
});

/** Polls `cond` until it holds or the deadline passes (no fixed sleeps). */
async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((r) => setTimeout(r, 10));
  }
}

/** Stands in for ChatClient: the TUI's worker sees only its events, its cache and a few requests. */
class FakeClient {
  readonly name = "sam";
  readonly publicKeys = generateIdentity("sam").publicKeys;
  readonly endpoint = "memory://fake";
  state: ConnectionState = "offline";
  private readonly listeners = new Set<(e: ClientEvent) => void>();
  constructor(readonly cache: Cache) {}
  on(l: (e: ClientEvent) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  emit(e: ClientEvent) {
    if (e.type === "state") this.state = e.state;
    for (const l of this.listeners) l(e);
  }
  async register() {
    return { created: false };
  }
  async goLive() {}
  keepAlive() {}
  /** Read receipts and presence (issue 17) are the client's business: recorded, not sent. */
  readonly shown: string[] = [];
  markRead(messages: Array<{ id: string }>) {
    this.shown.push(...messages.map((m) => m.id));
  }
  async startPresence() {}
  presenceOf() {
    return null;
  }
  async users() {
    return [];
  }
  async groups() {
    return [];
  }
  async flushOutbox() {
    return { sent: 0, left: 0 };
  }
}

describe("the TUI fed by its client's events", () => {
  let dir: string;
  let path: string;
  let cache: Cache;
  /** Another process of the same profile: its own handle on the same cache file. */
  let other: Cache;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "zmqchat-tui-events-"));
    path = join(dir, "cache.db");
    cache = new Cache(path);
    other = new Cache(path);
  });
  afterEach(async () => {
    await other.close();
    await cache.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the live path reports a delivery another process stored first as already_stored (no message, no sync)", async () => {
    const stored: string[] = [];
    const emitted: string[] = [];
    let syncs = 0;
    let sneakIn: MailboxItem | null = null;
    const live = new LiveDeliveries("sam", {
      cache,
      open: async (items) => {
        // Another process stores this one while we open it: the cursor moves under us.
        if (sneakIn) other.addMessages([messageOf(sneakIn)], sneakIn.cursor);
        return items.map(messageOf);
      },
      sync: async () => {
        syncs++;
        return 0;
      },
      running: () => null,
      emit: (m) => emitted.push(m.id),
      alreadyStored: (cursor) => stored.push(cursor),
      warn: (err) => {
        throw err;
      },
    });
    const first = mailboxItem(1);
    other.addMessages([messageOf(first)], first.cursor);
    live.push(deliver(first, null));
    await live.idle();
    assert.deepEqual(stored, [first.cursor], "told, with the cache's cursor");
    assert.deepEqual(emitted, [], "not reported as a new message");
    assert.equal(syncs, 0, "no sync for what is stored");

    const second = mailboxItem(2);
    sneakIn = second;
    live.push(deliver(second, first.cursor));
    await live.idle();
    assert.deepEqual(stored, [first.cursor, second.cursor], "the race lost to another process is told too");
    assert.deepEqual(emitted, []);
    assert.equal(cache.messageCount(), 2);

    // Another process stored this one without moving the cursor (its ack did not follow it):
    // applying it moves the cursor, but it is not new here.
    sneakIn = null;
    const third = mailboxItem(3);
    other.addMessages([messageOf(third)], null);
    live.push(deliver(third, second.cursor));
    await live.idle();
    assert.deepEqual(stored, [first.cursor, second.cursor, third.cursor]);
    assert.deepEqual(emitted, []);
    assert.equal(cache.cursor, third.cursor);
  });

  it("shows what another process stored when the client says already_stored, and what it fetched while this one was away when back online", async () => {
    const client = new FakeClient(cache);
    const controller = new Controller({
      profiles: {
        list: () => ["sam"],
        exists: () => true,
        open: () => ({ client: client as unknown as ChatClient, close: async () => {} }),
        create: () => {
          throw new Error("not here");
        },
      },
      refreshMs: 60_000,
      noticeMs: 60_000,
    });
    try {
      controller.start("sam");
      await controller.idle();
      controller.dispatch({ type: "open", conv: "u:bob" });
      client.emit({ type: "state", state: "online", endpoint: client.endpoint });
      const texts = () => controller.state.history?.items.map((i) => i.text) ?? [];

      const first = mailboxItem(1);
      other.addMessages([messageOf(first)], first.cursor);
      client.emit({ type: "already_stored", cursor: first.cursor });
      await waitFor(() => texts().includes("from bob #1"), "the message stored by another process");

      client.emit({ type: "state", state: "offline", endpoint: client.endpoint });
      const second = mailboxItem(2);
      other.addMessages([messageOf(second)], second.cursor);
      // A message in another conversation, fetched meanwhile, counts as unread there.
      const third = { ...messageOf(mailboxItem(3)), conv: "u:carol", from: "carol" };
      other.addMessages([third], third.cursor);
      client.emit({ type: "state", state: "online", endpoint: client.endpoint });
      await waitFor(
        () => texts().includes("from bob #2") && controller.state.convs["u:carol"]?.unread === 1,
        "what another process fetched while this client was away",
      );
      assert.deepEqual(
        texts().filter((t) => t.startsWith("from bob")),
        ["from bob #1", "from bob #2"],
        "each once, in order",
      );
    } finally {
      await controller.idle();
      await controller.stop();
    }
  });

  it("the shared outbox: a message another process queues shows up from the cache file's change", async () => {
    const changes: number[] = [];
    const stop = watchCacheFile(path, () => changes.push(cache.outbox().length));
    try {
      other.enqueue({
        id: "0190f000-0000-7000-8000-000000000099",
        conv: "u:bob",
        target: { user: "bob" },
        text: "queued by the CLI",
        seq: 1,
        sentAt: new Date().toISOString(),
        lastError: null,
      });
      await waitFor(() => changes.includes(1), "a change notice that finds the queued message");
    } finally {
      stop();
    }
  });
});
