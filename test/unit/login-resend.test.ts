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
 * A device's first login is answered at once, with `settleMs`: the time after which every
 * server's cached device list holds it (server/devices.ts; a listening client syncs then). It
 * used to be answered only after that wait, and under load a client's attempt timed out during
 * it and the same login (same challenge) was resent, maybe to another server: the scale bench's
 * 5,000 logins failed when the resend found its challenge used by the first attempt and was
 * refused before the first attempt answered. A resend's refusal is still held back (sessions.ts,
 * holdRefusal), so the first answer a client gets is the session.
 */
describe("a resent first login of a new device", () => {
  it("is answered at once with the time every server's list holds it; a resend is refused after the session went out; an orphan device is admitted", async () => {
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
      const cTopics = async () => (await c.devices.deliveryTopics("alice")).flatMap((d) => d.plain);
      const seenOf = async (id: string) =>
        (await store.listDevices("alice")).find((d) => d.id === id)?.lastSeen ?? null;

      const firstOld = await login(a, loginOf(OLD));
      assert.equal(firstOld.settleMs, CACHE_MS, "a new device's login names the settle time");
      // Server C publishes to alice from a list cached before the new device exists.
      assert.deepEqual(await cTopics(), a.auth.deliveryTopics("alice", [OLD]));

      const req = loginOf(NEW);
      const order: string[] = [];
      const first = login(a, req).then(
        (r) => {
          order.push("first ok");
          return r;
        },
        (e: ZmqchatError) => {
          order.push(`first refused: ${e.message}`);
          return null;
        },
      );
      // The resend reaches server B (its client gave up on the first attempt).
      while ((await store.listDevices("alice")).every((d) => d.id !== NEW))
        await new Promise((r) => setImmediate(r));
      const resent = login(b, req).then(
        () => order.push("resend ok"),
        (e: ZmqchatError) => order.push(`resend refused: ${e.message}`),
      );
      const answer = await first;
      assert.equal(answer?.settleMs, CACHE_MS);
      // Answered before the caches settled: C's list, cached before, still lacks the device
      // (what the client's sync after settleMs is for). Once settleMs passed, it holds it.
      assert.deepEqual(await cTopics(), a.auth.deliveryTopics("alice", [OLD]), "answered without waiting");
      await new Promise((r) => setTimeout(r, CACHE_MS + 20));
      assert.deepEqual(
        await cTopics(),
        a.auth.deliveryTopics("alice", [OLD, NEW]),
        "after settleMs, a server that cached the list before publishes to the new device",
      );
      await resent;
      assert.equal(order[0], "first ok", "the client's first answer is the session");
      assert.match(order[1] ?? "", /^resend refused: .*already used/, "one session per challenge");
      for (let i = 0; i < 100 && (await seenOf(NEW)) === null; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.notEqual(await seenOf(NEW), null, "the device is noted as seen once settled");
      // Seen settled: a later login has nothing to wait for.
      assert.equal((await login(c, loginOf(NEW))).settleMs, undefined);

      // The server that registered a device died before answering: the resend is admitted, and
      // told the settle time (counted from its own read of the device).
      const THIRD = "0000000000000003";
      await store.putDevice("alice", {
        id: THIRD,
        name: "device 0000",
        added: Date.now(),
        lastSeen: null,
        revoked: null,
        key: null,
        keySig: null,
      });
      const orphan = await login(b, loginOf(THIRD));
      assert.equal(typeof orphan.session, "string");
      assert.equal(orphan.settleMs, CACHE_MS);
      await new Promise((r) => setTimeout(r, CACHE_MS + 20));
      assert.deepEqual(
        await cTopics(),
        a.auth.deliveryTopics("alice", [OLD, NEW, THIRD]),
        "every cached list holds the device once settleMs passed",
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
