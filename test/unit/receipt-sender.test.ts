import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { ReceiptSender } from "../../core/client/receipt-sender.js";
import { silentLogger } from "../../core/logger.js";
import { uuidv7 } from "../../core/protocol/ids.js";

function fromAlice(n: number): ChatMessage {
  return {
    id: uuidv7(),
    conv: "u:alice",
    from: "alice",
    to: "bob",
    group: null,
    text: `m${n}`,
    sentAt: new Date().toISOString(),
    serverTime: new Date().toISOString(),
    cursor: String(n),
    verified: true,
    problem: null,
    seq: n,
    device: "0123456789abcdef",
  };
}

describe("receipt sender (core/client/receipt-sender.ts)", () => {
  it("a flush that waited behind a slow send ends quietly when the client closed its cache meanwhile", async () => {
    const cache = new Cache(":memory:");
    cache.receipts.owner = "bob";
    let answer: (m: ChatMessage) => void = () => {};
    let sends = 0;
    const client = {
      online: true,
      send() {
        sends++;
        return new Promise<ChatMessage>((resolve) => {
          answer = resolve;
        });
      },
    };
    const sender = new ReceiptSender(client, cache.receipts, silentLogger);
    cache.addMessages([fromAlice(1)], "1");
    assert.equal(cache.receipts.waiting(), true, "a delivered receipt waits");
    // One flush sends (and waits for its answer); a second one (the burst timer's) waits behind it.
    const first = sender.flush(10_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(sends, 1);
    const second = sender.flush(10_000);
    // The client closes: the sender stops, then the cache is closed, then the slow answer comes.
    sender.stop();
    await cache.close();
    answer(fromAlice(2));
    const ends = await Promise.allSettled([first, second]);
    assert.deepEqual(
      ends.map((e) => (e.status === "rejected" ? String(e.reason) : e.status)),
      ["fulfilled", "fulfilled"],
    );
    assert.equal(sends, 1, "nothing more is sent once stopped");
  });
});
