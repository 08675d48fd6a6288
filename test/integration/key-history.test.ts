import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type RealStack, startStack } from "../helpers/stack.js";

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

const PASSPHRASE = "plum cobalt harbour ninety wicker 7 lantern";

describe("key history: a rotation, a restore and a new device never turn good messages into forged", () => {
  let stack: RealStack;
  before(async () => {
    stack = await startStack({ servers: 2 });
    for (const u of ["alice", "bob"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
  });
  after(async () => {
    await stack?.stop();
  });

  const history = async (user: string, peer: string, home?: string) => {
    const r = await stack.cli(user, ["history", peer, "--json", "--limit", "1000"], { home });
    assert.equal(r.code, 0, r.stderr);
    return lines(r.stdout);
  };
  const send = async (from: string, to: string, text: string) => {
    const r = await stack.cli(from, ["send", to, text]);
    assert.equal(r.code, 0, r.stderr);
  };

  it("holds what alice's new keys signed until bob trusts them, then shows everything verified on both sides and after a restore", async () => {
    await send("alice", "bob", "one, before the rotation");
    await send("bob", "alice", "two, before the rotation");
    assert.equal((await history("bob", "alice")).length, 2);

    const rotate = await stack.cli("alice", ["keys", "rotate"]);
    assert.equal(rotate.code, 0, rotate.stderr);
    await send("alice", "bob", "three, signed by the new keys");

    // Bob has not confirmed alice's new keys: the new message is held, not shown and not called forged.
    const pending = await history("bob", "alice");
    assert.deepEqual(
      pending.map((m) => [m.text, m.verified]),
      [
        ["one, before the rotation", true],
        ["two, before the rotation", true],
      ],
    );
    const refused = await stack.cli("bob", ["send", "alice", "are you still you?"]);
    assert.equal(refused.code, 4, "sends wait for the confirmation");
    const fp = await stack.cli("bob", ["keys", "fingerprint", "alice"]);
    assert.match(fp.stdout, /signed by their previous key/);

    const unconfirmed = await stack.cli("bob", ["verify-history", "alice"]);
    assert.notEqual(unconfirmed.code, 0, "a held message leaves the history incomplete");
    assert.match(unconfirmed.stdout, /held \S+ from alice/);

    const trust = await stack.cli("bob", ["keys", "trust", "alice"]);
    assert.equal(trust.code, 0, trust.stderr);
    assert.match(trust.stdout, /1 held message/);
    const bobView = await history("bob", "alice");
    assert.deepEqual(
      bobView.map((m) => [m.text, m.verified, m.problem]),
      [
        ["one, before the rotation", true, undefined],
        ["two, before the rotation", true, undefined],
        ["three, signed by the new keys", true, undefined],
      ],
    );
    await send("bob", "alice", "four, after trust");
    const verifyBob = await stack.cli("bob", ["verify-history", "alice"]);
    assert.equal(verifyBob.code, 0, verifyBob.stdout + verifyBob.stderr);

    const aliceView = await history("alice", "bob");
    assert.equal(aliceView.length, 4);
    assert.ok(
      aliceView.every((m) => m.verified),
      JSON.stringify(aliceView),
    );
    const verifyAlice = await stack.cli("alice", ["verify-history", "bob"]);
    assert.equal(verifyAlice.code, 0, verifyAlice.stdout + verifyAlice.stderr);

    // Alice's keys restored into a new home (a new device): every message, hers and bob's, from
    // before and after the rotation, verified.
    const backup = await stack.cli("alice", ["keys", "backup"], { env: { ZMQCHAT_PASSPHRASE: PASSPHRASE } });
    assert.equal(backup.code, 0, backup.stderr);
    const home = join(stack.dir, "homes", "alice-new-laptop");
    const restore = await stack.cli("alice", ["keys", "restore"], {
      home,
      env: { ZMQCHAT_PASSPHRASE: PASSPHRASE },
      timeoutMs: 60_000,
    });
    assert.equal(restore.code, 0, restore.stderr);
    const restored = await history("alice", "bob", home);
    assert.deepEqual(
      restored.map((m) => [m.id, m.text, m.verified]),
      aliceView.map((m) => [m.id, m.text, true]),
    );
    const verifyRestored = await stack.cli("alice", ["verify-history", "bob"], { home });
    assert.equal(verifyRestored.code, 0, verifyRestored.stdout + verifyRestored.stderr);

    // Bob on a new device pins alice's current keys and verifies her older messages through the chain.
    const bobBackup = await stack.cli("bob", ["keys", "backup"], { env: { ZMQCHAT_PASSPHRASE: PASSPHRASE } });
    assert.equal(bobBackup.code, 0, bobBackup.stderr);
    const bobHome = join(stack.dir, "homes", "bob-new-laptop");
    const bobRestore = await stack.cli("bob", ["keys", "restore"], {
      home: bobHome,
      env: { ZMQCHAT_PASSPHRASE: PASSPHRASE },
      timeoutMs: 60_000,
    });
    assert.equal(bobRestore.code, 0, bobRestore.stderr);
    const bobRestored = await history("bob", "alice", bobHome);
    assert.deepEqual(
      bobRestored.map((m) => [m.text, m.verified]),
      aliceView.map((m) => [m.text, true]),
    );
    const verifyBobRestored = await stack.cli("bob", ["verify-history", "alice"], { home: bobHome });
    assert.equal(verifyBobRestored.code, 0, verifyBobRestored.stdout + verifyBobRestored.stderr);
  });

  it("first contact: keys from the server are unverified until keys verify; a verified contact's key change holds sends and shows both safety numbers", async () => {
    for (const u of ["carol", "dave"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
    const contacts = async () =>
      new Map(
        (await stack.cli("carol", ["contacts", "--json"])).stdout
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { name: string; verified: boolean; fingerprint: string })
          .map((c) => [c.name, c]),
      );
    const before = await contacts();
    assert.equal(before.get("dave")?.verified, false, "keys that came only from the server");
    assert.equal(before.get("carol")?.verified, true, "you are yourself");
    const human = await stack.cli("carol", ["contacts"]);
    assert.match(human.stdout, /dave \(unverified\)/);

    assert.equal((await stack.cli("carol", ["keys", "verify", "nosuch"])).code, 5);
    const verify = await stack.cli("carol", ["keys", "verify", "dave"]);
    assert.equal(verify.code, 0, verify.stderr);
    const oldFp = before.get("dave")!.fingerprint;
    assert.ok(verify.stdout.includes(oldFp), verify.stdout);
    assert.equal((await contacts()).get("dave")?.verified, true);

    assert.equal((await stack.cli("dave", ["keys", "rotate"])).code, 0);
    const held = await stack.cli("carol", ["send", "dave", "hello?"]);
    assert.equal(held.code, 4, "a verified contact's key change holds sends");
    const newFp = (await stack.cli("dave", ["keys", "show", "--json"])).stdout;
    const fresh = (JSON.parse(newFp) as { fingerprint: string }).fingerprint;
    assert.ok(held.stderr.includes(oldFp) && held.stderr.includes(fresh), held.stderr);

    assert.equal((await stack.cli("carol", ["keys", "trust", "dave"])).code, 0);
    const after = (await contacts()).get("dave");
    assert.equal(after?.verified, false, "the new keys are not verified until compared again");
    assert.equal(after?.fingerprint, fresh);
    assert.equal((await stack.cli("carol", ["send", "dave", "hello again"])).code, 0);
  });
});
