import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AFFINITY_SLACK, AFFINITY_STALL_MS, Dispatcher, MAX_AFFINITIES } from "../../balancer/dispatch.js";

function twoServers(): Dispatcher {
  const d = new Dispatcher(10_000);
  d.ready("s1", "v", 0);
  d.ready("s2", "v", 0);
  return d;
}

describe("dispatch: requests packed on a lead server, spread past its slack, a client's overflow kept together", () => {
  it("packs requests on one lead server while it is at most AFFINITY_SLACK busier than the least busy, then spreads", () => {
    const d = twoServers();
    const lead = d.pick()!;
    for (let i = 0; i < AFFINITY_SLACK; i++) assert.equal(d.pick(), lead, `request ${i + 2}`);
    // The lead has AFFINITY_SLACK + 1 in flight, the other none: the next goes to the other
    // (the control: the packing has a bound, so a saturated lead does not take everything).
    const other = d.pick()!;
    assert.notEqual(other, lead);
    // Once the lead answers, requests go back to it.
    for (let i = 0; i < AFFINITY_SLACK; i++) d.done(lead);
    assert.equal(d.pick(), lead);
  });

  it("different clients' requests meet on the lead (control: one more than the slack goes elsewhere)", () => {
    const d = twoServers();
    const picks = ["alice", "bob", "carol", "alice", "bob", "carol"].map((c) => d.pick(c)!);
    assert.equal(new Set(picks).size, 1, `six requests of three clients went to ${picks.join(",")}`);
    assert.notEqual(d.pick("dave"), picks[0], "the seventh, with the lead 6 busier, goes elsewhere");
  });

  it("keeps a client's overflow on the server it moved to while the lead is saturated, and goes back to the lead after", () => {
    const d = twoServers();
    d.ready("s3", "v", 0);
    const lead = d.pick("bob")!;
    for (let i = 0; i < AFFINITY_SLACK; i++) d.pick("bob");
    const moved = d.pick("alice")!;
    assert.notEqual(moved, lead);
    // The lead is 6 busier than the idle third server: alice's next requests stay on her server
    // (within the slack of the least busy) rather than spreading over both others.
    for (let i = 0; i < AFFINITY_SLACK - 1; i++)
      assert.equal(d.pick("alice"), moved, `alice's request ${i + 2}`);
    // The control: a client without a server of its own goes to the least busy, the third.
    const third = d.pick("carol")!;
    assert.ok(third !== lead && third !== moved, `carol went to ${third}`);
    // The lead answers everything: alice's next request goes back to it.
    for (let i = 0; i < AFFINITY_SLACK + 1; i++) d.done(lead);
    assert.equal(d.pick("alice"), lead);
  });

  it("moves a client off a server that drains or is gone", () => {
    const d = twoServers();
    const own = d.pick("alice")!;
    d.done(own);
    d.drain(own);
    const next = d.pick("alice")!;
    assert.notEqual(next, own);
    d.done(next);
    d.remove(next);
    d.ready("s3", "v", 0);
    const third = d.pick("alice")!;
    assert.ok(third !== next && third !== own, `went to ${third}`);
  });

  it("moves a client off a server that holds its requests and has said nothing for AFFINITY_STALL_MS (SIGSTOP)", () => {
    const d = twoServers();
    const own = d.pick("alice", 0)!;
    // Answers keep the server fresh: still alice's while within the stall time.
    d.seen(own, 1000);
    assert.equal(d.pick("alice", 1000 + AFFINITY_STALL_MS), own);
    // Silent past it with requests in flight: the retry goes to the other server.
    const next = d.pick("alice", 1001 + AFFINITY_STALL_MS)!;
    assert.notEqual(next, own);
  });

  it("forgets a client on request, and remembers at most MAX_AFFINITIES clients", () => {
    const d = twoServers();
    const own = d.pick("alice")!;
    d.done(own);
    const known = () => (d as unknown as { affinity: Map<string, string> }).affinity.has("alice");
    assert.ok(known(), "alice's server is remembered after a request");
    d.forget("alice");
    assert.ok(!known(), "and forgotten on request");

    const many = twoServers();
    for (let i = 0; i <= MAX_AFFINITIES; i++) {
      const s = many.pick(`c${i}`)!;
      many.done(s);
    }
    const size = (many as unknown as { affinity: Map<string, string> }).affinity.size;
    assert.equal(size, MAX_AFFINITIES);
  });
});
