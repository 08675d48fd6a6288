import assert from "node:assert/strict";
import { createCipheriv, generateKeyPairSync, randomBytes, scryptSync, sign } from "node:crypto";
import { describe, it } from "node:test";
import { passphraseStrength } from "../../bin/passphrase.js";
import {
  backupProof,
  backupVerifier,
  deriveBackupKeys,
  openBackup,
  sealBackup,
} from "../../core/crypto/backup.js";
import { generateIdentity, identitySecrets } from "../../core/crypto/keys.js";
import { loginChallengeBytes } from "../../core/crypto/login.js";
import {
  bindingKey,
  loginBindingProof,
  requestBindingProof,
  x25519Private,
  x25519PublicRaw,
  z85Decode,
} from "../../core/crypto/session-binding.js";
import { Authority } from "../../server/auth.js";
import { Backups } from "../../server/backups.js";
import { SessionManager } from "../../server/sessions.js";
import { SqliteStore } from "../../server/store/sqlite.js";
import { z85Encode } from "../../transports/zeromq/curve.js";

const secret = Buffer.from("unit-test-secret-0123456789abcdef");
const CHEAP = { N: 2 ** 10, r: 8, p: 1 };

function signer() {
  const k = generateKeyPairSync("ed25519");
  return {
    pub: k.publicKey.export({ format: "jwk" }).x!,
    sign: (b: Buffer) => sign(null, b, k.privateKey).toString("base64url"),
  };
}

/** Two servers (own Authority and SessionManager each) on one shared store, with a settable clock. */
async function cluster(ttlMs = 60_000) {
  const store = new SqliteStore(":memory:");
  await store.init();
  const clock = { t: Date.now(), now: () => clock.t };
  const servers = [0, 1].map(() => {
    const auth = new Authority(secret, clock, ttlMs);
    return { auth, sessions: new SessionManager(auth, store, 0) };
  });
  return { store, clock, a: servers[0]!.sessions, b: servers[1]!.sessions, authA: servers[0]!.auth };
}

function signedLogin(auth: Authority, who: ReturnType<typeof signer>, device = "00112233aabbccdd") {
  const ch = auth.challenge("alice");
  return { name: "alice", ...ch, device, sig: who.sign(loginChallengeBytes("alice", ch.nonce, ch.expires)) };
}

describe("SessionManager: sessions with a memory in the store", () => {
  it("a signed login works once: replayed to the same or another server it is unauthorized", async () => {
    const { a, b, authA } = await cluster();
    const alice = signer();
    const login = signedLogin(authA, alice);
    const s = await a.login(login, alice.pub);
    assert.equal((await b.check(s.session)).name, "alice", "positive control: the fresh login works");
    await assert.rejects(a.login(login, alice.pub), { code: "unauthorized", message: /already used/ });
    await assert.rejects(b.login(login, alice.pub), { code: "unauthorized", message: /already used/ });
    const racers = signedLogin(authA, alice);
    const raced = await Promise.allSettled([a.login(racers, alice.pub), b.login(racers, alice.pub)]);
    assert.equal(raced.filter((r) => r.status === "fulfilled").length, 1, "two servers racing: one wins");
  });

  it("a forged login does not use up the challenge", async () => {
    const { a, authA } = await cluster();
    const alice = signer();
    const login = signedLogin(authA, alice);
    await assert.rejects(a.login({ ...login, sig: signer().sign(Buffer.from("x")) }, alice.pub), {
      code: "unauthorized",
      message: /signature/,
    });
    assert.equal((await a.check((await a.login(login, alice.pub)).session)).name, "alice");
  });

  it("a key rotation ends every session of the earlier key; a login with the new key works", async () => {
    const { a, b, authA, clock } = await cluster();
    const oldKey = signer();
    const newKey = signer();
    const before = await a.login(signedLogin(authA, oldKey), oldKey.pub);
    await b.endKeyGeneration("alice", oldKey.pub);
    clock.t += 1;
    await assert.rejects(a.check(before.session), { code: "unauthorized", message: /rotated/ });
    const after = await b.login(signedLogin(authA, newKey), newKey.pub);
    assert.equal((await a.check(after.session)).name, "alice", "positive control: the new key's session");
    const lateOld = await a.login(signedLogin(authA, oldKey), oldKey.pub);
    await assert.rejects(
      b.check(lateOld.session),
      { code: "unauthorized" },
      "the old generation stays ended",
    );
  });

  it("logout ends this device's sessions on every server; --all ends every device's", async () => {
    const { a, b, authA, clock } = await cluster();
    const alice = signer();
    const phone = await a.login(signedLogin(authA, alice, "aaaaaaaaaaaaaaaa"), alice.pub);
    const laptop = await a.login(signedLogin(authA, alice, "bbbbbbbbbbbbbbbb"), alice.pub);
    clock.t += 1;
    await a.logout(await a.check(phone.session), false);
    await assert.rejects(b.check(phone.session), { code: "unauthorized", message: /logout/ });
    assert.equal((await b.check(laptop.session)).name, "alice", "the other device is still in");
    clock.t += 1;
    const again = await a.login(signedLogin(authA, alice, "aaaaaaaaaaaaaaaa"), alice.pub);
    assert.equal((await b.check(again.session)).name, "alice", "a new login after logout works");
    clock.t += 1;
    await b.logout(await b.check(laptop.session), true);
    await assert.rejects(a.check(laptop.session), { code: "unauthorized" });
    await assert.rejects(a.check(again.session), { code: "unauthorized" });
  });

  it("with cached revocations, a logout is acknowledged only once no server can still hold a copy from before", async () => {
    const store = new SqliteStore(":memory:");
    await store.init();
    const auth = new Authority(secret);
    const a = new SessionManager(auth, store, 200);
    const b = new SessionManager(auth, store, 200);
    const alice = signer();
    const { session } = await a.login(signedLogin(auth, alice), alice.pub);
    assert.equal((await b.check(session)).name, "alice", "b caches alice's (empty) revocations");
    await new Promise((r) => setTimeout(r, 2));
    const started = performance.now();
    await a.logout(await a.check(session), false);
    assert.ok(performance.now() - started >= 195, "the logout waited out the cache time");
    await assert.rejects(b.check(session), { code: "unauthorized" }, "b no longer trusts its copy");
  });

  it("renewal keeps a session past its first expiry without a new login, and not past a logout", async () => {
    const { a, b, authA, clock } = await cluster(5_000);
    const alice = signer();
    let token = (await a.login(signedLogin(authA, alice), alice.pub)).session;
    const first = token;
    for (let i = 0; i < 6; i++) {
      clock.t += 2_500;
      token = b.renew(await b.check(token)).session;
    }
    await assert.rejects(a.check(first), { code: "unauthorized", message: /expired/ });
    assert.equal((await a.check(token)).name, "alice", "15 s on a 5 s lifetime, still in");
    clock.t += 1;
    await a.logout(await a.check(token), false);
    await assert.rejects(b.check(token), { code: "unauthorized" }, "no renewal of an ended session");
  });
});

