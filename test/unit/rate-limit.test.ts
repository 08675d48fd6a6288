import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BalancerRateLimiter,
  DEFAULT_RATE_LIMITS,
  frameFacts,
  PARSED_FRAME_BYTES,
  rateLimitedReply,
  rateLimitsFromEnv,
  TokenBuckets,
} from "../../balancer/rate-limit.js";

const frame = (o: object) => Buffer.from(JSON.stringify({ v: 1, id: "r1", ...o }));

describe("token buckets", () => {
  it("let a burst through, refuse the next with the wait for one token, refill at the rate", () => {
    const b = new TokenBuckets({ rate: 10, burst: 3 });
    for (let i = 0; i < 3; i++) assert.deepEqual(b.take("a", 1000), { ok: true });
    assert.deepEqual(b.take("a", 1000), { ok: false, retryAfterMs: 100 });
    assert.deepEqual(b.take("b", 1000), { ok: true }, "another key has its own bucket");
    assert.deepEqual(b.take("a", 1050), { ok: false, retryAfterMs: 50 });
    assert.deepEqual(b.take("a", 1100), { ok: true });
    // A long pause refills to the burst, not beyond it.
    for (let i = 0; i < 3; i++) assert.equal(b.take("a", 60_000).ok, true);
    assert.equal(b.take("a", 60_000).ok, false);
  });

  it("keep at most maxKeys buckets, forgetting the one idle longest", () => {
    const b = new TokenBuckets({ rate: 1, burst: 1 }, 2);
    b.take("x", 0);
    b.take("y", 1);
    b.take("x", 2);
    b.take("z", 3);
    assert.equal(b.size, 2);
    assert.equal(b.take("x", 4).ok, false, "x was used recently and kept its empty bucket");
    assert.equal(b.take("y", 4).ok, true, "y was forgotten, so it starts full");
  });
});

describe("frame facts", () => {
  it("read type and session of a parsed frame, as JSON.parse does (the last duplicate key wins)", () => {
    assert.deepEqual(frameFacts(frame({ type: "send", session: "s.1.m", body: {} })), {
      type: "send",
      session: "s.1.m",
    });
    const dup = Buffer.from('{"v":1,"id":"x","type":"ping","type":"register","body":{}}');
    assert.equal(frameFacts(dup).type, "register");
    assert.deepEqual(frameFacts(Buffer.from("not json")), { type: null, session: null });
  });

  it("read the front of a client's frame without parsing, and never read there what JSON.parse would not", () => {
    const truth = (f: string) => {
      const o = JSON.parse(f) as { type?: unknown; session?: unknown };
      return {
        type: typeof o.type === "string" ? o.type : null,
        session: typeof o.session === "string" ? o.session : null,
      };
    };
    const cases = [
      '{"v":1,"id":"r1","type":"send","session":"s2.a.b","body":{"envelope":{}}}',
      '{"v":1,"id":"r1","type":"register","body":{"name":"alice"}}',
      // Hiding the real session or type behind a decoy at the front: a later duplicate key wins in JSON.parse.
      '{"v":1,"id":"r1","type":"send","session":"decoy","body":{},"session":"real"}',
      '{"v":1,"id":"r1","type":"ping","session":"s","body":{},"type":"register"}',
      '{"v":1,"id":"r1","type":"send","session":"decoy","body":{},"session" : "real"}',
      '{"v":1,"id":"r1","type":"send","session":"decoy","body":{},"sess\\u0069on":"real"}',
      '{"v":1,"id":"r1","type":"ping","body":{},"typ\\u0065":"register"}',
      '{"v":1,"id":"r1","type":"send","session":"s","body":{"to":"session"}}',
    ];
    for (const c of cases) assert.deepEqual(frameFacts(Buffer.from(c)), truth(c), c);
    // Positive control: the decoy cases do put the decoy at the front, where a careless scan would read it.
    assert.equal(truth(cases[2]!).session, "real");
    assert.equal(truth(cases[5]!).session, "real");
    assert.equal(truth(cases[6]!).type, "register");
  });

  it("scan only the front of a large frame", () => {
    const big = frame({ type: "send", session: "tok", body: { pad: "x".repeat(PARSED_FRAME_BYTES) } });
    assert.deepEqual(frameFacts(big), { type: "send", session: "tok" }, "a client's front is read whole");
    const escaped = frame({
      type: "send",
      session: "tok",
      body: { pad: `\\${"x".repeat(PARSED_FRAME_BYTES)}` },
    });
    assert.deepEqual(
      frameFacts(escaped),
      { type: null, session: "tok" },
      "otherwise only the session is scanned",
    );
  });
});

