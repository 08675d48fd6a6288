import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { ZmqchatError } from "../../core/errors.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { InfluxStore } from "../../server/store/influx.js";
import type { StoredItem } from "../../server/store/store.js";
import { type Influxd, startInfluxd } from "../helpers/influxd.js";

const keys = (n: number) => ({
  sign: Buffer.alloc(32, n).toString("base64url"),
  enc: Buffer.alloc(32, n + 100).toString("base64url"),
});

/**
 * A claim whose write took longer than half the safety window is withdrawn, and after three such
 * tries the store answers `unavailable` ("… too slow to decide …; try again"), which a client's
 * channel retries. On a loaded machine the races below meet that answer: retry as a client does,
 * a bounded number of times; every other error still fails the test.
 */
async function asClient<T>(call: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await call();
    } catch (err) {
      if (tries >= 5 || !(err instanceof ZmqchatError) || err.code !== "unavailable") throw err;
      await delay(50 * tries);
    }
  }
}

/** Several InfluxStores on one database stand for several server processes. */
describe("InfluxStore with several servers on one database", () => {
  let influxd: Influxd;
  let stores: InfluxStore[] = [];
  let db = 0;
  const servers = async (count: number) => {
    const name = `servers_${db++}`;
    const opened = Array.from({ length: count }, () => new InfluxStore({ url: influxd.url, db: name }));
    await Promise.all(opened.map((s) => s.init()));
    stores.push(...opened);
    return opened;
  };

  before(async () => {
    influxd = await startInfluxd();
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    stores = [];
    await influxd?.stop();
  });

  it("gives each server its own timestamp lane", async () => {
    const [a, b, c] = await servers(3);
    const placed = await Promise.all(
      [a!, b!, c!].map((s) => s.append({ id: uuidv7(), owners: ["bob"], envelope: "{}" })),
    );
    const lanes = placed.map((r) => BigInt(r.placed.get("bob")!.cursor) % 1000n);
    assert.equal(new Set(lanes).size, 3, `distinct lanes, got ${lanes.join(", ")}`);
    // A store that closes hands its lane back: its latest mark says so.
    await c!.close();
    const res = await fetch(`${influxd.url}/query`, {
      method: "POST",
      body: new URLSearchParams({
        db: `servers_${db - 1}`,
        q: 'SELECT last("alive") FROM "lanes" GROUP BY "lane"',
      }),
    });
    const text = await res.text();
    assert.match(
      text,
      new RegExp(`"lane":"${lanes[2]}"\\},"columns":\\["time","last"\\],"values":\\[\\[[^\\]]*,false\\]`),
    );
  });

  it("lets exactly one of two servers register a name both claim at once, and both agree", async () => {
    const [a, b] = await servers(2);
    const names = Array.from({ length: 20 }, (_, i) => `racer${i}`);
    const outcomes = await Promise.all(
      names.map((name) =>
        Promise.all([
          asClient(() => a!.registerUser({ name, keys: keys(1) })),
          asClient(() => b!.registerUser({ name, keys: keys(2) })),
        ]),
      ),
    );
    for (const [i, [ra, rb]] of outcomes.entries()) {
      assert.equal(Number(ra.created) + Number(rb.created), 1, `${names[i]}: exactly one server created it`);
      assert.deepEqual(ra.user, rb.user, `${names[i]}: both servers name the same owner`);
      const winner = ra.created ? keys(1) : keys(2);
      assert.deepEqual(ra.user.keys, winner, "the winner's keys are bound");
    }
    const [seenA, seenB] = await Promise.all([a!.listUsers(), b!.listUsers()]);
    assert.deepEqual(seenA, seenB, "every server lists the same owners");
    assert.equal(seenA.length, names.length);
    // A later attempt loses everywhere.
    const late = await b!.registerUser({ name: "racer0", keys: keys(9) });
    assert.equal(late.created, false);
    assert.deepEqual(late.user, outcomes[0]![0].user);
  });

  it("lets exactly one of two concurrent key rotations from the same keys win, and both servers agree", async () => {
    const [a, b] = await servers(2);
    const names = Array.from({ length: 10 }, (_, i) => `rotor${i}`);
    await Promise.all(names.map((name) => asClient(() => a!.registerUser({ name, keys: keys(1) }))));
    const outcomes = await Promise.all(
      names.map((name) =>
        Promise.all([
          asClient(() => a!.rotateKeys(name, keys(1), keys(2))),
          asClient(() => b!.rotateKeys(name, keys(1), keys(3))),
        ]),
      ),
    );
    const [usersA, usersB] = await Promise.all([a!.getUsers(names), b!.getUsers(names)]);
    assert.deepEqual(usersA, usersB, "both servers see the same keys");
    for (const [i, [ra, rb]] of outcomes.entries()) {
      assert.equal(Number(ra) + Number(rb), 1, `${names[i]}: exactly one rotation took effect`);
      assert.deepEqual(usersA[i]!.keys, ra ? keys(2) : keys(3));
    }
    // The chain goes on from the winner's keys only.
    const winner = usersA[0]!.keys;
    assert.equal(
      await b!.rotateKeys(names[0]!, keys(1), keys(4)),
      false,
      "not from keys already rotated away",
    );
    assert.equal(await b!.rotateKeys(names[0]!, winner, keys(4)), true);
    assert.deepEqual((await a!.getUsers([names[0]!]))[0]!.keys, keys(4));
    // Backups put one after another through alternating servers: the newest wins everywhere, also
    // when the other server's clock runs ahead (an idle server stamps up to 50 ms ahead).
    for (let i = 0; i < 6; i++) await (i % 2 === 0 ? a! : b!).putBackup("rotor0", `backup ${i}`);
    for (const s of [a!, b!])
      assert.equal(await s.getBackup("rotor0"), "backup 5", "the newest backup wins on every server");
    // A device record changed through alternating servers (each change reads it first, as
    // server/devices.ts does), ending with its revocation: revoked on both, with the last name.
    await a!.putDevice("rotor0", {
      id: "0123456789abcdef",
      name: "d",
      added: 1,
      lastSeen: null,
      revoked: null,
      key: null,
    });
    for (let i = 0; i < 6; i++) {
      const via = i % 2 === 0 ? b! : a!;
      const rec = (await via.listDevices("rotor0"))[0]!;
      await via.putDevice("rotor0", i < 5 ? { ...rec, name: `d${i}` } : { ...rec, revoked: 42 });
    }
    for (const s of [a!, b!])
      assert.deepEqual(
        (await s.listDevices("rotor0")).map((d) => [d.name, d.revoked]),
        [["d4", 42]],
        "the revocation, made last, stays on every server",
      );
    // The same for a sealed drop put twice under one key.
    for (let i = 0; i < 4; i++)
      await (i % 2 === 0 ? a! : b!).putDrop("rotor0:drop", `drop ${i}`, Date.now() + 60_000);
    for (const s of [a!, b!]) assert.equal(await s.getDrop("rotor0:drop", Date.now()), "drop 3");
  });

  it("lets exactly one of two servers create a group both create at once", async () => {
    const [a, b] = await servers(2);
    const [ra, rb] = await Promise.all([
      a!.createGroup({ name: "team", owner: "alice", members: ["alice", "bob"] }),
      b!.createGroup({ name: "team", owner: "carol", members: ["carol"] }),
    ]);
    assert.equal(Number(ra.created) + Number(rb.created), 1);
    assert.deepEqual(ra.group, rb.group);
    assert.deepEqual(await a!.getGroup("team"), await b!.getGroup("team"));
    const changed = await b!.setMembers("team", [ra.group.owner, "dave"]);
    assert.deepEqual(
      (await a!.getGroup("team"))?.members,
      changed.members,
      "a member change made on one server is seen on the other",
    );
    assert.deepEqual(
      (await a!.groupsOf("dave")).map((g) => g.name),
      ["team"],
    );
    // Changes made one after another through alternating servers: the last one stays on both (each
    // is stamped above the version its server read, even when the other server's clock runs ahead).
    for (let i = 0; i < 8; i++) await (i % 2 === 0 ? a! : b!).setMembers("team", [ra.group.owner, `m${i}`]);
    for (const s of [a!, b!]) assert.deepEqual((await s.getGroup("team"))?.members, [ra.group.owner, "m7"]);
  });

  it("delivers every message exactly once, in order, to a reader while two servers write one mailbox", async (t) => {
    const [a, b, reader] = await servers(3);
    const sent = new Set<string>();
    let writing = true;
    const writer = async (store: InfluxStore, tag: string) => {
      let i = 0;
      const deadline = Date.now() + 2500;
      while (Date.now() < deadline) {
        // Bursts of concurrent appends, so that both servers' batches interleave.
        const ids = Array.from({ length: 50 }, () => `${uuidv7()}`);
        for (const id of ids) sent.add(id);
        await Promise.all(
          ids.map((id) =>
            store.append({ id, owners: ["bob"], envelope: JSON.stringify({ id, tag, i: i++ }) }),
          ),
        );
      }
    };
    const seen: string[] = [];
    const follow = (async () => {
      let cursor: string | null = null;
      for (;;) {
        const finishing = !writing;
        const page: { items: StoredItem[]; more: boolean } = await reader!.read("bob", cursor, 300);
        for (const item of page.items) seen.push((JSON.parse(item.envelope) as { id: string }).id);
        if (page.items.length > 0) cursor = page.items.at(-1)!.cursor;
        if (finishing && !page.more) return;
        if (page.items.length === 0) await delay(5);
      }
    })();
    await Promise.all([writer(a!, "a"), writer(b!, "b")]);
    writing = false;
    await follow;
    t.diagnostic(`${sent.size} messages from two servers, followed live by a third`);
    assert.equal(new Set(seen).size, seen.length, "nothing delivered twice");
    assert.equal(seen.length, sent.size, "nothing skipped");
    const all: StoredItem[] = [];
    let cursor: string | null = null;
    for (;;) {
      const page: { items: StoredItem[]; more: boolean } = await reader!.read("bob", cursor, 2000);
      all.push(...page.items);
      if (!page.more) break;
      cursor = page.items.at(-1)!.cursor;
    }
    assert.deepEqual(
      seen,
      all.map((x) => (JSON.parse(x.envelope) as { id: string }).id),
      "the live reader saw the mailbox's final order",
    );
  });

  it("stores a resend through another server once", async () => {
    const [a, b] = await servers(2);
    const id = uuidv7();
    const first = await a!.append({ id, owners: ["bob", "alice"], envelope: '{"x":1}' });
    const again = await b!.append({ id, owners: ["bob", "alice"], envelope: '{"x":1}' });
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.placed, first.placed);
  });

  it("tells each copy's predecessor as readers see it while two servers write one mailbox, racing resends too", async () => {
    const [a, b] = await servers(2);
    const placements: Array<{ cursor: string; prev?: string | null }> = [];
    const append = async (s: InfluxStore, id: string) => {
      const r = await s.append({ id, owners: ["bob"], envelope: JSON.stringify({ id }) });
      placements.push(r.placed.get("bob")!);
    };
    for (let round = 0; round < 6; round++) {
      const racing = uuidv7();
      await Promise.all([
        ...Array.from({ length: 8 }, () => append(a!, uuidv7())),
        ...Array.from({ length: 8 }, () => append(b!, uuidv7())),
        append(a!, racing),
        append(b!, racing),
      ]);
    }
    const visible: string[] = [];
    let cursor: string | null = null;
    for (;;) {
      const page: { items: StoredItem[]; more: boolean } = await a!.read("bob", cursor, 1000);
      visible.push(...page.items.map((x) => x.cursor));
      if (!page.more) break;
      cursor = page.items.at(-1)!.cursor;
    }
    assert.equal(visible.length, 6 * 17, "each message once");
    for (const p of placements) {
      const at = visible.indexOf(p.cursor);
      assert.ok(at >= 0, `${p.cursor} is where readers see the message`);
      assert.notEqual(p.prev, undefined, `the store tells the predecessor of ${p.cursor}`);
      assert.equal(p.prev, at === 0 ? null : visible[at - 1], `the predecessor of ${p.cursor}`);
    }
  });
});
