import assert from "node:assert/strict";
import { sign } from "node:crypto";
import { describe, it } from "node:test";
import { generateIdentity } from "../../core/crypto/keys.js";
import { loginChallengeBytes } from "../../core/crypto/login.js";
import type { ZmqchatError } from "../../core/errors.js";
import { Authority } from "../../server/auth.js";
import { DeviceRegistry } from "../../server/devices.js";
import { HELD_REFUSALS_PER_USER, SessionManager } from "../../server/sessions.js";
import { SqliteStore } from "../../server/store/sqlite.js";

const SECRET = Buffer.from("unit-test-cluster-secret-0123456789");
/** The device-cache time of these servers: short, but long enough to resend a login within it. */
const CACHE_MS = 400;
const OLD = "0000000000000001";
const NEW = "0000000000000002";

/**
 * A device's first login is acknowledged only after every server's cached device list holds it
 * (server/devices.ts). Under load a client's attempt times out during that wait and the same
 * login (same challenge) is resent, maybe to another server. The scale bench's 5,000 logins
 * failed that way: the resend found its challenge used by the first attempt (claimed before its
 * wait) and was refused before the first attempt answered, three times in a row. The challenge
 * is now claimed after the wait, and a resend of an unsettled device waits too, so the first
 * answer a client gets is the session.
 */
