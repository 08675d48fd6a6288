import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Worker } from "node:worker_threads";
import { SqliteStore } from "../../server/store/sqlite.js";
import { appendRequest } from "../../server/store/sqlite-append.js";
import type { AppendInput } from "../../server/store/store.js";

/** 256 appends of 40 KB to two mailboxes each: some 20 MB for one commit to write and sync. */
function bigBatch(tag: string): AppendInput[] {
  const envelope = JSON.stringify({ ct: "x".repeat(40_000) });
  return Array.from({ length: 256 }, (_, i) => ({ id: `${tag}-${i}`, owners: ["bob", "alice"], envelope }));
}

/** How many turns of the event loop pass while `work` is pending. */
async function turnsDuring(work: Promise<unknown>): Promise<number> {
  let turns = 0;
  let done = false;
  const spin = () => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  await work;
  done = true;
  return turns;
}

describe("the SQLite store's writer thread", () => {
  it("is not sent a base envelope that no mailbox stores (every owner has its own copy)", async () => {
    const copies = new Map([
      ["alice", '{"for":"alice"}'],
      ["bob", '{"for":"bob"}'],
    ]);
    const base = '{"base":true}';
    const [all] = appendRequest([{ id: "m1", owners: ["alice", "bob"], envelope: base, copies }]).inputs;
    assert.equal(all!.envelope, "", "every owner has a copy: no base envelope");
    // Control: an owner without a copy of its own gets the base envelope, so it is sent.
    const [some] = appendRequest([{ id: "m2", owners: ["alice", "carol"], envelope: base, copies }]).inputs;
    assert.equal(some!.envelope, base);
    // And what lands in each mailbox is that owner's copy (the stored bytes, read back).
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-writer-copies-"));
    const store = new SqliteStore(join(dir, "store.db"));
    try {
      await store.init();
      await store.append({ id: "m1", owners: ["alice", "bob"], envelope: base, copies });
      await store.append({ id: "m2", owners: ["alice", "carol"], envelope: base, copies });
      const read = async (owner: string) => (await store.read(owner, null, 10)).items.map((i) => i.envelope);
      assert.deepEqual(await read("alice"), ['{"for":"alice"}', '{"for":"alice"}']);
      assert.deepEqual(await read("bob"), ['{"for":"bob"}']);
      assert.deepEqual(await read("carol"), [base]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("commits off the event loop: the loop turns while a large commit writes and syncs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-writer-"));
    const threaded = new SqliteStore(join(dir, "threaded.db"));
    const inline = new SqliteStore(join(dir, "inline.db"), { writerThread: false });
    try {
      await threaded.init();
      await inline.init();
      // Positive control: committed on the calling thread, the same batch lets no turn pass
      // between the flush that starts it and the answer (a turn or two around them).
      const inlineTurns = await turnsDuring(inline.appendMany(bigBatch("inline")));
      assert.ok(inlineTurns <= 3, `on the calling thread: ${inlineTurns} turns`);
      const threadedTurns = await turnsDuring(threaded.appendMany(bigBatch("threaded")));
      assert.ok(threadedTurns >= 20, `on the writer thread: ${threadedTurns} turns`);
      // What it committed is there, in order.
      const page = await threaded.read("bob", null, 1000);
      assert.deepEqual(
        page.items.map((i) => (JSON.parse(i.envelope) as { ct: string }).ct.length),
        Array(256).fill(40_000),
      );
    } finally {
      await threaded.close();
      await inline.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("when the thread dies, what was on it fails (never acknowledged) and later commits run on the calling thread", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-writer-dies-"));
    const errors: string[] = [];
    const store = new SqliteStore(join(dir, "store.db"), {
      metrics: { batch() {}, error: (op) => errors.push(op) },
    });
    try {
      await store.init();
      await store.append({ id: "before", owners: ["bob"], envelope: "{}" });
      const worker = (store as unknown as { writer: { worker: Worker } }).writer.worker;
      const lost = store.appendMany(bigBatch("lost"));
      await worker.terminate();
      await assert.rejects(lost, (e: { code?: string }) => e.code === "unavailable");
      assert.deepEqual(errors, ["append"]);
      const after = await store.append({ id: "after", owners: ["bob"], envelope: "{}" });
      assert.equal(after.duplicate, false);
      const ids = (await store.read("bob", null, 1000)).items.map((i) => i.cursor);
      // "before", "after", and none of the batch the thread died with (or all of it, had it
      // committed first: one transaction).
      assert.ok(ids.length === 2 || ids.length === 258, `${ids.length} copies`);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