describe("Key backups: the owner's session or a passphrase proof", () => {
  const contents = () => {
    const id = generateIdentity("alice");
    return { name: "alice", secrets: identitySecrets(id), previous: [] };
  };

  it("refuses a fetch without session or proof, with a wrong proof, and with another user's session", async () => {
    const store = new SqliteStore(":memory:");
    await store.init();
    const backups = new Backups(store);
    const { blob, verifier } = sealBackup(contents(), "correct horse battery staple", CHEAP);
    await backups.put("alice", blob, verifier);
    await assert.rejects(backups.get("alice", null, undefined), { code: "unauthorized" });
    await assert.rejects(backups.get("alice", "mallory", undefined), { code: "unauthorized" });
    const params = await backups.params("alice");
    assert.equal(params.proof, true);
    const wrong = backupProof(deriveBackupKeys("correct horse battery stapler", params));
    await assert.rejects(backups.get("alice", null, wrong), { code: "unauthorized", message: /proof/ });
    const right = deriveBackupKeys("correct horse battery staple", params);
    assert.equal(
      await backups.get("alice", null, backupProof(right)),
      blob,
      "positive control: the right proof",
    );
    assert.equal(
      await backups.get("alice", "alice", undefined),
      blob,
      "positive control: the owner's session",
    );
    assert.equal(openBackup(blob, "alice", "correct horse battery staple", right).name, "alice");
    const stored = (await store.getBackup("alice"))!;
    assert.ok(!stored.includes(backupProof(right)), "the server keeps no proof, only its hash");
    assert.ok(stored.includes(backupVerifier(backupProof(right))));
  });

  it("derives with scrypt N=2^17 by default, and the encryption key is not the proof", () => {
    const { blob } = sealBackup(contents(), "correct horse battery staple");
    const p = JSON.parse(blob) as { v: number; N: number; r: number };
    assert.deepEqual([p.v, p.N, p.r], [2, 2 ** 17, 8]);
    const keys = deriveBackupKeys("correct horse battery staple", {
      kdf: "scrypt",
      ...CHEAP,
      salt: "c2FsdA",
    });
    assert.notDeepEqual(keys.enc, keys.auth);
  });

  it("opens a backup of the old format (v1, made before proofs); the server gives it only to the owner's session", async () => {
    const c = contents();
    const salt = randomBytes(16);
    const nonce = randomBytes(12);
    const key = scryptSync("old passphrase 123", salt, 32, { ...CHEAP, maxmem: 256 * 1024 * 1024 });
    const cipher = createCipheriv("aes-256-gcm", key, nonce);
    cipher.setAAD(Buffer.from("zmqchat-backup-v1\nalice"));
    const ct = Buffer.concat([cipher.update(JSON.stringify(c)), cipher.final(), cipher.getAuthTag()]);
    const v1 = JSON.stringify({
      v: 1,
      kdf: "scrypt",
      ...CHEAP,
      salt: salt.toString("base64url"),
      nonce: nonce.toString("base64url"),
      ct: ct.toString("base64url"),
    });
    assert.deepEqual(openBackup(v1, "alice", "old passphrase 123"), c);
    const store = new SqliteStore(":memory:");
    await store.init();
    await store.putBackup("alice", v1);
    const backups = new Backups(store);
    assert.equal((await backups.params("alice")).proof, false);
    assert.equal(await backups.get("alice", "alice", undefined), v1);
    await assert.rejects(
      backups.get(
        "alice",
        null,
        backupProof(deriveBackupKeys("x", { kdf: "scrypt", ...CHEAP, salt: "c2FsdA" })),
      ),
      {
        code: "unauthorized",
        message: /older zmqchat/,
      },
    );
  });

  it("rates passphrases with zxcvbn-ts: weak ones under 3", () => {
    assert.ok(passphraseStrength("password1").score < 3);
    assert.ok(passphraseStrength("alice2024!", ["alice"]).score < 3);
    assert.ok(passphraseStrength("orbit tangerine cellar votive").score >= 3, "positive control");
  });
});

