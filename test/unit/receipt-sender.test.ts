import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { ReceiptSender } from "../../core/client/receipt-sender.js";
import { MAX_RECEIPT_IDS, RECEIPT_READ_ROWS } from "../../core/client/receipts.js";
import { ZmqchatError } from "../../core/errors.js";
import { silentLogger } from "../../core/logger.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { chatMessage } from "../helpers/chat-message.js";

function fromAlice(n: number): ChatMessage {
  return chatMessage(n, {
    conv: "u:alice",
    from: "alice",
    to: "bob",
    group: null,
    text: `m${n}`,
    device: "0123456789abcdef",
  });
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

  it("reads the queue a window at a time: a flush that stops (service away) read one window, not the whole queue; one that goes on sends every receipt once, in order, passing over a held author", async () => {
    const cache = new Cache(":memory:");
    cache.receipts.owner = "bob";
    const n = RECEIPT_READ_ROWS * 2 + 50;
    const messages = Array.from({ length: n }, (_, i) => fromAlice(i + 1));
    // One message from carol first, whose receipt waits for a key change (stays queued).
    const carol = { ...fromAlice(0), id: uuidv7(), from: "carol", conv: "u:carol", cursor: "0" };
    cache.addMessages([carol, ...messages], String(n));
    let read = 0;
    const window = cache.receipts.window.bind(cache.receipts);
    cache.receipts.window = (after, limit) => {
      const w = window(after, limit);
      read += w.batches.reduce((k, b) => k + b.ids.length, 0);
      return w;
    };
    let away = true;
    const sent: string[][] = [];
    const client = {
      online: true,
      async send(
        target: { user: string },
        _text: string,
        _opts: unknown,
        extra?: { receipt?: { ids: string[] } },
      ) {
        if (away) throw new ZmqchatError("timeout", "no answer");
        if (target.user === "carol") throw new ZmqchatError("key_changed", "carol's keys changed");
        sent.push(extra!.receipt!.ids);
        return fromAlice(0);
      },
    };
    const sender = new ReceiptSender(client, cache.receipts, silentLogger);
    await sender.flush(10_000);
    assert.ok(
      read <= RECEIPT_READ_ROWS,
      `a flush that stopped at once read ${read} of ${n + 1} queued receipts`,
    );
    away = false;
    read = 0;
    await sender.flush(10_000);
    assert.deepEqual(
      sent.flat(),
      messages.map((m) => m.id),
      "every receipt to alice once, in order",
    );
    assert.ok(sent.every((ids) => ids.length <= MAX_RECEIPT_IDS));
    assert.deepEqual(
      cache.receipts.batches().map((b) => [b.author, b.ids]),
      [["carol", [carol.id]]],
      "carol's stays queued",
    );
    sender.stop();
    await cache.close();
  });
});
