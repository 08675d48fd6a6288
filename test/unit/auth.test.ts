import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { describe, it } from "node:test";
import { loginChallengeBytes } from "../../core/crypto/login.js";
import { Authority } from "../../server/auth.js";

const secret = Buffer.from("unit-test-secret-0123456789abcdef");

function signer() {
  const k = generateKeyPairSync("ed25519");
  return {
    pub: k.publicKey.export({ format: "jwk" }).x!,
    sign: (b: Buffer) => sign(null, b, k.privateKey).toString("base64url"),
  };
}

describe("Authority: stateless challenges, sessions and topics", () => {
  it("logs in with a signed challenge; any server with the secret accepts the session", () => {
    const a = new Authority(secret);
    const b = new Authority(secret);
    const alice = signer();
    const ch = a.challenge("alice");
    const s = a.login(
      { name: "alice", ...ch, sig: alice.sign(loginChallengeBytes("alice", ch.nonce, ch.expires)) },
      alice.pub,
    );
    assert.equal(b.check(s.session), "alice");
    assert.match(s.topic, /^[0-9a-f]{64}$/);
    assert.equal(s.topic, b.topic("alice"));
    assert.notEqual(s.topic, new Authority(Buffer.from("another-cluster-secret-0123456")).topic("alice"));
  });

  it("refuses a wrong signature, a challenge for another name, and a forged challenge", () => {
    const a = new Authority(secret);
    const alice = signer();
    const mallory = signer();
    const ch = a.challenge("alice");
    assert.throws(
      () =>
        a.login(
          { name: "alice", ...ch, sig: mallory.sign(loginChallengeBytes("alice", ch.nonce, ch.expires)) },
          alice.pub,
        ),
      { code: "unauthorized", message: /signature/ },
    );
    assert.throws(
      () =>
        a.login(
          { name: "bob", ...ch, sig: alice.sign(loginChallengeBytes("bob", ch.nonce, ch.expires)) },
          alice.pub,
        ),
      { code: "unauthorized", message: /not issued/ },
    );
    assert.throws(
      () =>
        a.login(
          {
            name: "alice",
            ...ch,
            expires: ch.expires + 3_600_000,
            sig: alice.sign(loginChallengeBytes("alice", ch.nonce, ch.expires + 3_600_000)),
          },
          alice.pub,
        ),
      { code: "unauthorized" },
    );
  });

  it("refuses a replayed login once its challenge has expired", () => {
    let now = 1_000_000;
    const a = new Authority(secret, { now: () => now });
    const alice = signer();
    const ch = a.challenge("alice");
    const login = {
      name: "alice",
      ...ch,
      sig: alice.sign(loginChallengeBytes("alice", ch.nonce, ch.expires)),
    };
    a.login(login, alice.pub);
    now += 31_000;
    assert.throws(() => a.login(login, alice.pub), { code: "unauthorized", message: /expired/ });
  });

  it("refuses forged, altered and expired sessions", () => {
    let now = 1_000_000;
    const a = new Authority(secret, { now: () => now });
    const alice = signer();
    const ch = a.challenge("alice");
    const { session } = a.login(
      { name: "alice", ...ch, sig: alice.sign(loginChallengeBytes("alice", ch.nonce, ch.expires)) },
      alice.pub,
    );
    const [tag, payload, mac] = session.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const forge = (c: Record<string, unknown>) =>
      `${tag}.${Buffer.from(JSON.stringify(c)).toString("base64url")}.${mac}`;
    assert.equal(a.check(forge(claims)), "alice", "positive control: the same claims re-encoded pass");
    assert.throws(() => a.check(forge({ ...claims, u: "bob" })), { code: "unauthorized" });
    assert.throws(() => a.check(forge({ ...claims, e: Number(claims.e) + 1 })), { code: "unauthorized" });
    assert.throws(() => a.check("s2.e30.AAAA"), { code: "unauthorized" });
    assert.throws(() => a.check("alice.999999999999999.AAAA"), { code: "unauthorized" }, "the old format");
    assert.throws(() => a.check(undefined), { code: "unauthorized" });
    assert.throws(() => new Authority(Buffer.from("other-secret-0123456789abcdef")).check(session), {
      code: "unauthorized",
    });
    now += 11 * 60_000;
    assert.throws(() => a.check(session), { code: "unauthorized", message: /expired/ });
  });

  it("delivery topics expire with their period; both are fed during the grace time", () => {
    const day = 86_400_000;
    let now = 100 * day + 5 * 3_600_000;
    const a = new Authority(secret, { now: () => now });
    const alice = signer();
    const ch = a.challenge("alice");
    const s = a.login(
      { name: "alice", ...ch, sig: alice.sign(loginChallengeBytes("alice", ch.nonce, ch.expires)) },
      alice.pub,
    );
    assert.equal(s.topicExpires, new Date(101 * day).toISOString());
    assert.deepEqual(a.deliveryTopics("alice"), [s.topic]);
    assert.deepEqual(a.deliveryTopics("alice", ["-"], true), [s.batchTopic]);
    assert.match(s.batchTopic, /^[0-9a-f]{64}$/, "a batch topic passes the balancer's check");
    assert.notEqual(s.batchTopic, s.topic, "the batch topic is a topic of its own");
    now = 101 * day + 60_000;
    const next = a.topic("alice");
    const nextBatched = a.topic("alice", undefined, "-", true);
    assert.notEqual(next, s.topic, "a new period, a new topic");
    assert.notEqual(nextBatched, s.batchTopic, "a new period, a new batch topic");
    assert.deepEqual(
      a.deliveryTopics("alice"),
      [next, s.topic],
      "the old topic is still fed while clients move",
    );
    assert.deepEqual(a.deliveryTopics("alice", ["-"], true), [nextBatched, s.batchTopic]);
    now = 101 * day + 3_600_000;
    assert.deepEqual(a.deliveryTopics("alice"), [next], "then no more");
    assert.deepEqual(a.deliveryTopics("alice", ["-"], true), [nextBatched]);
    assert.notEqual(a.topic("bob"), next);
  });
});
