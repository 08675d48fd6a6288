import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import {
  deviceKeyClaim,
  deviceKeyTrusted,
  linkKeys,
  newLinkCode,
  openLink,
  openRekey,
  parseLinkCode,
  sealLink,
  sealRekey,
} from "../../core/client/devices.js";
import { generateIdentity, identitySecrets } from "../../core/crypto/keys.js";
import type { ZmqchatError } from "../../core/errors.js";
import { Authority, type SessionClaims } from "../../server/auth.js";
import { DeviceRegistry } from "../../server/devices.js";
import { SessionManager } from "../../server/sessions.js";
import { SqliteStore } from "../../server/store/sqlite.js";

const rawSecret = () => {
  const k = generateKeyPairSync("x25519").privateKey.export({ format: "jwk" });
  return Buffer.from(k.d!, "base64url");
};

describe("link codes", () => {
  it("are 16 Crockford base32 characters in four groups; typing them loosely reads the same code", () => {
    const code = newLinkCode();
    assert.match(code.text, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
    assert.deepEqual(parseLinkCode(code.text.toLowerCase().replace(/-/g, " ")), code);
    assert.equal(parseLinkCode("o0il-1111-2222-3333").slot, "0011");
    assert.throws(
      () => parseLinkCode("ABCD-EFGH"),
      (e: ZmqchatError) => e.code === "usage",
    );
    assert.throws(
      () => parseLinkCode("ABCD-EFGH-JKMN-PQRU"),
      (e: ZmqchatError) => e.code === "usage",
    );
  });

  it("seal the identity so that only the same code, for the same user, opens it", () => {
    const alice = generateIdentity("alice");
    const code = newLinkCode();
    const keys = linkKeys("alice", code);
    const payload = {
      name: "alice",
      device: "0123456789abcdef",
      deviceName: "laptop",
      secrets: identitySecrets(alice),
      previous: [],
    };
    const blob = sealLink(keys, code, payload);
    assert.ok(!blob.includes(payload.secrets.sign.d), "no secret in clear");
    assert.deepEqual(openLink(linkKeys("alice", code), "alice", code, blob), payload);
    // The server keeps only the verifier: a hash of the proof, not the proof.
    assert.notEqual(keys.verifier, keys.proof);

    const other = parseLinkCode(`${code.slot}-${code.secret.replace(/./, (c) => (c === "0" ? "1" : "0"))}`);
    assert.throws(
      () => openLink(linkKeys("alice", other), "alice", other, blob),
      (e: ZmqchatError) => e.code === "unauthorized",
    );
    assert.throws(
      () => openLink(linkKeys("mallory", code), "mallory", code, blob),
      (e: ZmqchatError) => e.code === "unauthorized",
      "bound to the user name",
    );
    const flipped = Buffer.from(blob, "base64url");
    flipped[20] = flipped[20]! ^ 1;
    assert.throws(
      () => openLink(keys, "alice", code, flipped.toString("base64url")),
      (e: ZmqchatError) => e.code === "unauthorized",
      "an altered blob does not open",
    );
  });
});

describe("the key push after a revocation", () => {
  it("opens on the device it was sealed to, only when signed by the keys the device holds", () => {
    const old = generateIdentity("alice");
    const next = generateIdentity("alice");
    const secret = rawSecret();
    const claim = deviceKeyClaim(old, "0123456789abcdef", secret);
    assert.ok(deviceKeyTrusted("alice", "0123456789abcdef", claim.key, claim.keySig, [old]));
    assert.ok(
      !deviceKeyTrusted("alice", "fedcba9876543210", claim.key, claim.keySig, [old]),
      "bound to the device id",
    );
    assert.ok(
      !deviceKeyTrusted("alice", "0123456789abcdef", claim.key, claim.keySig, [next]),
      "by the user's key",
    );

    const held = { identity: old, device: "0123456789abcdef" };
    const blob = sealRekey(
      "alice",
      held.device,
      claim.key,
      { ...held, identity: next, previous: [old] },
      old,
    );
    const opened = openRekey("alice", held.device, secret, blob, held);
    assert.equal(opened.identity.publicKeys.sign, next.publicKeys.sign);
    assert.deepEqual(
      opened.previous?.map((p) => p.publicKeys.sign),
      [old.publicKeys.sign],
      "the old keys stay to open old messages",
    );

    // Attack: the server (or anyone) seals keys of its own to the device's public key.
    const mallory = generateIdentity("alice");
    const forged = sealRekey("alice", held.device, claim.key, { ...held, identity: mallory }, mallory);
    assert.throws(
      () => openRekey("alice", held.device, secret, forged, held),
      (e: ZmqchatError) => e.code === "unauthorized",
    );
    // Another device's secret does not open it.
    assert.throws(
      () => openRekey("alice", held.device, rawSecret(), blob, held),
      (e: ZmqchatError) => e.code === "unauthorized",
    );
  });
});

describe("DeviceRegistry (server)", () => {
  const setup = async () => {
    const store = new SqliteStore(":memory:");
    await store.init();
    // A clock that stands still: the attempt buckets refill with time, and a loaded machine is slow.
    const at = Date.now();
    const auth = new Authority(Buffer.from("unit-test-cluster-secret-0123456789"), { now: () => at });
    const sessions = new SessionManager(auth, store, 0);
    const registry = new DeviceRegistry(store, auth, sessions, 0);
    const claims = (device: string): SessionClaims => ({
      name: "alice",
      device,
      keyTag: "k",
      issued: Date.now(),
      expires: Date.now() + 60_000,
    });
    return { store, auth, registry, claims };
  };

  it("publishes to every live device's own topic, and to the user's topic before any device logged in", async () => {
    const { store, auth, registry, claims } = await setup();
    try {
      assert.deepEqual(
        (await registry.deliveryTopics("alice")).flatMap((d) => d.plain),
        auth.deliveryTopics("alice"),
      );
      await registry.admit("alice", "0000000000000001");
      await registry.admit("alice", "0000000000000002");
      const both = (await registry.deliveryTopics("alice")).flatMap((d) => d.plain);
      assert.deepEqual(both, auth.deliveryTopics("alice", ["0000000000000001", "0000000000000002"]));
      assert.equal(new Set(both).size, both.length, "each topic once");
      assert.ok(!both.includes(auth.topic("alice")), "the user's topic is not one of a device's");
      const batched = auth.deliveryTopics("alice", ["0000000000000001", "0000000000000002"], true);
      assert.deepEqual(
        (await registry.deliveryTopics("alice")).flatMap((d) => d.batched),
        batched,
      );
      assert.equal(
        batched.filter((t) => both.includes(t)).length,
        0,
        "batched topics are topics of their own",
      );
      assert.deepEqual(
        await registry.topics("alice"),
        [...both, ...batched],
        "notices and signals go to both",
      );
      await registry.revoke(claims("0000000000000001"), "0000000000000002");
      assert.deepEqual(
        (await registry.deliveryTopics("alice")).flatMap((d) => d.plain),
        auth.deliveryTopics("alice", ["0000000000000001"]),
      );
      await assert.rejects(
        registry.admit("alice", "0000000000000002"),
        (e: ZmqchatError) => e.code === "unauthorized",
      );
      await assert.rejects(
        registry.revoke(claims("0000000000000001"), "0000000000000001"),
        (e: ZmqchatError) => e.code === "bad_request",
        "not the device you are on",
      );
    } finally {
      await store.close();
    }
  });

  it("limits link attempts per user name (attack: guessing codes across slots), with a positive control", async () => {
    const { store, registry, claims } = await setup();
    try {
      await registry.admit("alice", "0000000000000001");
      const code = newLinkCode();
      const keys = linkKeys("alice", code);
      await registry.linkPut(claims("0000000000000001"), {
        slot: code.slot,
        verifier: keys.verifier,
        blob: "c2VhbGVk",
        device: "00000000000000ff",
        deviceName: "laptop",
        ttlMs: 600_000,
      });
      const outcomes: string[] = [];
      for (let i = 0; i < 25; i++) {
        const guess = newLinkCode();
        try {
          await registry.linkGet({
            name: "alice",
            slot: guess.slot,
            proof: randomBytes(32).toString("base64url"),
          });
          outcomes.push("ok");
        } catch (e) {
          outcomes.push((e as ZmqchatError).code);
        }
      }
      // Positive control: the first guesses reach the store and are refused as wrong codes.
      assert.deepEqual(outcomes.slice(0, 20), Array(20).fill("unauthorized"));
      assert.deepEqual(outcomes.slice(20), Array(5).fill("rate_limited"));
      // The right code too is refused while the name is over its attempts.
      await assert.rejects(
        registry.linkGet({ name: "alice", slot: code.slot, proof: keys.proof }),
        (e: ZmqchatError) => e.code === "rate_limited",
      );
    } finally {
      await store.close();
    }
  });
});
