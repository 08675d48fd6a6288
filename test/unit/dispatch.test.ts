import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AFFINITY_SLACK, AFFINITY_STALL_MS, Dispatcher, MAX_AFFINITIES } from "../../balancer/dispatch.js";

function twoServers(): Dispatcher {
  const d = new Dispatcher(10_000);
  d.ready("s1", "v", 0);
  d.ready("s2", "v", 0);
  return d;
}

describe("dispatch: fewest in flight, and a client's requests stay with its server", () => {
  it("without a client, spreads requests over the servers with the fewest in flight", () => {
    const d = twoServers();
    const picks = [d.pick(), d.pick(), d.pick(), d.pick()];
    assert.deepEqual(
      [...picks].sort(),
      ["s1", "s1", "s2", "s2"],
      "four requests, nothing answered: two each",
    );
  });

  it("keeps one client's requests in flight on one server (the positive control: without the client they spread)", () => {
    const d = twoServers();
    const mine = [d.pick("alice"), d.pick("alice"), d.pick("alice"), d.pick("alice")];
    assert.equal(new Set(mine).size, 1, `alice's four requests went to ${mine.join(",")}`);
    const other = twoServers();
    const spread = [other.pick(), other.pick(), other.pick(), other.pick()];
    assert.equal(new Set(spread).size, 2);
  });

  it("gives a new client the least busy server", () => {
    const d = twoServers();
    const a = d.pick("alice")!;
    d.pick("alice");
    const b = d.pick("bob")!;
    assert.notEqual(b, a, "bob's first request goes to the server alice is not loading");
  });

  it("moves a client whose server is more than AFFINITY_SLACK busier than the least busy", () => {
    const d = twoServers();
    const own = d.pick("alice")!;
    for (let i = 0; i < AFFINITY_SLACK; i++) assert.equal(d.pick("alice"), own);
    // own has AFFINITY_SLACK + 1 in flight, the other none: the next one moves, and stays moved.
    const moved = d.pick("alice")!;
    assert.notEqual(moved, own);
    for (let i = 0; i < AFFINITY_SLACK; i++) d.done(own);
    assert.equal(d.pick("alice"), moved);
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
    d.forget("alice");
    // With alice forgotten, her next request goes wherever the round-robin turn points: over
    // four tries with nothing in flight, both servers are picked.
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const s = d.pick("alice")!;
      seen.add(s);
      d.done(s);
      d.forget("alice");
    }
    assert.equal(seen.size, 2);

    const many = twoServers();
    for (let i = 0; i <= MAX_AFFINITIES; i++) {
      const s = many.pick(`c${i}`)!;
      many.done(s);
    }
    const size = (many as unknown as { affinity: Map<string, string> }).affinity.size;
    assert.equal(size, MAX_AFFINITIES);
  });
});
