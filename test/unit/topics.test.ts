import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseTopicKey, taggedTopic, topicTagged, topicTagKey } from "../../core/protocol/topics.js";
import { Authority } from "../../server/auth.js";
import { runCli } from "../helpers/cli.js";

const SECRET = Buffer.from("unit-test-cluster-secret-0123456789");

describe("delivery topics a balancer can check (core/protocol/topics.ts)", () => {
  const key = topicTagKey(SECRET);

  it("passes the topics the servers issue, plain and batched, and nothing made up", () => {
    const auth = new Authority(SECRET);
    for (const t of [
      auth.topic("bob"),
      auth.topic("bob", undefined, "d1"),
      auth.topic("bob", undefined, "d1", true),
    ]) {
      assert.match(t, /^[0-9a-f]{64}$/);
      assert.ok(topicTagged(key, t), t);
      assert.ok(topicTagged(key, Buffer.from(t, "latin1")), "as a subscription's bytes");
    }
    // Positive control of the refusals below: the check is not "always false".
    assert.ok(topicTagged(key, taggedTopic(key, randomBytes(16))));
    for (let i = 0; i < 1000; i++) assert.ok(!topicTagged(key, randomBytes(32).toString("hex")));
    // The topics logins gave before tagged topics: the whole HMAC, which no balancer can check.
    const legacy = createHmac("sha256", SECRET).update("topic-device\nbob\nd1\n1").digest("hex");
    assert.ok(!topicTagged(key, legacy));
    assert.equal(
      auth.topic("bob", 1, "d1", false, true),
      legacy,
      "legacy topics are still made for publishing",
    );
    // Another cluster's key, a flipped bit, the wrong length or case.
    const good = auth.topic("bob");
    assert.ok(!topicTagged(topicTagKey(Buffer.from("another-cluster-secret-0123456789")), good));
    const flipped = (Number.parseInt(good[63]!, 16) ^ 1).toString(16);
    assert.ok(!topicTagged(key, good.slice(0, 63) + flipped));
    assert.ok(!topicTagged(key, good.slice(0, 62)));
    assert.ok(!topicTagged(key, good.toUpperCase()));
  });

  it("zmqchat topic-key prints the key of the cluster secret; without a secret, or with a bad key file for the balancer, exit 2 and say why", async () => {
    const home = mkdtempSync(join(tmpdir(), "zmqchat-topic-key-"));
    try {
      const printed = await runCli(["topic-key"], {
        home,
        env: { ZMQCHAT_CLUSTER_SECRET: SECRET.toString() },
      });
      assert.equal(printed.code, 0, printed.stderr);
      assert.equal(printed.stdout.trim(), key.toString("hex"));
      const none = await runCli(["topic-key"], { home, env: { ZMQCHAT_CLUSTER_SECRET: "" } });
      assert.equal(none.code, 2);
      assert.match(none.stderr, /no cluster secret/);
      // The cluster secret itself is not a topic key: the balancer refuses to start with it.
      const wrong = join(home, "secret-not-key");
      writeFileSync(wrong, SECRET.toString());
      const refused = await runCli(["balancer", "--insecure", "--port", "0", "--topic-key-file", wrong], {
        home,
      });
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /does not hold a topic key/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("reads a key file's 64 hex characters and nothing else", () => {
    assert.deepEqual(parseTopicKey(`${key.toString("hex")}\n`), key);
    assert.equal(parseTopicKey(key.toString("hex").slice(1)), null);
    assert.equal(parseTopicKey(SECRET.toString()), null);
  });
});
