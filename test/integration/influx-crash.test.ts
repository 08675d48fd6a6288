import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { ZmqchatError } from "../../core/errors.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { InfluxStore } from "../../server/store/influx.js";
import type { AppendResult, StoredItem } from "../../server/store/store.js";
import { type Influxd, startInfluxd } from "../helpers/influxd.js";

type Page = { items: StoredItem[]; more: boolean };

async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

describe("InfluxStore when influxd is killed mid-stream", () => {
  let influxd: Influxd;
  before(async () => {
    influxd = await startInfluxd();
  });
  after(() => influxd?.stop());

  it("keeps every acknowledged append; the others fail and succeed when retried", async (t) => {
    const store = new InfluxStore({ url: influxd.url, db: "crash", retryForMs: 800, timeoutMs: 2000 });
    await store.init();
    const sent = new Map<string, string>(); // id -> envelope
    const acked = new Map<string, AppendResult>();
    const failed = new Set<string>();
    let stop = false;
    let n = 0;

    // A follower reads the mailbox from its cursor all along, as a client's sync would.
    const followed: string[] = [];
    let followerStop = false;
    let followerErrors = 0;
    const follower = (async () => {
      let cursor: string | null = null;
      for (;;) {
        const finishing = followerStop;
        try {
          const page: Page = await store.read("bob", cursor, 500);
          for (const item of page.items) followed.push((JSON.parse(item.envelope) as { id: string }).id);
          if (page.items.length > 0) cursor = page.items.at(-1)!.cursor;
          if (finishing && !page.more) return;
          if (page.items.length === 0) await delay(20);
        } catch (err) {
          assert.ok(
            err instanceof ZmqchatError && err.code === "unavailable",
            `reads fail as unavailable: ${err}`,
          );
          followerErrors++;
          await delay(50);
        }
      }
    })();

    const worker = async () => {
      while (!stop) {
        const id = uuidv7();
        const envelope = JSON.stringify({ id, n: n++ });
        sent.set(id, envelope);
        try {
          acked.set(id, await store.append({ id, owners: ["bob"], envelope }));
        } catch (err) {
          assert.ok(err instanceof ZmqchatError, `append failures are ZmqchatErrors: ${err}`);
          assert.equal(err.code, "unavailable");
          failed.add(id);
        }
      }
    };
    const workers = Array.from({ length: 32 }, worker);

    await until("a first stretch of acknowledged appends", () => acked.size >= 2000);
    await influxd.kill();
    const ackedAtKill = acked.size;
    await until("appends to fail while influxd is down", () => failed.size >= 64);
    await influxd.restart();
    await until("appends to succeed again after the restart", () => acked.size >= ackedAtKill + 1000);
    stop = true;
    await Promise.all(workers);
    t.diagnostic(`${acked.size} acknowledged, ${failed.size} failed while influxd was down`);
    assert.ok(failed.size >= 64);

    // The client retries what failed, with the same ids: each lands exactly once.
    let resentDuplicates = 0;
    for (const id of failed) {
      const r = await store.append({ id, owners: ["bob"], envelope: sent.get(id)! });
      if (r.duplicate) resentDuplicates++;
      acked.set(id, r);
    }
    t.diagnostic(
      `${resentDuplicates} of the failed appends had been stored after all (the resend said duplicate)`,
    );

    followerStop = true;
    await follower;
    t.diagnostic(`the follower saw ${followerErrors} read errors during the outage`);

    const stored = new Map<string, string>(); // id -> cursor
    let cursor: string | null = null;
    for (;;) {
      const page: Page = await store.read("bob", cursor, 2000);
      for (const item of page.items) {
        const { id } = JSON.parse(item.envelope) as { id: string };
        assert.ok(!stored.has(id), `${id} is stored once`);
        stored.set(id, item.cursor);
      }
      if (!page.more) break;
      cursor = page.items.at(-1)!.cursor;
    }
    assert.equal(stored.size, sent.size, "every message sent is stored exactly once after the retries");
    for (const [id, r] of acked)
      assert.equal(stored.get(id), r.placed.get("bob")!.cursor, "stored where acknowledged");

    assert.equal(new Set(followed).size, followed.length, "the follower saw nothing twice");
    assert.deepEqual(followed, [...stored.keys()], "the follower saw everything, in mailbox order");
    await store.close();
  });
});
