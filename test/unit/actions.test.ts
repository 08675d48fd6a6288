import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { emojiProblem, inMailboxOrder, readExtra } from "../../core/client/actions.js";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import type { MessageAction } from "../../core/client/message.js";
import { searchMessages } from "../../core/client/search.js";
import { verifyHistory } from "../../core/client/verify.js";
import { Sealer } from "../../core/crypto/envelope.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { chatMessage } from "../helpers/chat-message.js";

let cursor = 100;
function msg(from: string, text: string, more: Partial<ChatMessage> = {}): ChatMessage {
  cursor++;
  return chatMessage(cursor, {
    conv: "g:team",
    from,
    to: null,
    group: "team",
    text,
    sentAt: new Date(Date.now() + cursor).toISOString(),
    replyTo: null,
    ...more,
  });
}
const action = (from: string, a: MessageAction, text = "") => msg(from, text, { action: a });

describe("actions in the cache (order, exactly-once, authorship)", () => {
  it("applies an edit, a delete and reactions whatever order they arrive in, and a replay changes nothing", () => {
    const target = msg("alice", "lunch at 12?");
    const other = msg("alice", "secret plan");
    const edit1 = action("alice", { kind: "edit", target: target.id }, "lunch at 1?");
    const edit2 = action("alice", { kind: "edit", target: target.id }, "lunch at 2?");
    const del = action("alice", { kind: "delete", target: other.id });
    const r1 = action("bob", { kind: "react", target: target.id, emoji: "👍", remove: false });
    const r2 = action("carol", { kind: "react", target: target.id, emoji: "👍", remove: false });
    const r3 = action("bob", { kind: "react", target: target.id, emoji: "🎉", remove: false });
    const r3off = action("bob", { kind: "react", target: target.id, emoji: "🎉", remove: true });
    const all = [target, other, edit1, edit2, del, r1, r2, r3, r3off];
    const expect = (cache: Cache) => {
      const [t, o] = cache.history("g:team", 10);
      assert.equal(t!.text, "lunch at 2?");
      assert.equal(t!.edited, edit2.sentAt);
      assert.deepEqual(t!.reactions, { "👍": ["bob", "carol"] });
      assert.equal(o!.deleted, true);
      assert.equal(o!.text, "");
      assert.equal(cache.history("g:team", 10).length, 2, "actions are not messages");
    };
    const inOrder = new Cache(":memory:");
    inOrder.addMessages(all, all.at(-1)!.cursor);
    expect(inOrder);
    // Recovery can hand the actions over before their targets: same result.
    const reversed = new Cache(":memory:");
    for (const m of [...all].reverse()) reversed.addMessages([m], null);
    expect(reversed);
    // A replay of every event (same ids) is idempotent.
    reversed.addMessages(all, null);
    reversed.addMessages([edit1], null);
    expect(reversed);
    // The deleted text is gone from the cache's search index too (positive control: the other is found).
    assert.equal(searchMessages(reversed, "secret").length, 0);
    assert.equal(searchMessages(reversed, "lunch").length, 1);
    // An edited message is found by its latest words, not by the words its author replaced.
    assert.equal(searchMessages(reversed, "12").length, 0);
    assert.equal(searchMessages(reversed, "2").length, 1);
    assert.equal(searchMessages(inOrder, "12").length, 0);
  });

  it("ignores an edit or delete by anyone but the author, and verify-history flags it", () => {
    const cache = new Cache(":memory:");
    const target = msg("alice", "the real text");
    const forged = action("mallory", { kind: "edit", target: target.id }, "forged text");
    const forgedDel = action("mallory", { kind: "delete", target: target.id });
    cache.addMessages([target, forged, forgedDel], forgedDel.cursor);
    const [t] = cache.history("g:team", 10);
    assert.equal(t!.text, "the real text");
    assert.equal(t!.edited, null);
    assert.equal(t!.deleted, false);
    const report = verifyHistory(
      "g:team",
      inMailboxOrder(cache.history("g:team", 100), cache.actions.asMessages("g:team")),
    );
    assert.deepEqual(
      report.unverified.map((u) => u.id),
      [forged.id, forgedDel.id],
    );
    assert.match(report.unverified[0]!.problem, /mallory signed a edit .* by alice: only its author may/);
    // Positive control: the author's own edit counts and is not flagged.
    const own = action("alice", { kind: "edit", target: target.id }, "fixed");
    cache.addMessages([own], own.cursor);
    assert.equal(cache.history("g:team", 10)[0]!.text, "fixed");
    const again = verifyHistory(
      "g:team",
      inMailboxOrder(cache.history("g:team", 100), cache.actions.asMessages("g:team")),
    );
    assert.equal(
      again.unverified.some((u) => u.id === own.id),
      false,
    );
  });

  it("an edit sent in another conversation does not apply and is flagged", () => {
    const cache = new Cache(":memory:");
    const target = msg("alice", "group text");
    const elsewhere = action("alice", { kind: "edit", target: target.id }, "changed in a 1:1");
    elsewhere.conv = "u:alice";
    cache.addMessages([target, elsewhere], elsewhere.cursor);
    assert.equal(cache.history("g:team", 10)[0]!.text, "group text");
    assert.match(cache.actions.asMessages("u:alice")[0]!.problem ?? "", /another conversation/);
  });

  it("keeps the reply reference of a message", () => {
    const cache = new Cache(":memory:");
    const first = msg("alice", "q");
    const reply = msg("bob", "a", { replyTo: first.id });
    cache.addMessages([first, reply], reply.cursor);
    const [f, r] = cache.history("g:team", 10);
    assert.equal(f!.replyTo, null);
    assert.equal(r!.replyTo, first.id);
  });

  it("reads the sealed extra strictly and bounds reactions", () => {
    const id = uuidv7();
    assert.deepEqual(readExtra(undefined), { ok: true, extra: {} });
    assert.deepEqual(readExtra({ replyTo: id }), { ok: true, extra: { replyTo: id } });
    assert.equal(readExtra({ replyTo: "x" }).ok, false);
    assert.equal(readExtra({ action: { kind: "edit", target: id, more: 1 } }).ok, false);
    assert.equal(
      readExtra({ action: { kind: "react", target: id, emoji: "x".repeat(40), remove: false } }).ok,
      false,
    );
    assert.equal(readExtra([1]).ok, false);
    assert.equal(emojiProblem("👍"), null);
    assert.equal(emojiProblem("👨‍👩‍👧‍👦"), null);
    assert.notEqual(emojiProblem(""), null);
    assert.notEqual(emojiProblem("a b"), null);
    assert.notEqual(emojiProblem("\u001b[2J"), null);
    assert.notEqual(emojiProblem("🎉".repeat(20)), null);
  });

  it("a plain message seals exactly the old content ({text} only), so older clients open it; extra rides inside the seal", () => {
    const alice = generateIdentity("alice");
    const bob = generateIdentity("bob");
    const sa = new Sealer(alice);
    const sb = new Sealer(bob);
    const base = {
      id: uuidv7(),
      device: "d",
      to: "bob",
      group: null,
      seq: 1,
      sentAt: new Date().toISOString(),
      recipients: [{ name: "bob", keys: bob.publicKeys }],
    };
    const plain = sb.open(sa.seal({ ...base, text: "hi" }), alice.publicKeys);
    assert.deepEqual(plain, { ok: true, text: "hi" });
    const target = uuidv7();
    const env = sa.seal({ ...base, id: uuidv7(), text: "re", extra: { replyTo: target } });
    assert.deepEqual(sb.open(env, alice.publicKeys), { ok: true, text: "re", extra: { replyTo: target } });
    assert.equal(
      JSON.stringify(env).includes(target),
      false,
      "the reply reference is not visible to the server",
    );
  });

  it("the outbox keeps a queued reply's reference, also in a cache made before replies existed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-actions-"));
    const path = join(dir, "cache.db");
    // The outbox as it was before this column existed.
    const old = new Database(path);
    old.exec(
      "CREATE TABLE outbox (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, conv TEXT NOT NULL, target_user TEXT, target_group TEXT, text TEXT NOT NULL, seq INTEGER NOT NULL, sent_at TEXT NOT NULL, last_error TEXT)",
    );
    old
      .prepare(
        "INSERT INTO outbox (id, conv, target_user, text, seq, sent_at) VALUES ('a', 'u:bob', 'bob', 'old', 1, '2026-01-01T00:00:00.000Z')",
      )
      .run();
    old.close();
    const cache = new Cache(path);
    try {
      const replyTo = uuidv7();
      cache.enqueue({
        id: uuidv7(),
        conv: "u:bob",
        target: { user: "bob" },
        text: "queued reply",
        seq: 2,
        sentAt: new Date().toISOString(),
        lastError: null,
        extra: { replyTo },
      });
      const [first, second] = cache.outbox();
      assert.equal(first!.text, "old");
      assert.equal(first!.extra, undefined);
      assert.deepEqual(second!.extra, { replyTo });
    } finally {
      await cache.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
