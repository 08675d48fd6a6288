import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Tickets } from "../../balancer/tickets.js";

describe("request tickets: a reply counts once, from the server that was asked", () => {
  it("routes the asked server's first reply to the client and refuses a second", () => {
    const t = new Tickets("aaaa", 60_000);
    const ticket = t.issue("server-1", "client-peer", 0);
    assert.deepEqual(t.reply("server-1", ticket), { kind: "ok", peer: "client-peer" });
    assert.deepEqual(t.reply("server-1", ticket), { kind: "unsolicited" });
  });

  it("refuses another server's answer and a made-up ticket, and leaves the real ticket open", () => {
    const t = new Tickets("aaaa", 60_000);
    const ticket = t.issue("server-1", "client-peer", 0);
    assert.deepEqual(t.reply("server-2", ticket), { kind: "unsolicited" });
    assert.deepEqual(t.reply("server-2", "aaaa.zz"), { kind: "unsolicited" });
    assert.deepEqual(t.reply("server-2", ""), { kind: "unsolicited" });
    assert.deepEqual(t.reply("server-1", ticket), { kind: "ok", peer: "client-peer" });
  });

  it("tells a ticket of an earlier balancer process apart, and forgets tickets after the TTL", () => {
    const t = new Tickets("bbbb", 1000);
    assert.deepEqual(t.reply("server-1", "aaaa.0"), { kind: "stale" });
    const old = t.issue("server-1", "p", 0);
    const other = t.issue("server-1", "r", 0);
    const fresh = t.issue("server-1", "q", 900);
    t.expire(1500);
    assert.equal(t.size, 1);
    // After the TTL the asked server's answer is late (discarded, not held against it), once;
    assert.deepEqual(t.reply("server-1", old), { kind: "late" });
    assert.deepEqual(t.reply("server-1", old), { kind: "unsolicited" });
    // another server naming it is still a liar;
    assert.deepEqual(t.reply("server-2", other), { kind: "unsolicited" });
    assert.deepEqual(t.reply("server-1", fresh), { kind: "ok", peer: "q" });
    // and after twice the TTL it is forgotten.
    t.expire(2500);
    assert.deepEqual(t.reply("server-1", other), { kind: "unsolicited" });
  });

  it("cancel takes a ticket back (undeliverable request) and forget drops a server's tickets", () => {
    const t = new Tickets("cccc", 60_000);
    const a = t.issue("s1", "p", 0);
    const b = t.issue("s2", "q", 0);
    assert.deepEqual(t.cancel(a), { worker: "s1", peer: "p", at: 0 });
    assert.equal(t.cancel(a), null);
    t.forget("s2");
    assert.deepEqual(t.reply("s2", b), { kind: "unsolicited" });
  });
});
