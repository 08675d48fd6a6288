import assert from "node:assert/strict";
import { createCipheriv, createHmac, diffieHellman, hkdfSync, randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { inMailboxOrder } from "../../core/client/actions.js";
import type { Contact } from "../../core/client/cache.js";
import type { ContactKeyView } from "../../core/client/key-history.js";
import { type OpenContext, openItem, ROTATION_GRACE_MS } from "../../core/client/open.js";
import { Opener } from "../../core/client/opener.js";
import { verifyHistory } from "../../core/client/verify.js";
import { copyFor, Sealer, SUITE_V3 } from "../../core/crypto/envelope.js";
import { generateIdentity, type Identity, keyId } from "../../core/crypto/keys.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import {
  type Envelope,
  envelopeSchema,
  type MailboxItem,
  type PublicKeys,
} from "../../core/protocol/schema.js";
import { startMemoryStack } from "../helpers/memory-stack.js";

type V3 = Extract<Envelope, { v: 3 }>;

const [alice, bob, carol] = ["alice", "bob", "carol"].map((n) => generateIdentity(n)) as [
  Identity,
  Identity,
  Identity,
];

let seq = 0;
function direct(from: Identity, to: Identity, text: string, more: { extra?: object } = {}): V3 {
  const env = new Sealer(from).seal({
    id: uuidv7(),
    device: "0123456789abcdef",
    to: to.name,
    group: null,
    seq: ++seq,
    sentAt: new Date().toISOString(),
    text,
    recipients: [{ name: to.name, keys: to.publicKeys }],
    ...more,
  });
  assert.equal(env.v, 3);
  return env as V3;
}

const item = (envelope: Envelope, cursor = "1"): MailboxItem => ({
  cursor,
  serverTime: new Date().toISOString(),
  envelope,
});

const contact = (who: Identity): Contact => ({
  name: who.name,
  keys: who.publicKeys,
  pinnedAt: new Date().toISOString(),
  pending: null,
  verified: false,
  verifiedKeys: null,
});

/** What `me`'s client knows: every other test identity pinned at its current keys. */
function ctxOf(me: Identity, more: Partial<OpenContext> = {}): OpenContext {
  const known = new Map([alice, bob, carol].map((i) => [i.name, contact(i)]));
  return {
    me: me.name,
    sealers: [new Sealer(me)],
    contact: (n) => known.get(n) ?? null,
    keysOf: () => null,
    ...more,
  };
}

/**
 * An independent implementation of suite 3's construction (core/crypto/envelope.ts, SUITE_V3),
 * with each copy's wrapping key given by the caller: what a forger can make with the keys it has.
 */
