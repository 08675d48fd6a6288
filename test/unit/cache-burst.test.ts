import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import type { MessageAction } from "../../core/client/message.js";
import { searchMessages } from "../../core/client/search.js";
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

describe("a burst of messages stored at once (issue 15: action look-ups only where an action waits)", () => {
  it("applies an edit and a delete that come before their targets in the same burst, and in an earlier one", async () => {
    for (const split of [false, true]) {
      const cache = new Cache(":memory:");
      const edited = msg("alice", "lunch at 12?");
      const deleted = msg("alice", "secret plan");
      const plain = msg("alice", "just a message");
      const edit = action("alice", { kind: "edit", target: edited.id }, "lunch at 1?");
      const del = action("alice", { kind: "delete", target: deleted.id });
      const burst = [edit, del, plain, edited, deleted];
      if (split) {
        cache.addMessages(burst.slice(0, 2), null);
        cache.addMessages(burst.slice(2), null);
      } else cache.addMessages(burst, null);
      const shown = new Map(cache.history("g:team", 10).map((m) => [m.id, m]));
      assert.equal(shown.get(edited.id)!.text, "lunch at 1?", `split ${split}`);
      assert.equal(shown.get(deleted.id)!.deleted, true, `split ${split}`);
      // The stored text follows too (what the search index holds): the deleted words are gone,
      // the edited message is found by its new words only.
      assert.equal(searchMessages(cache, "secret").length, 0, `split ${split}`);
      assert.equal(searchMessages(cache, "12").length, 0, `split ${split}`);
      assert.equal(searchMessages(cache, "lunch").length, 1, `split ${split}`);
      // Positive control: the message no action names is stored and found as it came.
      assert.equal(shown.get(plain.id)!.text, "just a message");
      assert.equal(shown.get(plain.id)!.edited, null);
      assert.equal(searchMessages(cache, "just").length, 1);
      await cache.close();
    }
  });
});