describe("Sessions bound to the device's CURVE key (proof of possession)", () => {
  const device = () => {
    const k = generateKeyPairSync("x25519");
    const raw = Buffer.from(k.privateKey.export({ format: "jwk" }).d!, "base64url");
    return { secret: raw, pub: x25519PublicRaw(x25519Private(raw)) };
  };
  function boundLogin(auth: Authority, who: ReturnType<typeof signer>, dev: ReturnType<typeof device>) {
    const { bind, ...ch } = auth.challenge("alice");
    const cluster = Buffer.from(bind, "base64url");
    const key = bindingKey(x25519Private(dev.secret), cluster, dev.pub, cluster);
    return {
      key,
      body: {
        name: "alice",
        ...ch,
        sig: who.sign(loginChallengeBytes("alice", ch.nonce, ch.expires)),
        curve: dev.pub.toString("base64url"),
        curveProof: loginBindingProof(key, ch.nonce),
      },
    };
  }

  it("a bound token works only with requests proven by the device's CURVE key", async () => {
    const { a, b, authA, clock } = await cluster();
    const alice = signer();
    const phone = device();
    const { key, body } = boundLogin(authA, alice, phone);
    const s = await a.login(body, alice.pub);
    assert.equal(s.bound, true);
    const req = { id: "r1", type: "users", body: { names: ["bob"] } };
    const proof = requestBindingProof(key, req.id, req.type, s.session, req.body);
    assert.equal((await b.check(s.session, { ...req, proof })).name, "alice", "positive control");
    await assert.rejects(b.check(s.session, { ...req, proof: undefined }), { code: "unauthorized" });
    const thief = device();
    const cl = Buffer.from(authA.challenge("x").bind, "base64url");
    const thiefKey = bindingKey(x25519Private(thief.secret), cl, thief.pub, cl);
    await assert.rejects(
      b.check(s.session, {
        ...req,
        proof: requestBindingProof(thiefKey, req.id, req.type, s.session, req.body),
      }),
      { code: "unauthorized", message: /CURVE/ },
      "another device's key",
    );
    await assert.rejects(
      b.check(s.session, { ...req, body: { names: ["carol"] }, proof }),
      { code: "unauthorized" },
      "the proof covers the body",
    );
    clock.t += 1000;
    const renewed = b.renew(await b.check(s.session, { ...req, proof }));
    await assert.rejects(
      b.check(renewed.session, { ...req, proof }),
      { code: "unauthorized" },
      "and the token",
    );
    const p2 = requestBindingProof(key, req.id, req.type, renewed.session, req.body);
    assert.equal(
      (await a.check(renewed.session, { ...req, proof: p2 })).curve,
      phone.pub.toString("base64url"),
    );
  });

  it("a login claiming a CURVE key it cannot prove is unauthorized", async () => {
    const { a, authA } = await cluster();
    const alice = signer();
    const { body } = boundLogin(authA, alice, device());
    await assert.rejects(a.login({ ...body, curve: device().pub.toString("base64url") }, alice.pub), {
      code: "unauthorized",
      message: /CURVE/,
    });
  });

  it("decodes Z85 as the CURVE key files write it", () => {
    const raw = randomBytes(32);
    assert.deepEqual(z85Decode(z85Encode(raw)), raw);
  });
});