function forge(
  header: Omit<V3, "nonce" | "ct" | "kc" | "keys">,
  text: string,
  wraps: Array<{ owner: string; kek: Buffer }>,
): V3 {
  const h = Buffer.from(
    JSON.stringify([
      "zmqchat-envelope-v3",
      header.v,
      header.suite,
      header.id,
      header.from,
      header.device,
      header.to,
      header.group,
      header.seq,
      header.sentAt,
      header.fromKey,
      header.toKey,
    ]),
  );
  const cek = randomBytes(32);
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", cek, nonce);
  c.setAAD(h);
  const body = Buffer.concat([c.update(JSON.stringify({ text })), c.final(), c.getAuthTag()]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(h.length);
  const kc = createHmac("sha256", cek)
    .update("zmqchat-key-commitment-v3\n")
    .update(len)
    .update(h)
    .update(nonce)
    .update(body)
    .digest();
  const keys = wraps.map(({ owner, kek }) => {
    const iv = randomBytes(12);
    const w = createCipheriv("aes-256-gcm", kek, iv);
    w.setAAD(Buffer.concat([Buffer.from(`zmqchat-wrap-v3\n${owner}\n`), h, kc]));
    return {
      to: owner,
      wk: Buffer.concat([iv, w.update(cek), w.final(), w.getAuthTag()]).toString("base64url"),
    };
  });
  return {
    ...header,
    nonce: nonce.toString("base64url"),
    ct: body.toString("base64url"),
    kc: kc.toString("base64url"),
    keys,
  };
}

/** K(sender→recipient) as `holder` computes it: X25519(holder's private key, the other's public key) through HKDF. */
function pairKey(holder: Identity, sender: Identity, recipient: Identity): Buffer {
  const other = holder === sender ? recipient : sender;
  const shared = diffieHellman({ privateKey: holder.encPrivate, publicKey: other.encPublic });
  const info = `zmqchat-pair-v3\n${sender.name}\n${sender.publicKeys.enc}\n${recipient.name}\n${recipient.publicKeys.enc}`;
  return Buffer.from(hkdfSync("sha256", shared, Buffer.from(SUITE_V3), Buffer.from(info), 32));
}

const headerFor = (from: Identity, to: Identity) => {
  return {
    v: 3 as const,
    suite: SUITE_V3,
    id: uuidv7(),
    from: from.name,
    device: "fedcba9876543210",
    to: to.name,
    group: null,
    seq: ++seq,
    sentAt: new Date().toISOString(),
    fromKey: keyId(from.publicKeys),
    toKey: keyId(to.publicKeys),
  };
};

describe("envelope v3 (1:1): sender authentication by the AEAD under the pairwise key", () => {
  it("1:1 is sealed as v3 by default, groups are signed v4; each owner opens its one-wrap copy", () => {
    const env = direct(alice, bob, "hi bob", { extra: { replyTo: "x" } });
    assert.equal(env.suite, SUITE_V3);
    assert.equal("sig" in env, false, "no signature");
    assert.equal(env.fromKey, keyId(alice.publicKeys));
    assert.equal(env.toKey, keyId(bob.publicKeys));
    assert.deepEqual(env.keys.map((k) => k.to).sort(), ["alice", "bob"]);
    for (const me of [alice, bob]) {
      const copy = copyFor(env, me.name);
      assert.equal(copy.keys.length, 1);
      assert.ok(envelopeSchema.safeParse(copy).success, "a copy is a valid envelope");
      assert.deepEqual(new Sealer(me).open(copy, alice.publicKeys), {
        ok: true,
        text: "hi bob",
        extra: { replyTo: "x" },
      });
    }
    const group = new Sealer(alice).seal({
      id: uuidv7(),
      device: "0123456789abcdef",
      to: null,
      group: "team",
      seq: 1,
      sentAt: new Date().toISOString(),
      text: "team",
      recipients: [{ name: "bob", keys: bob.publicKeys }],
    });
    assert.equal(group.v, 4, "groups stay signed (v4: one signature per batch)");
    assert.equal(
      envelopeSchema.safeParse({ ...env, to: null, group: "team" }).success,
      false,
      "v3 is 1:1 only",
    );
    assert.throws(() =>
      new Sealer(alice).seal({
        id: uuidv7(),
        device: "0123456789abcdef",
        to: null,
        group: "team",
        seq: 1,
        sentAt: new Date().toISOString(),
        text: "team",
        recipients: [{ name: "bob", keys: bob.publicKeys }],
        version: 3,
      }),
    );
    // A note to self is v3 too, and opens under the sender's own key.
    const self = direct(alice, alice, "note");
    assert.deepEqual(
      self.keys.map((k) => k.to),
      ["alice"],
    );
    assert.deepEqual(new Sealer(alice).open(self, alice.publicKeys), { ok: true, text: "note" });
  });

  it("the server cannot alter any field: each flip is flagged (positive control: the untouched copy opens)", () => {
    const env = copyFor(direct(alice, bob, "pay 10"), "bob") as V3;
    const open = (e: Envelope, keys: PublicKeys = alice.publicKeys) => new Sealer(bob).open(e, keys);
    assert.deepEqual(open(env), { ok: true, text: "pay 10" });
    const flip = (s: string, at = 0) => {
      const b = Buffer.from(s, "base64url");
      b[at]! ^= 1;
      return b.toString("base64url");
    };
    const ct = Buffer.from(env.ct, "base64url");
    const altered: Array<[string, Envelope, string]> = [
      ["id", { ...env, id: uuidv7() }, "forged"],
      ["sender name", { ...env, from: "carol" }, "forged"],
      ["device", { ...env, device: "0000000000000000" }, "forged"],
      ["sequence", { ...env, seq: env.seq + 1 }, "forged"],
      ["time", { ...env, sentAt: "2020-01-01T00:00:00.000Z" }, "forged"],
      ["suite", { ...env, suite: "zc3-other" }, "unknown_suite"],
      ["version", { ...env, v: 2, sig: "AA" } as unknown as Envelope, "unknown_suite"],
      ["recipient", { ...env, to: "carol" }, "not_for_me"],
      ["sender key id", { ...env, fromKey: keyId(carol.publicKeys) }, "bad_signature"],
      ["recipient key id", { ...env, toKey: keyId(carol.publicKeys) }, "undecryptable"],
      ["nonce", { ...env, nonce: flip(env.nonce) }, "forged"],
      ["ciphertext", { ...env, ct: flip(env.ct) }, "forged"],
      ["GCM tag", { ...env, ct: flip(env.ct, ct.length - 1) }, "forged"],
      ["key commitment", { ...env, kc: flip(env.kc) }, "forged"],
      ["wrapped key", { ...env, keys: [{ to: "bob", wk: flip(env.keys[0]!.wk, 20) }] }, "forged"],
    ];
    for (const [what, e, reason] of altered) {
      const r = open(e);
      assert.deepEqual(r, { ok: false, reason }, `an altered ${what} is detected`);
    }
  });

  it("the server cannot swap copies between mailboxes, replay one into another mailbox or move it into another conversation", () => {
    const env = direct(alice, bob, "for bob");
    const bobs = copyFor(env, "bob") as V3;
    const alices = copyFor(env, "alice") as V3;
    // Positive controls: each owner opens its own copy.
    assert.equal(new Sealer(bob).open(bobs, alice.publicKeys).ok, true);
    assert.equal(new Sealer(alice).open(alices, alice.publicKeys).ok, true);
    // Bob's copy replayed into carol's mailbox: not for her; relabelled (owner, to, key id), it does not open.
    assert.deepEqual(new Sealer(carol).open(bobs, alice.publicKeys), { ok: false, reason: "not_for_me" });
    const forCarol = {
      ...bobs,
      to: "carol",
      toKey: keyId(carol.publicKeys),
      keys: [{ to: "carol", wk: bobs.keys[0]!.wk }],
    };
    assert.deepEqual(new Sealer(carol).open(forCarol, alice.publicKeys), { ok: false, reason: "forged" });
    // The copies swapped: alice's in bob's mailbox and bob's in alice's.
    assert.deepEqual(new Sealer(bob).open(alices, alice.publicKeys), { ok: false, reason: "not_for_me" });
    const relabelled = { ...alices, keys: [{ to: "bob", wk: alices.keys[0]!.wk }] };
    assert.deepEqual(new Sealer(bob).open(relabelled, alice.publicKeys), { ok: false, reason: "forged" });
    assert.deepEqual(new Sealer(alice).open(bobs, alice.publicKeys), { ok: false, reason: "not_for_me" });
    const toAlice = { ...bobs, keys: [{ to: "alice", wk: bobs.keys[0]!.wk }] };
    assert.deepEqual(new Sealer(alice).open(toAlice, alice.publicKeys), { ok: false, reason: "forged" });
    // Alice's copy moved into her conversation with carol.
    const moved = { ...alices, to: "carol", toKey: keyId(carol.publicKeys) };
    const r = openItem(item(moved), ctxOf(alice));
    assert.equal(r.message.conv, "u:carol");
    assert.equal(r.message.verified, false);
    assert.match(r.message.problem!, /altered or forged/);
    // Bob's copy presented in bob's mailbox as from carol (under carol's key id too).
    const asCarol = { ...bobs, from: "carol", fromKey: keyId(carol.publicKeys) };
    const c = openItem(item(asCarol), ctxOf(bob));
    assert.equal(c.message.verified, false);
    assert.match(c.message.problem!, /altered or forged/);
  });

  it("a hostile peer cannot put a message from the other party into that party's mailbox (reflection)", () => {
    // Positive control: the forger is right when it holds the right key. With K(alice→alice),
    // which only alice can compute, a crafted "from alice" copy opens in alice's mailbox, and
    // with K(alice→bob) a crafted copy opens in bob's: the failures below are the keys', not the forger's.
    const control = forge(headerFor(alice, bob), "made with alice's own key", [
      { owner: "alice", kek: pairKey(alice, alice, alice) },
    ]);
    const ok = openItem(item(control), ctxOf(alice));
    assert.equal(ok.message.verified, true, ok.message.problem ?? "");
    assert.equal(ok.message.text, "made with alice's own key");

    // Bob knows X25519(alice, bob): both directional keys between them, never alice's own.
    const kAB = pairKey(bob, alice, bob);
    const kBA = pairKey(bob, bob, alice);
    const attacks: Array<[string, Envelope]> = [
      [
        "from alice to bob, under K(alice→bob)",
        forge(headerFor(alice, bob), "I owe bob 1000", [{ owner: "alice", kek: kAB }]),
      ],
      [
        "from alice to bob, under K(bob→alice)",
        forge(headerFor(alice, bob), "I owe bob 1000", [{ owner: "alice", kek: kBA }]),
      ],
      [
        "from alice to carol, under K(alice→bob)",
        forge(headerFor(alice, carol), "hi carol", [{ owner: "alice", kek: kAB }]),
      ],
    ];
    // Alice's real message to bob, reflected back into her mailbox as one of hers.
    const real = copyFor(direct(alice, bob, "see you at 5"), "bob") as V3;
    attacks.push([
      "alice's message to bob reflected back to her",
      { ...real, keys: [{ to: "alice", wk: real.keys[0]!.wk }] },
    ]);
    // ... and as bob's message to alice.
    attacks.push([
      "alice's message to bob reflected as bob's to alice",
      {
        ...real,
        from: "bob",
        to: "alice",
        fromKey: keyId(bob.publicKeys),
        toKey: keyId(alice.publicKeys),
        keys: [{ to: "alice", wk: real.keys[0]!.wk }],
      },
    ]);
    for (const [what, env] of attacks) {
      assert.ok(envelopeSchema.safeParse(env).success, `${what}: a well-formed envelope`);
      const r = openItem(item(env), ctxOf(alice));
      assert.equal(r.message.verified, false, what);
      assert.equal(r.message.text, "", what);
      assert.notEqual(r.message.problem, null, what);
    }

    // Deniability, as documented: bob can make a "from alice" message in his own mailbox, so a
    // v3 message proves nothing about alice to a third party (suite 2's signature does).
    const made = forge(headerFor(alice, bob), "made by bob", [{ owner: "bob", kek: kAB }]);
    assert.equal(openItem(item(made), ctxOf(bob)).message.verified, true);
  });

  it("names the key generations: old sender keys open, a rotated-away recipient key opens while held, new sender keys are held", () => {
    const alice2 = generateIdentity("alice"); // alice after a rotation
    const bob2 = generateIdentity("bob"); // bob after a rotation
    const oldMsg = direct(alice, bob, "before alice rotated");
    const newMsg = direct(alice2, bob, "after alice rotated");
    // Bob pinned alice2 and accepts her old key for messages stored before it was replaced.
    const later = new Date(Date.now() + 60_000).toISOString();
    const view: ContactKeyView = {
      accepted: [
        { keys: alice2.publicKeys, until: null },
        { keys: alice.publicKeys, until: later },
      ],
      held: [],
      pendingSigned: false,
    };
    const bobCtx = ctxOf(bob, {
      contact: (n) => (n === "alice" ? contact(alice2) : null),
      keysOf: (n) => (n === "alice" ? view : null),
    });
    assert.equal(openItem(item(copyFor(oldMsg, "bob")), bobCtx).message.text, "before alice rotated");
    assert.equal(openItem(item(copyFor(newMsg, "bob")), bobCtx).message.text, "after alice rotated");
    // Stored after the old key was replaced: refused, as in v2.
    const late = {
      ...item(copyFor(oldMsg, "bob")),
      serverTime: new Date(Date.now() + 120_000).toISOString(),
    };
    assert.match(openItem(late, bobCtx).message.problem!, /already replaced/);

    // Sealed for bob's old key after bob rotated: opens with the key bob kept, as v2 does; not without it.
    const rotatedBob = ctxOf(bob2, {
      sealers: [new Sealer(bob2), new Sealer(bob)],
      ownReplacedAt: () => new Date().toISOString(),
    });
    const forOld = openItem(item(copyFor(direct(alice, bob, "to bob's old key"), "bob")), rotatedBob);
    assert.equal(forOld.message.text, "to bob's old key");
    const lost = openItem(item(copyFor(direct(alice, bob, "to bob's old key"), "bob")), ctxOf(bob2));
    assert.equal(lost.message.verified, false);
    assert.equal(lost.message.problem, "cannot be decrypted");

    // Alice's new key not trusted yet by bob: held, not shown; a forgery naming that key is not held.
    const heldView: ContactKeyView = {
      accepted: [{ keys: alice.publicKeys, until: null }],
      held: [alice2.publicKeys],
      pendingSigned: true,
    };
    const heldCtx = ctxOf(bob, { keysOf: (n) => (n === "alice" ? heldView : null) });
    const held = openItem(item(copyFor(newMsg, "bob")), heldCtx);
    assert.equal(held.held, true);
    assert.equal(held.message.text, "");
    const forgedNew = { ...(copyFor(newMsg, "bob") as V3), seq: 999 };
    const f = openItem(item(forgedNew), heldCtx);
    assert.equal(f.held, false);
    assert.match(f.message.problem!, /altered or forged/);
    // An unknown key id is unexplained: the client fetches the sender's key history.
    const unknown = openItem(item(copyFor(newMsg, "bob")), ctxOf(bob));
    assert.equal(unknown.unexplained, true);
  });

  it("opens v3 on worker threads exactly as on the calling thread", async () => {
    const items = Array.from({ length: 130 }, (_, i) =>
      item(copyFor(direct(alice, bob, `m${i}`), "bob"), String(i + 1)),
    );
    const bad = items[77]!.envelope as V3;
    items[77] = { ...items[77]!, envelope: { ...bad, sentAt: "2020-01-01T00:00:00.000Z" } };
    const lookup = { contact: (n: string) => (n === "alice" ? contact(alice) : null), keysOf: () => null };
    const threaded = new Opener({ me: "bob", sealers: [new Sealer(bob)], threads: 2 });
    const here = new Opener({ me: "bob", sealers: [new Sealer(bob)], threads: 0 });
    try {
      await threaded.ready();
      const a = await threaded.open(items, lookup);
      assert.equal(threaded.onThreads, 1, "opened on the worker threads");
      assert.deepEqual(a, await here.open(items, lookup));
      assert.equal(a.filter((o) => o.message.verified).length, 129);
      assert.match(a[77]!.message.problem!, /altered or forged/);
    } finally {
      await threaded.close();
      await here.close();
    }
  });

  it("through the service: v3 copies are stored one wrap each, verify-history stays complete, and a non-author's edit is flagged", async () => {
    const stack = await startMemoryStack({ servers: 1 });
    try {
      const a = await stack.client("alice");
      const b = await stack.client("bob");
      const c = await stack.client("carol");
      await a.login();
      // The server takes a v3 envelope only for a user, sealed for exactly the two mailboxes.
      const sealed = direct(alice, bob, "not stored");
      const refused: Array<[string, unknown, string]> = [
        ["to a group", { ...sealed, to: null, group: "team" }, "bad_request"],
        [
          "without the sender's own copy",
          { ...sealed, keys: sealed.keys.filter((k) => k.to === "bob") },
          "conflict",
        ],
        [
          "with a third wrap",
          { ...sealed, keys: [...sealed.keys, { to: "carol", wk: sealed.keys[0]!.wk }] },
          "bad_request",
        ],
        ["with a signature", { ...sealed, sig: "AA" }, "bad_request"],
      ];
      for (const [what, envelope, code] of refused)
        await assert.rejects(a.request("send", { envelope: envelope as Envelope }), { code }, what);
      const first = await a.send({ user: "bob" }, "lunch at 1?");
      await b.send({ user: "alice" }, "yes");
      await a.send({ user: "bob" }, "lunch at 2?", {}, { action: { kind: "edit", target: first.id } });
      for (const owner of ["alice", "bob"]) {
        const page = await (owner === "alice" ? a : b).request("sync", { after: null, limit: 10 });
        assert.deepEqual(
          page.items.map((i) => [i.envelope.v, i.envelope.keys.map((k) => k.to)]),
          [
            [3, [owner]],
            [3, [owner]],
            [3, [owner]],
          ],
          `${owner}'s mailbox keeps v3 copies with only the owner's wrap`,
        );
      }
      const report = async (client: typeof a, conv: string) => {
        await client.sync();
        return verifyHistory(
          conv,
          inMailboxOrder(client.cache.history(conv, 100), client.cache.actions.asMessages(conv)),
          client.cache.replays(conv),
        );
      };
      // Positive control: the author's own edit counts, and the history is complete.
      const clean = await report(b, "u:alice");
      assert.equal(clean.complete, true, JSON.stringify(clean));
      assert.equal(b.cache.history("u:alice", 10).find((m) => m.id === first.id)?.text, "lunch at 2?");
      // bob, authentic in v3 but not the author, edits alice's message with a modified client.
      await b.send(
        { user: "alice" },
        "bob rewrote alice",
        {},
        { action: { kind: "edit", target: first.id } },
      );
      for (const [client, conv] of [
        [a, "u:bob"],
        [b, "u:alice"],
      ] as const) {
        const r = await report(client, conv);
        assert.equal(r.complete, false);
        assert.match(
          r.unverified.map((u) => u.problem).join("\n"),
          /bob signed a edit of .* a message by alice: only its author may/,
        );
        assert.equal(client.cache.history(conv, 10).find((m) => m.id === first.id)?.text, "lunch at 2?");
      }
      // The operator replays bob's copy of a message into carol's mailbox: carol does not take it as alice's.
      const db = new Database(join(stack.dir, "store.db"));
      try {
        db.prepare(
          "INSERT INTO mailbox (owner, msg_id, server_time, envelope) SELECT 'carol', msg_id || '-x', server_time, envelope FROM mailbox WHERE owner = 'bob' AND msg_id = ?",
        ).run(first.id);
      } finally {
        db.close();
      }
      await c.sync();
      const seen = c.cache.history("u:alice", 10).concat(c.cache.history("u:bob", 10));
      assert.equal(seen.filter((m) => m.verified).length, 0, JSON.stringify(seen));
    } finally {
      await stack.stop();
    }
  });
});

describe("envelope v3: a copy sealed for a key the recipient rotated away (key compromise impersonation)", () => {
  const bob2 = generateIdentity("bob"); // bob after a rotation; `bob` is the key he rotated away
  const rotatedAt = "2026-01-01T12:00:00.000Z";
  const at = (ms: number) => new Date(Date.parse(rotatedAt) + ms).toISOString();
  const rotated = (more: Partial<OpenContext> = {}) =>
    ctxOf(bob2, {
      sealers: [new Sealer(bob2), new Sealer(bob)],
      ownReplacedAt: (k) => (k.enc === bob.publicKeys.enc ? rotatedAt : null),
      ...more,
    });
  // What a thief of bob's old X25519 key makes: a v3 copy "from alice" for bob's old key (K(alice→bob) = HKDF(X25519(bob_old, alice))).
  const stolen = () => copyFor(direct(alice, bob, "sealed for bob's old key"), "bob");

  it("opens within the grace after the rotation (positive control), is flagged as a forgery after it", () => {
    const env = stolen();
    const inGrace = openItem(
      { cursor: "1", serverTime: at(ROTATION_GRACE_MS - 1000), envelope: env },
      rotated(),
    );
    assert.equal(inGrace.message.verified, true);
    assert.equal(inGrace.message.text, "sealed for bob's old key");
    const late = openItem(
      { cursor: "2", serverTime: at(ROTATION_GRACE_MS + 1000), envelope: env },
      rotated(),
    );
    assert.equal(late.message.verified, false);
    assert.equal(late.message.text, "");
    assert.match(late.message.problem!, /rotated away.*forged/);
    // The same message to bob's current key is not limited (control: only rotated-away keys are).
    const current = copyFor(direct(alice, bob2, "to bob's current key"), "bob");
    assert.equal(
      openItem({ cursor: "3", serverTime: at(86_400_000), envelope: current }, rotated()).message.verified,
      true,
    );
  });

  it("is not shown while the rotation time is unknown, and asks for this user's own key history", () => {
    const o = openItem(
      { cursor: "1", serverTime: at(1000), envelope: stolen() },
      rotated({ ownReplacedAt: () => null }),
    );
    assert.equal(o.message.verified, false);
    assert.equal(o.ownHistory, true);
  });

  it("verify-history lists the late copy as unverified, and the worker-thread opener judges it the same", async () => {
    const items = Array.from({ length: 70 }, (_, k) => ({
      cursor: String(k + 1),
      serverTime: at(k < 35 ? 1000 : ROTATION_GRACE_MS + 1000),
      envelope: copyFor(direct(alice, bob, `m${k}`), "bob") as Envelope,
    }));
    const opener = new Opener({ me: "bob", sealers: [new Sealer(bob2), new Sealer(bob)], threads: 2 });
    try {
      await opener.ready();
      const ctx = rotated();
      const opened = await opener.open(items, {
        contact: ctx.contact,
        keysOf: ctx.keysOf,
        ownReplacedAt: ctx.ownReplacedAt!,
      });
      assert.deepEqual(
        opened.map((o) => o.message.verified),
        items.map((_, k) => k < 35),
      );
      const report = verifyHistory(
        "u:alice",
        opened.map((o) => o.message),
      );
      assert.equal(report.complete, false);
      assert.equal(report.unverified.length, 35);
      assert.match(report.unverified[0]!.problem, /rotated away/);
    } finally {
      await opener.close();
    }
  });
});
