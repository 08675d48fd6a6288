/**
 * `quiet` sends (issue #15: "the sending device is not rung for its own copy"): the service
 * leaves this device's own copies off its live topics, so the client must place them itself.
 * - Cache: an acknowledged copy ahead of the cursor waits for the cursor to reach its
 *   predecessor, then the cursor moves over it (and its mailbox place is kept for replays).
 * - Live path: a delivery that follows such a copy is applied at once, with no gap read.
 * - Cache.alone: quiet only while no other live client shares the profile, which would learn
 *   of these copies only through the ring.
 * - SendWindow: asks quiet only when offered and alone; an older server's refusal turns it off.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { LiveDeliveries } from "../../core/client/live.js";
import { type SendResult, SendWindow } from "../../core/client/send-window.js";
import { ZmqchatError } from "../../core/errors.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import type { Envelope, MailboxItem } from "../../core/protocol/schema.js";
import { chatMessage } from "../helpers/chat-message.js";

function message(cursor: number, from: string, text = `m${cursor}`): ChatMessage {
  return chatMessage(cursor, {
    conv: "u:alice",
    from,
    to: from === "bob" ? "alice" : "bob",
    group: null,
    text,
  });
}

function itemOf(m: ChatMessage): MailboxItem {
  return {
    cursor: m.cursor,
    serverTime: m.serverTime,
    envelope: {
      v: 1,
      suite: "test",
      id: m.id,
      from: m.from,
      device: "0123456789abcdef",
      to: m.to,
      group: null,
      seq: m.seq,
      sentAt: m.sentAt,
      nonce: "AA",
      ct: "",
      keys: [{ to: "bob", wk: "AA" }],
      sig: "AA",
    },
  } as MailboxItem;
}

function withDir(run: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-quiet-"));
    try {
      await run(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

describe("quiet sends: own copies placed by the client", () => {
  it("Cache: an acknowledged copy ahead of the cursor is passed over once the cursor reaches its predecessor, its place kept", async () => {
    const cache = new Cache(":memory:");
    cache.receipts.owner = "alice";
    try {
      cache.addMessages([message(1, "bob")], "1");
      // alice's copy at 3 follows 2, bob's message still on its way: stored, cursor stays.
      const mine = message(3, "alice");
      const mine2 = message(4, "alice");
      cache.addAcked([
        { message: mine, prev: "2", dequeue: false },
        { message: mine2, prev: "3", dequeue: false },
      ]);
      assert.equal(cache.cursor, "1");
      // bob's message at 2 arrives: the cursor moves to it and on over 3 and 4.
      assert.notEqual(cache.addNext([message(2, "bob")], "1", "2"), null);
      assert.equal(cache.cursor, "4");
      // The places were kept: the same id handed out at another place is a replay.
      const replay = { ...mine, cursor: "9" };
      cache.addMessages([replay], "9");
      assert.deepEqual(
        cache.replays("u:alice").map((r) => r.id),
        [mine.id],
      );
    } finally {
      await cache.close();
    }
  });

  it("Cache: a copy the cursor already passed (a sync read it) is not waited for", async () => {
    const cache = new Cache(":memory:");
    cache.receipts.owner = "alice";
    try {
      const mine = message(3, "alice");
      cache.addMessages([message(1, "bob")], "1");
      cache.addAcked([{ message: mine, prev: "2", dequeue: false }]);
      cache.addMessages([message(2, "bob"), { ...mine }, message(5, "bob")], "5");
      assert.equal(cache.cursor, "5");
      // A later move from 2 (another handle's stale view) does not jump to 3: the cursor only grows.
      assert.equal(cache.addNext([], "5", "6")?.length, 0);
      assert.equal(cache.cursor, "6");
    } finally {
      await cache.close();
    }
  });

  it(
    "live path: a delivery after our own acknowledged copy is applied at once, with no gap read or sync",
    withDir(async (dir) => {
      const cache = new Cache(join(dir, "cache.db"));
      cache.receipts.owner = "alice";
      const fetches: string[] = [];
      let syncs = 0;
      const emitted: string[] = [];
      const live = new LiveDeliveries("alice", {
        cache,
        open: async (items) =>
          items.map((i) => ({ ...message(Number(i.cursor), i.envelope.from), id: i.envelope.id })),
        sync: async () => {
          syncs++;
          return 0;
        },
        running: () => null,
        fetch: async (after) => {
          fetches.push(String(after));
          return { items: [], more: false };
        },
        emit: (m) => emitted.push(m.cursor),
        warn: (err) => {
          throw err;
        },
      });
      try {
        const first = message(1, "bob");
        cache.addMessages([first], "1");
        // alice's copy at 3 (after bob's 2, not here yet) is acknowledged: no delivery will bring it.
        cache.addAcked([{ message: message(3, "alice"), prev: "2", dequeue: false }]);
        const frame = (m: ChatMessage, prev: string) => ({
          v: 1,
          type: "deliver",
          owner: "alice",
          item: itemOf(m),
          prev,
        });
        // bob's 2 and 5 (5 follows alice's 3) arrive together.
        live.push(frame(message(2, "bob"), "1"));
        live.push(frame(message(5, "bob"), "3"));
        // Both in the drain that takes them: turns of the event loop, far shorter than a hold
        // (HOLD_MS, 50 ms), after which 5 would find the cursor at 3 too, only later.
        for (let turn = 0; turn < 200 && emitted.length < 2; turn++)
          await new Promise((r) => setImmediate(r));
        assert.deepEqual(emitted, ["2", "5"], "5 applied in the same drain, not after a hold");
        await live.idle();
        assert.deepEqual(emitted, ["2", "5"]);
        assert.equal(cache.cursor, "5");
        assert.deepEqual(fetches, [], "no gap read");
        assert.equal(syncs, 0, "no sync");
      } finally {
        await cache.close();
      }
    }),
  );

  it(
    "Cache.alone: true for the only live client of the profile; false while another live handle or process runs; a dead process's row is removed",
    withDir(async (dir) => {
      const path = join(dir, "cache.db");
      const a = new Cache(path);
      const b = new Cache(path);
      try {
        assert.equal(a.alone(), false, "not registered: never quiet");
        a.registerLive();
        assert.equal(a.alone(), true);
        b.registerLive();
        assert.equal(a.alone(), false, "another handle is live");
        assert.equal(b.alone(), false);
        b.unregisterLive();
        assert.equal(a.alone(), true, "the other handle left");
        // A row left by a process that died (a pid that no longer runs).
        const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
        const pid = Number(gone.stdout.toString());
        const raw = new Database(path);
        raw.prepare("INSERT INTO live_clients (id, pid, since) VALUES (?, ?, ?)").run("dead", pid, "then");
        // And one of a process that runs (this test's parent): it counts.
        raw
          .prepare("INSERT INTO live_clients (id, pid, since) VALUES (?, ?, ?)")
          .run("alive", process.ppid, "now");
        assert.equal(a.alone(), false, "a running process's row counts (positive control)");
        raw.prepare("DELETE FROM live_clients WHERE id = 'alive'").run();
        assert.equal(a.alone(), true, "the dead process's row does not count");
        assert.equal(
          (raw.prepare("SELECT count(*) AS n FROM live_clients WHERE id = 'dead'").get() as { n: number }).n,
          0,
          "and it is removed",
        );
        raw.close();
      } finally {
        await b.close();
        await a.close();
      }
    }),
  );

  it("SendWindow: quiet only when offered and alone, even for one envelope; an older server's bad_request turns it off", async () => {
    let alone = true;
    let old = false;
    const calls: Array<{ n: number; quiet: boolean | undefined; one: boolean }> = [];
    const ack = (e: Envelope, i: number): SendResult => ({
      id: e.id,
      cursor: String(i + 1),
      serverTime: new Date().toISOString(),
      duplicate: false,
    });
    const w = new SendWindow({
      one: async (e) => {
        calls.push({ n: 1, quiet: undefined, one: true });
        return ack(e, 0) as never;
      },
      many: async (es, _t, _f, quiet) => {
        calls.push({ n: es.length, quiet, one: false });
        if (old && quiet) throw new ZmqchatError("bad_request", "send.many: unrecognized key: quiet");
        return es.map(ack);
      },
      alone: () => alone,
    });
    const send = () => w.reserve().post({ id: uuidv7(), ct: "x" } as unknown as Envelope, 5000);
    w.offer(4, true);
    await send();
    assert.deepEqual(
      calls.at(-1),
      { n: 1, quiet: true, one: false },
      "one envelope goes as a quiet send.many",
    );
    alone = false;
    await send();
    assert.deepEqual(calls.at(-1), { n: 1, quiet: undefined, one: true }, "not alone: as before");
    alone = true;
    old = true;
    await send();
    assert.deepEqual(
      calls.slice(-2),
      [
        { n: 1, quiet: true, one: false },
        { n: 1, quiet: undefined, one: true },
      ],
      "refused as malformed: sent again without quiet",
    );
    await send();
    assert.deepEqual(calls.at(-1), { n: 1, quiet: undefined, one: true }, "off until the next offer");
    w.offer(4, false);
    await send();
    assert.deepEqual(calls.at(-1), { n: 1, quiet: undefined, one: true }, "not offered: never");
  });
});