describe("a resent first login of a new device", () => {
  it("is refused only after the first attempt's session went out, or admitted after the wait when the first server died", async () => {
    const store = new SqliteStore(":memory:");
    await store.init();
    const server = () => {
      const auth = new Authority(SECRET);
      const sessions = new SessionManager(auth, store, 0);
      return { auth, sessions, devices: new DeviceRegistry(store, auth, sessions, CACHE_MS) };
    };
    const [a, b, c] = [server(), server(), server()];
    try {
      const alice = generateIdentity("alice");
      await store.registerUser({ name: "alice", keys: alice.publicKeys });
      const signKey = alice.publicKeys.sign;
      const loginOf = (device: string) => {
        const ch = a.auth.challenge("alice");
        const sig = sign(null, loginChallengeBytes("alice", ch.nonce, ch.expires), alice.signPrivate);
        return { name: "alice", ...ch, sig: sig.toString("base64url"), device };
      };
      const login = (s: ReturnType<typeof server>, req: ReturnType<typeof loginOf>) =>
        s.sessions.login(req, signKey, (claim) => s.devices.admit("alice", req.device, claim));

      await login(a, loginOf(OLD));
      // Server C publishes to alice from a list cached before the new device exists.
      assert.deepEqual(
        (await c.devices.deliveryTopics("alice")).flatMap((d) => d.plain),
        a.auth.deliveryTopics("alice", [OLD]),
      );

      const req = loginOf(NEW);
      const order: string[] = [];
      const first = login(a, req).then(
        () => order.push("first ok"),
        (e: ZmqchatError) => order.push(`first refused: ${e.message}`),
      );
      // The resend reaches server B while A still waits out the device caches.
      while ((await store.listDevices("alice")).every((d) => d.id !== NEW))
        await new Promise((r) => setImmediate(r));
      const resent = login(b, req).then(
        () => order.push("resend ok"),
        (e: ZmqchatError) => order.push(`resend refused: ${e.message}`),
      );
      await first;
      assert.deepEqual(
        (await c.devices.deliveryTopics("alice")).flatMap((d) => d.plain),
        a.auth.deliveryTopics("alice", [OLD, NEW]),
        "once the login is acknowledged, a server that cached the list before publishes to the new device",
      );
      await resent;
      assert.equal(order[0], "first ok", "the client's first answer is the session");
      assert.match(order[1] ?? "", /^resend refused: .*already used/, "one session per challenge");
      assert.notEqual(
        (await store.listDevices("alice")).find((d) => d.id === NEW)?.lastSeen ?? null,
        null,
        "the device is noted as seen once settled",
      );

      // The server that registered a device died before answering: the resend is admitted, after the wait.
      const THIRD = "0000000000000003";
      (await c.devices.deliveryTopics("alice")).flatMap((d) => d.plain);
      await store.putDevice("alice", {
        id: THIRD,
        name: "device 0000",
        added: Date.now(),
        lastSeen: null,
        revoked: null,
        key: null,
        keySig: null,
      });
      const orphan = loginOf(THIRD);
      assert.equal(typeof (await login(b, orphan)).session, "string");
      assert.deepEqual(
        (await c.devices.deliveryTopics("alice")).flatMap((d) => d.plain),
        a.auth.deliveryTopics("alice", [OLD, NEW, THIRD]),
        "acknowledged only once every cached list holds the device",
      );

      // Attack: the device id is not signed; a replayed login naming another device adds none.
      const FORGED = "00000000000000ff";
      await assert.rejects(login(c, { ...req, device: FORGED }), /already used/);
      assert.ok(
        (await store.listDevices("alice")).every((d) => d.id !== FORGED),
        "a replayed login registers no device",
      );
      // Positive control: a fresh login naming that device does register it.
      await login(c, loginOf(FORGED));
      assert.ok((await store.listDevices("alice")).some((d) => d.id === FORGED));

      // A replay of the same login is refused; a fresh challenge logs in.
      await assert.rejects(
        login(c, req),
        (e: ZmqchatError) => e.code === "unauthorized" && /already used/.test(e.message),
      );
      await login(c, loginOf(NEW));
    } finally {
      await store.close();
    }
  });

  it("a flood of replays of one's own login is refused at once beyond a few held back (no one can fill the server's in-flight slots)", async () => {
    const store = new SqliteStore(":memory:");
    await store.init();
    const auth = new Authority(SECRET);
    const sessions = new SessionManager(auth, store, 1000);
    try {
      const users = ["mallory", "bob"].map((name) => ({ name, id: generateIdentity(name) }));
      for (const u of users) await store.registerUser({ name: u.name, keys: u.id.publicKeys });
      const used = users.map((u) => {
        const ch = auth.challenge(u.name);
        const sig = sign(null, loginChallengeBytes(u.name, ch.nonce, ch.expires), u.id.signPrivate);
        return { name: u.name, ...ch, sig: sig.toString("base64url"), device: OLD };
      });
      for (const [i, u] of users.entries()) await sessions.login(used[i]!, u.id.publicKeys.sign);
      const settled: string[] = [];
      const replay = (i: number, tag: string) =>
        sessions.login(used[i]!, users[i]!.id.publicKeys.sign).then(
          () => settled.push(`${tag} ok`),
          (e: ZmqchatError) => settled.push(`${tag} ${e.code}`),
        );
      // A marker half-way through the hold: a refusal before it was not held, one after it was.
      const marker = new Promise<void>((r) => setTimeout(r, 1000)).then(() => settled.push("marker"));
      const flood = Array.from({ length: 10 }, (_, k) => replay(0, `mallory#${k}`));
      const bystander = replay(1, "bob");
      await Promise.all([...flood, bystander, marker]);
      const at = settled.indexOf("marker");
      const before = settled.slice(0, at);
      const after = settled.slice(at + 1);
      assert.ok(
        settled.every((s) => s === "marker" || s.endsWith("unauthorized")),
        settled.join(", "),
      );
      assert.equal(before.length, 10 - HELD_REFUSALS_PER_USER, `refused at once: ${before.join(", ")}`);
      assert.ok(before.every((s) => s.startsWith("mallory")));
      // Positive control: held refusals exist, and mallory's flood did not use up bob's.
      assert.equal(after.filter((s) => s.startsWith("mallory")).length, HELD_REFUSALS_PER_USER);
      assert.ok(after.includes("bob unauthorized"), "bob's resend is still held back");
    } finally {
      await store.close();
    }
  });
});
