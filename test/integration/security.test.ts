import assert from "node:assert/strict";
import { createHmac, generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { Dealer, Subscriber } from "zeromq";
import { exitCodeFor } from "../../bin/report.js";
import { loginChallengeBytes } from "../../core/crypto/login.js";
import type { ErrorCode } from "../../core/errors.js";
import { isSubscribedFrame } from "../../core/protocol/broker.js";
import { Authority } from "../../server/auth.js";
import { CLUSTER_SECRET, currentDevice, type RealStack, startStack } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  text: string;
  verified: boolean;
  problem?: string;
}
const lines = (s: string): Line[] =>
  s
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);

/** Each test is an attacker's try that must fail. */
describe("security: attacks that fail", () => {
  let stack: RealStack;
  let bobPub: string;
  before(async () => {
    // PORT+3 bound (clients of older releases subscribe there): its SUB sockets are attacked too.
    stack = await startStack({ servers: 2, legacySubscribers: true });
    for (const u of ["alice", "bob", "carol"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
    assert.equal((await stack.cli("alice", ["group", "create", "team", "bob"])).code, 0);
    assert.equal((await stack.cli("bob", ["group", "accept", "team"])).code, 0);
    bobPub = (
      JSON.parse((await stack.cli("bob", ["keys", "show", "--json"])).stdout) as { keys: { sign: string } }
    ).keys.sign;
  });
  after(async () => {
    await stack?.stop();
  });

  function mailboxCount(): number {
    const db = new Database(stack.store.replace(/^sqlite:/, ""), { readonly: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM mailbox").get() as { n: number }).n;
    } finally {
      db.close();
    }
  }

  async function raw(
    type: string,
    body: unknown,
    session?: string,
  ): Promise<{
    ok: boolean;
    body?: { nonce: string; expires: number; mac: string };
    error?: { code: ErrorCode; message: string };
  }> {
    const d = new Dealer({ linger: 0, receiveTimeout: 5000, ...stack.socketSecurity("client") });
    d.connect(stack.endpoints[0]!);
    try {
      await d.send([
        "S",
        JSON.stringify({ v: 1, id: "attack", type, ...(session ? { session } : {}), body }),
      ]);
      const [reply] = await d.receive();
      return JSON.parse(reply!.toString());
    } finally {
      d.close();
    }
  }

  function refused(r: { ok: boolean; error?: { code: ErrorCode; message: string } }, what: string): void {
    assert.equal(r.ok, false, `${what} was accepted`);
    assert.equal(exitCodeFor(r.error!.code), 4, `${what}: ${r.error!.code} is not a refusal`);
    assert.ok(r.error!.message.length > 10, `${what}: the message says why`);
  }

  it("taking a registered name with other keys is refused (exit 4) and the name keeps its keys", async () => {
    const thief = await stack.cli("alice", ["register"], { home: join(stack.dir, "homes", "thief") });
    assert.equal(thief.code, 4, thief.stderr);
    assert.match(thief.stderr, /name alice is taken/);
    const mallory = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }).x!;
    refused(
      await raw("register", { name: "bob", keys: { sign: mallory, enc: mallory } }),
      "raw re-registration",
    );
  });

  it("logins with a wrong signature, a forged challenge or an altered expiry are refused", async () => {
    const before = mailboxCount();
    const reply = await raw("challenge", { name: "bob" });
    assert.equal(reply.ok, true);
    const ch = { body: reply.body! };
    const mallory = generateKeyPairSync("ed25519");
    const forgedSig = sign(
      null,
      loginChallengeBytes("bob", ch.body.nonce, ch.body.expires),
      mallory.privateKey,
    ).toString("base64url");
    refused(
      await raw("login", { name: "bob", ...ch.body, sig: forgedSig }),
      "login with mallory's signature",
    );
    refused(
      await raw("login", { name: "bob", ...ch.body, expires: ch.body.expires + 3_600_000, sig: forgedSig }),
      "login replayed with a later expiry",
    );
    refused(
      await raw("login", {
        name: "bob",
        nonce: "bm9uY2U",
        expires: Date.now() + 10_000,
        mac: "AAAA",
        sig: forgedSig,
      }),
      "login with a home-made challenge",
    );
    assert.equal(mailboxCount(), before, "nothing stored");
    assert.ok(bobPub);
  });

  it("forged sessions cannot read or write, and no request names another user's mailbox", async () => {
    const before = mailboxCount();
    const exp = Date.now() + 3_600_000;
    const forged = `bob.${exp}.${createHmac("sha256", "wrong secret").update(`session\nbob.${exp}`).digest("base64url")}`;
    refused(await raw("sync", { after: null, limit: 100 }, forged), "sync with a forged session");
    refused(
      await raw("sync", { after: null, limit: 100 }, "bob.1.expired"),
      "sync with an expired-looking session",
    );
    refused(await raw("sync", { after: null, limit: 100 }), "sync without a session");
    const r = await raw("sync", { after: null, limit: 100, owner: "bob" }, forged);
    assert.equal(r.ok, false, "no request can name a mailbox; its own session picks it");
    assert.equal(mailboxCount(), before);
  });

  it("posting to a group one is not in, and changing a group one does not own, are refused with exit 4", async () => {
    const before = mailboxCount();
    const post = await stack.cli("carol", ["send", "--group", "team", "let me in"]);
    assert.equal(post.code, 4, post.stderr);
    assert.match(post.stderr, /not a member of team/);
    for (const op of ["add", "remove"]) {
      const r = await stack.cli("bob", ["group", op, "team", op === "add" ? "carol" : "alice"]);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /only alice, the owner/);
    }
    assert.equal(mailboxCount(), before, "nothing stored");
  });

  it("the raw store holds no plaintext after a conversation", async () => {
    const secretWords = ["zebra-crossing-7781", "ünïcödé-pässwörd", "group-secret-4242"];
    const sent = [
      await stack.cli("alice", ["send", "bob", secretWords[0]!]),
      await stack.cli("bob", ["send", "alice", secretWords[1]!]),
    ];
    for (const r of sent) assert.equal(r.code, 0, r.stderr);
    assert.equal((await stack.cli("bob", ["send", "--group", "team", secretWords[2]!])).code, 0);
    assert.deepEqual(
      lines((await stack.cli("alice", ["history", "bob", "--json"])).stdout)
        .map((m) => m.text)
        .filter((t) => secretWords.includes(t)),
      secretWords.slice(0, 2),
      "the recipients read them",
    );
    const path = stack.store.replace(/^sqlite:/, "");
    const raw: Buffer[] = [];
    for (const file of [path, `${path}-wal`]) {
      try {
        raw.push(readFileSync(file));
      } catch {
        // No WAL file when SQLite has checkpointed it away; the main file must then be there.
      }
    }
    const store = Buffer.concat(raw);
    // Positive control: the scan reads the rows these sends wrote. Their message ids are stored
    // in clear next to the ciphertext, so a scan that sees them would see clear text too.
    assert.ok(raw.length > 0, `could not read the store at ${path}`);
    for (const r of sent) {
      const id = r.stdout.trim();
      assert.match(id, /^[0-9a-f-]{36}$/, "send prints the message id");
      assert.ok(store.includes(Buffer.from(id)), `the scan cannot see message ${id} in the store`);
    }
    for (const w of secretWords)
      assert.equal(store.includes(Buffer.from(w)), false, `"${w}" is in ${path} in clear`);
  });

  it("server-side tampering is detected: a flipped byte, a swapped sender, a replay into another mailbox", async () => {
    const sent = (await stack.cli("alice", ["send", "bob", "tamper me"])).stdout.trim();
    const sent2 = (await stack.cli("alice", ["send", "bob", "swap my sender"])).stdout.trim();
    const db = new Database(stack.store.replace(/^sqlite:/, ""));
    try {
      const row = db.prepare("SELECT envelope FROM mailbox WHERE owner = 'bob' AND msg_id = ?").get(sent) as {
        envelope: string;
      };
      const env = JSON.parse(row.envelope);
      const ct = Buffer.from(env.ct, "base64url");
      ct[5] = ct[5]! ^ 1;
      const flipped = JSON.stringify({ ...env, ct: ct.toString("base64url") });
      db.prepare("UPDATE mailbox SET envelope = ? WHERE owner = 'bob' AND msg_id = ?").run(flipped, sent);
      const row2 = db
        .prepare("SELECT envelope FROM mailbox WHERE owner = 'bob' AND msg_id = ?")
        .get(sent2) as { envelope: string };
      db.prepare("UPDATE mailbox SET envelope = ? WHERE owner = 'bob' AND msg_id = ?").run(
        JSON.stringify({ ...JSON.parse(row2.envelope), from: "carol" }),
        sent2,
      );
      // Replay alice's original message to bob into carol's mailbox.
      const original = db
        .prepare("SELECT envelope FROM mailbox WHERE owner = 'alice' AND msg_id = ?")
        .get(sent) as { envelope: string };
      db.prepare("INSERT INTO mailbox (owner, msg_id, server_time, envelope) VALUES ('carol', ?, ?, ?)").run(
        sent,
        new Date().toISOString(),
        original.envelope,
      );
    } finally {
      db.close();
    }
    const bobView = lines((await stack.cli("bob", ["history", "alice", "--json"])).stdout);
    const tampered = bobView.find((m) => m.id === sent)!;
    assert.equal(tampered.verified, false, "a flipped byte is not shown as genuine");
    assert.notEqual(tampered.text, "tamper me");
    const bobCarol = lines((await stack.cli("bob", ["history", "carol", "--json"])).stdout);
    const swapped = [...bobView, ...bobCarol].find((m) => m.id === sent2)!;
    assert.equal(swapped.verified, false, "a swapped sender is not shown as genuine");
    const carolView = lines((await stack.cli("carol", ["history", "alice", "--json"])).stdout);
    const replayed = carolView.find((m) => m.id === sent)!;
    assert.equal(replayed.verified, false, "a replay into another mailbox is not shown as genuine");
    assert.equal(replayed.text, "", "and its text is not revealed");
    const check = await stack.cli("bob", ["verify-history", "alice"]);
    assert.notEqual(check.code, 0, "verify-history reports the tampering");
    assert.match(check.stdout, /unverifiable/);
  });

  it("a SUB subscribing to everything or to a short prefix at the balancer receives nothing", async () => {
    const ready = JSON.parse(stack.balancers[0]!.output.find((l) => l.includes("balancer_ready"))!) as {
      endpoints: { pubOut: string };
    };
    // Deliveries go to each device's own topic (server/devices.ts, auth.ts): bob's is the HMAC
    // of his device id, which `devices --json` tells.
    const device = await currentDevice(stack, "bob");
    // Made with the cluster secret, as the servers make it (and only they can).
    const authority = new Authority(Buffer.from(CLUSTER_SECRET));
    const bobTopic = authority.topic("bob", undefined, device);
    // The same device's batch topic (deliveries several to a frame): another MAC under the secret.
    const bobBatchTopic = authority.topic("bob", undefined, device, true);
    const prefixes = [
      bobTopic.slice(0, 8),
      bobTopic.slice(0, 63),
      bobBatchTopic.slice(0, 8),
      bobBatchTopic.slice(0, 63),
    ];
    const snoops = ["", ...prefixes].map((prefix) => {
      const s = new Subscriber({ linger: 0, receiveTimeout: 2500, ...stack.socketSecurity("client") });
      s.subscribe(prefix);
      s.connect(ready.endpoints.pubOut);
      return s;
    });
    // A legitimate subscriber of bob's full topic (only possible with the cluster secret) does
    // receive: proof that the snoops would have seen a leak. Subscriptions propagate
    // asynchronously, so keep sending until it has one.
    // Both of bob's topics: the plain one (clients before batch topics) and the batch one.
    const legit = [bobTopic, bobBatchTopic].map((t) => {
      const s = new Subscriber({ linger: 0, receiveTimeout: 1000, ...stack.socketSecurity("client") });
      s.subscribe(t);
      s.connect(ready.endpoints.pubOut);
      return s;
    });
    for (const [n, sub] of legit.entries()) {
      let topic: Buffer | undefined;
      for (let i = 0; i < 15 && !topic; i++) {
        assert.equal((await stack.cli("alice", ["send", "bob", `for bob's eyes ${n}.${i}`])).code, 0);
        try {
          // The balancer's notice that it took the subscription is no delivery: read past it.
          let frames = await sub.receive();
          while (isSubscribedFrame(frames[1]!)) frames = await sub.receive();
          [topic] = frames;
        } catch {
          // not yet subscribed: send again
        }
      }
      assert.equal(topic?.toString(), [bobTopic, bobBatchTopic][n], "the full topic gets the delivery");
    }
    for (const s of snoops) await assert.rejects(s.receive(), "a prefix subscription received a delivery");
    for (const s of [...snoops, ...legit]) s.close();
  });

  it("a changed key is held with a warning until trusted", async () => {
    assert.equal((await stack.cli("alice", ["send", "bob", "before rotation"])).code, 0);
    const rotate = await stack.cli("bob", ["keys", "rotate"]);
    assert.equal(rotate.code, 0, rotate.stderr);
    const held = await stack.cli("alice", ["send", "bob", "after rotation"]);
    assert.equal(held.code, 4, held.stderr);
    assert.match(held.stderr, /bob's keys changed/);
    assert.match(held.stderr, /keys trust bob/);
    const fp = await stack.cli("alice", ["keys", "fingerprint", "bob"]);
    assert.match(fp.stdout, /WARNING: the server now presents other keys/);
    assert.equal((await stack.cli("alice", ["keys", "trust", "bob"])).code, 0);
    const sent = await stack.cli("alice", ["send", "bob", "after trust"]);
    assert.equal(sent.code, 0, sent.stderr);
    const bobView = lines((await stack.cli("bob", ["history", "alice", "--json"])).stdout);
    const after = bobView.find((m) => m.text === "after trust");
    assert.ok(after?.verified, "bob opens messages sealed for his new keys");
    assert.ok(bobView.find((m) => m.text === "before rotation")?.verified, "and still the ones from before");
  });

  it("restoring from the passphrase backup on an empty home recovers and decrypts the whole history", async () => {
    assert.equal((await stack.cli("alice", ["send", "bob", "before the backup"])).code, 0);
    assert.equal((await stack.cli("bob", ["send", "--group", "team", "group before the backup"])).code, 0);
    const backup = await stack.cli("bob", ["keys", "backup"], { stdin: "correct horse battery staple\n" });
    assert.equal(backup.code, 0, backup.stderr);
    const before = lines((await stack.cli("bob", ["history", "alice", "--json", "--limit", "1000"])).stdout);
    const group = lines((await stack.cli("bob", ["history", "--group", "team", "--json"])).stdout);
    const home = join(stack.dir, "homes", "bob-new-laptop");
    const wrong = await stack.cli("bob", ["keys", "restore"], {
      home,
      stdin: "wrong passphrase!\n",
      timeoutMs: 60_000,
    });
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.match(wrong.stderr, /wrong passphrase/);
    const restore = await stack.cli("bob", ["keys", "restore"], {
      home,
      stdin: "correct horse battery staple\n",
      timeoutMs: 60_000,
    });
    assert.equal(restore.code, 0, restore.stderr);
    const sync = await stack.cli("bob", ["sync"], { home });
    assert.equal(sync.code, 0, sync.stderr);
    const after = lines(
      (await stack.cli("bob", ["history", "alice", "--json", "--limit", "1000"], { home })).stdout,
    );
    const afterGroup = lines(
      (await stack.cli("bob", ["history", "--group", "team", "--json"], { home })).stdout,
    );
    const genuine = (ms: Line[]) => ms.filter((m) => m.verified).map((m) => `${m.id}:${m.text}`);
    assert.deepEqual(genuine(after), genuine(before));
    assert.deepEqual(genuine(afterGroup), genuine(group));
    assert.ok(genuine(after).some((m) => m.endsWith(":before the backup")));
    assert.ok(genuine(afterGroup).some((m) => m.endsWith(":group before the backup")));
  });
});
