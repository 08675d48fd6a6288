import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache } from "../../core/client/cache.js";
import { markMentions, mentionAlert, mentionsIn, notifies } from "../../core/client/mentions.js";
import type { ChatMessage } from "../../core/client/message.js";

const msg = (text: string, from = "alice", extra: Partial<ChatMessage> = {}): ChatMessage => ({
  id: "0193a000-0000-7000-8000-000000000001",
  conv: "g:team",
  from,
  to: null,
  group: "team",
  text,
  sentAt: "2026-12-01T00:00:00.000Z",
  serverTime: "2026-12-01T00:00:00.000Z",
  cursor: "1",
  verified: true,
  problem: null,
  seq: 1,
  device: "0123456789abcdef",
  ...extra,
});

describe("mentions", () => {
  it("finds @name as a word, not inside an address or a longer word; a trailing dot ends the sentence", () => {
    assert.deepEqual(mentionsIn("@carol lunch? cc @bob."), ["carol", "bob"]);
    assert.deepEqual(mentionsIn("mail bob@example.org or x@carol"), []);
    assert.deepEqual(mentionsIn("(@dave) and @dave again, @e.f-g_h"), ["dave", "e.f-g_h"]);
    assert.deepEqual(mentionsIn("@Carol is not a name"), []);
  });

  it("marks only others' verified, not deleted messages that mention me; mute silences, never hides", () => {
    const [a, b, c, d] = markMentions(
      [
        msg("@carol lunch?"),
        msg("@carol note to self", "carol"),
        msg("@carol", "alice", { verified: false }),
        msg("", "alice", { deleted: true }),
      ],
      "carol",
    );
    assert.deepEqual([a!.mention, b!.mention, c!.mention, d!.mention], [true, false, false, false]);
    assert.equal(
      notifies(a!, () => false),
      true,
    );
    assert.equal(
      notifies(a!, (conv) => conv === "g:team"),
      false,
    );
  });

  it("the alert carries names only: nothing of the text reaches the terminal's control sequences", () => {
    const alert = mentionAlert(msg("@carol \u001b]9;evil\u0007 \u001b[2J"));
    assert.equal(alert, "\u0007\u001b]9;zmqchat: alice mentioned you in team\u0007");
  });

  it("the mute list lives in the profile's cache", async () => {
    const cache = new Cache(":memory:");
    assert.equal(cache.mutes.set("g:team", true), true);
    assert.equal(cache.mutes.set("g:team", true), false);
    assert.deepEqual([cache.mutes.muted("g:team"), cache.mutes.muted("u:bob")], [true, false]);
    cache.mutes.set("g:team", false);
    assert.deepEqual(cache.mutes.list(), []);
    await cache.close();
  });
});