describe("balancer rate limiter", () => {
  const limits = {
    perConnection: { rate: 10, burst: 5 },
    bytesPerConnection: { rate: 1000, burst: 3000 },
    perSession: { rate: 10, burst: 8 },
    registrations: { rate: 1 / 60, burst: 2 },
  };

  it("limits each connection on its own", () => {
    const l = new BalancerRateLimiter(limits);
    const f = frame({ type: "ping", body: {} });
    for (let i = 0; i < 5; i++) assert.equal(l.admit("c1", f, 0).ok, true);
    const v = l.admit("c1", f, 0);
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.limit, "perConnection");
    assert.equal(l.admit("c2", f, 0).ok, true, "a bystander connection is not affected");
  });

  it("limits one session across connections", () => {
    const l = new BalancerRateLimiter(limits);
    const f = frame({ type: "sync", session: "alice.1.mac", body: {} });
    const verdicts = Array.from({ length: 10 }, (_, i) => l.admit(`c${i}`, f, 0));
    assert.equal(verdicts.filter((v) => v.ok).length, 8);
    const last = verdicts.at(-1)!;
    assert.equal(last.ok === false && last.limit, "perSession");
    assert.equal(l.admit("c99", frame({ type: "sync", session: "bob.1.mac", body: {} }), 0).ok, true);
  });

  it("limits the bytes of one connection", () => {
    const l = new BalancerRateLimiter(limits);
    const big = Buffer.alloc(1400, 32);
    assert.equal(l.admit("c1", big, 0).ok, true);
    assert.equal(l.admit("c1", big, 0).ok, true);
    const v = l.admit("c1", big, 0);
    assert.equal(v.ok === false && v.limit, "bytesPerConnection");
    assert.equal(!v.ok && v.retryAfterMs, 1200, "200 bytes left: 1200 more at 1000 a second");
  });

  it("limits registrations per source, not other requests", () => {
    const l = new BalancerRateLimiter(limits);
    const reg = frame({ type: "register", body: {} });
    assert.equal(l.admit("c1", reg, 0).ok, true);
    assert.equal(l.admit("c1", reg, 100).ok, true);
    const v = l.admit("c1", reg, 200);
    assert.equal(v.ok === false && v.limit, "registrations");
    assert.equal(!v.ok && v.retryAfterMs > 50_000, true, "a registration a minute: wait most of it");
    assert.equal(l.admit("c1", frame({ type: "ping", body: {} }), 300).ok, true);
  });

  it("answers a flood's refusals a few a second, not each one", () => {
    const l = new BalancerRateLimiter(limits);
    const f = frame({ type: "ping", body: {} });
    const verdicts = Array.from({ length: 1000 }, () => l.admit("c1", f, 0));
    const answered = verdicts.filter((v) => !v.ok && v.answer).length;
    assert.equal(answered, 50, "the first 50 refusals are answered, the rest dropped");
    const later = Array.from({ length: 6 }, () => l.admit("c1", f, 1000)).at(-1)!;
    assert.equal(!later.ok && later.answer, true, "a second later, refusals are answered again");
  });

  it("answers rate_limited with the request id and a retry-after", () => {
    const reply = JSON.parse(
      rateLimitedReply("r7", {
        ok: false,
        limit: "perConnection",
        retryAfterMs: 120,
        answer: true,
      }).toString(),
    );
    assert.equal(reply.id, "r7");
    assert.equal(reply.ok, false);
    assert.equal(reply.error.code, "rate_limited");
    assert.equal(reply.error.retryAfterMs, 120);
  });
});

describe("rate limits from the environment", () => {
  it("default when unset, read RATE/s[:BURST] and RATE/min[:BURST], refuse nonsense", () => {
    assert.deepEqual(rateLimitsFromEnv({}), DEFAULT_RATE_LIMITS);
    const l = rateLimitsFromEnv({ ZMQCHAT_RATE_CONNECTION: "5/s:7", ZMQCHAT_RATE_REGISTRATIONS: "30/min" });
    assert.deepEqual(l.perConnection, { rate: 5, burst: 7 });
    assert.deepEqual(l.registrations, { rate: 0.5, burst: 30 });
    assert.throws(() => rateLimitsFromEnv({ ZMQCHAT_RATE_SESSION: "fast" }), /RATE\/s/);
    assert.throws(() => rateLimitsFromEnv({ ZMQCHAT_RATE_SESSION: "0/s" }), /RATE > 0/);
  });
});
