import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { withUnread } from "../../core/client/read-state.js";
import { conversationsWithUnread } from "../../tui/worker/reads.js";
import { chatMessage } from "../helpers/chat-message.js";

let cursor = 1000;
function msg(from: string, text: string, more: Partial<ChatMessage> = {}): ChatMessage {
  cursor++;
  return chatMessage(cursor, {
    conv: "u:bob",
    from,
    to: from === "alice" ? "bob" : "alice",
    group: null,
    text,
    replyTo: null,
    ...more,
  });
}
/** A read receipt event by `from`, as the cache stores it from the mailbox. */
const receipt = (from: string, ids: string[], to = "bob") =>
  msg(from, "(read receipt)", {
    to,
    conv: `u:${to === "alice" ? from : to}`,
    receipt: { status: "read", group: null, ids },
  });

function aliceCache(): Cache {
  const c = new Cache(":memory:");
  c.receipts.owner = "alice";
  return c;
}
const unread = (c: Cache) => withUnread(c.history("u:bob", 50), "alice", (conv) => c.receipts.readMark(conv));

describe("read state shared across devices (read-state.ts)", () => {
  it("alice's own read receipt (from another device) marks up to its message; a replay or an older one never moves it back", () => {
    const c = aliceCache();
    const [one, two, three] = [msg("bob", "one"), msg("bob", "two"), msg("bob", "three")];
    c.addMessages([one!, two!, three!], three!.cursor);
    assert.deepEqual(
      unread(c).map((m) => m.unread),
      [true, true, true],
    );
    const moved: string[][] = [];
    c.receipts.onReadElsewhere = (convs) => moved.push(convs);
    const r2 = receipt("alice", [two!.id]);
    c.addMessages([r2], r2.cursor);
    assert.deepEqual(
      unread(c).map((m) => m.unread),
      [false, false, true],
    );
    // The same event again (a replay, with a new place) and an older one: nothing moves back.
    c.addMessages([{ ...r2, cursor: String(++cursor) }], String(cursor));
    const r1 = receipt("alice", [one!.id]);
    c.addMessages([r1], r1.cursor);
    assert.deepEqual(
      unread(c).map((m) => m.unread),
      [false, false, true],
    );
    // Nothing of this device waits for what was read elsewhere, and none is sent later.
    assert.equal(c.receipts.batches().filter((b) => b.status === "read").length, 0);
    c.receipts.markRead(c.history("u:bob", 3).slice(0, 2));
    assert.deepEqual(
      c.receipts.batches().filter((b) => b.status === "read"),
      [],
      "one and two were read on the other device: no second receipt",
    );
    return Promise.resolve().then(() => assert.deepEqual(moved, [["u:bob"]]));
  });

  it("a receipt from anyone else, or one that does not verify, marks nothing (positive control: alice's own does)", () => {
    const c = aliceCache();
    const m = msg("bob", "hello");
    c.addMessages([m], m.cursor);
    for (const forged of [
      receipt("carol", [m.id], "alice"),
      { ...receipt("alice", [m.id]), verified: false },
    ])
      c.addMessages([forged], forged.cursor);
    assert.equal(unread(c)[0]!.unread, true);
    assert.equal(conversationsWithUnreadAfter(c, m), 1);
    const own = receipt("alice", [m.id]);
    c.addMessages([own], own.cursor);
    assert.equal(unread(c)[0]!.unread, false);
    assert.equal(conversationsWithUnreadAfter(c, m), 0);
  });

  it("a message read elsewhere before it landed here (held for a key change) is marked when it lands", () => {
    const c = aliceCache();
    const late = msg("bob", "held");
    const r = receipt("alice", [late.id]);
    c.addMessages([r], r.cursor);
    c.addMessages([late], late.cursor);
    assert.equal(unread(c)[0]!.unread, false);
  });

  it("reading sends a receipt to the user herself only when no receipt to an author tells it", () => {
    const c = aliceCache();
    const a = msg("bob", "a");
    const gone = msg("bob", "b, deleted", { text: "" });
    c.addMessages([a, gone], gone.cursor);
    // Receipts on: bob gets one for "a"; the newest shown, deleted, goes to alice herself.
    c.receipts.markRead([a, { ...gone, deleted: true }]);
    const batches = c.receipts.batches();
    assert.deepEqual(
      batches.filter((b) => b.status === "read").map((b) => [b.author, b.ids]),
      [
        ["bob", [a.id]],
        ["alice", [gone.id]],
      ],
    );
    // Receipts off: one event, to alice alone.
    const off = aliceCache();
    off.receipts.readReceipts = false;
    const x = msg("bob", "x");
    off.addMessages([x], x.cursor);
    off.receipts.markRead([x]);
    assert.deepEqual(
      off.receipts
        .batches()
        .filter((b) => b.status === "read")
        .map((b) => [b.author, b.ids]),
      [["alice", [x.id]]],
    );
    // bob is still told "delivered": the receipt to alice herself says nothing to him.
    const delivered = () =>
      off.receipts
        .batches()
        .filter((b) => b.status === "delivered")
        .map((b) => [b.author, b.ids]);
    assert.deepEqual(delivered(), [["bob", [x.id]]]);
    for (const b of off.receipts.batches()) if (b.author === "alice") off.receipts.sent(b);
    assert.deepEqual(delivered(), [["bob", [x.id]]], "sending the one to alice keeps bob's");
    // Own messages only, or nothing newer than the mark: nothing to tell.
    const mine = msg("alice", "mine");
    off.addMessages([mine], mine.cursor);
    for (const b of off.receipts.batches()) off.receipts.sent(b);
    off.receipts.markRead([x, mine]);
    assert.equal(off.receipts.batches().filter((b) => b.status === "read").length, 0);
  });
});

function conversationsWithUnreadAfter(c: Cache, m: ChatMessage): number | undefined {
  // The TUI counts from its own mark (here: just before `m`) or the shared one, whichever is later.
  c.setState("tui.seen", String(BigInt(m.cursor) - 1n));
  return conversationsWithUnread(c, "alice").find((x) => x.conv === m.conv)?.unread;
}
