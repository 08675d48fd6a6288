import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Store, StoreMetrics } from "../../server/store/store.js";

const keys = (n: number) => ({
  sign: Buffer.alloc(32, n).toString("base64url"),
  enc: Buffer.alloc(32, n + 100).toString("base64url"),
});

const id = (n: number) => `0190f000-0000-7000-8000-${String(n).padStart(12, "0")}`;

/**
 * The contract every Store passes. `open` makes a fresh, empty store that reports its group
 * commits to `metrics`; `reopen` (optional) opens the same data again after `close`, to prove
 * durability.
 */
export function storeContract(
  name: string,
  open: (
    metrics: StoreMetrics,
  ) => Promise<{ store: Store; reopen?: () => Promise<Store>; cleanup: () => Promise<void> }>,
): void {
  describe(`Store contract: ${name}`, () => {
    async function withStore(
      fn: (store: Store, reopen: (() => Promise<Store>) | undefined, batches: number[]) => Promise<void>,
    ) {
      const batches: number[] = [];
      const { store, reopen, cleanup } = await open({
        batch: (appends) => batches.push(appends),
        error() {},
      });
      try {
        await store.init();
        await fn(store, reopen, batches);
      } finally {
        await store.close().catch(() => {});
        await cleanup();
      }
    }

    it("binds a name to its keys once", async () => {
      await withStore(async (store) => {
        const first = await store.registerUser({ name: "alice", keys: keys(1) });
        assert.equal(first.created, true);
        const again = await store.registerUser({ name: "alice", keys: keys(1) });
        assert.equal(again.created, false);
        const thief = await store.registerUser({ name: "alice", keys: keys(2) });
        assert.equal(thief.created, false);
        assert.deepEqual(thief.user.keys, keys(1), "the earlier keys keep the name");
        assert.deepEqual(await store.getUsers(["alice", "nobody"]), [{ name: "alice", keys: keys(1) }]);
      });
    });

    it("keeps each user's devices, the latest record of each winning, and sealed drops until they expire", async () => {
      await withStore(async (store) => {
        assert.deepEqual(await store.listDevices("alice"), []);
        const one = {
          id: "0123456789abcdef",
          name: "laptop",
          added: 1000,
          lastSeen: null,
          revoked: null,
          key: null,
        };
        const two = { ...one, id: "fedcba9876543210", name: "desk", added: 2000 };
        await store.putDevice("alice", two);
        await store.putDevice("alice", one);
        await store.putDevice("bob", { ...one, name: "bob's" });
        await store.putDevice("alice", { ...two, lastSeen: 2500 });
        await store.putDevice("alice", { ...two, lastSeen: 2500, revoked: 3000 });
        assert.deepEqual(await store.listDevices("alice"), [one, { ...two, lastSeen: 2500, revoked: 3000 }]);
        assert.deepEqual(
          (await store.listDevices("bob")).map((d) => d.name),
          ["bob's"],
        );

        const now = Date.now();
        await store.putDrop("link:ABCD", "sealed-1", now + 60_000);
        assert.equal(await store.getDrop("link:ABCD", now), "sealed-1");
        assert.equal(await store.getDrop("link:ABCD", now + 60_000), null, "expired");
        assert.equal(await store.getDrop("link:ABCE", now), null);
        await store.putDrop("link:ABCD", "sealed-2", now + 120_000);
        assert.equal(await store.getDrop("link:ABCD", now + 90_000), "sealed-2", "a later drop replaces it");
      });
    });

    it("rotates keys only from the keys the name holds", async () => {
      await withStore(async (store) => {
        await store.registerUser({ name: "bob", keys: keys(1) });
        assert.equal(
          await store.rotateKeys("bob", keys(9), keys(2)),
          false,
          "not from keys bob does not hold",
        );
        assert.deepEqual((await store.getUsers(["bob"]))[0]!.keys, keys(1));
        assert.equal(await store.rotateKeys("bob", keys(1), keys(2)), true);
        assert.deepEqual((await store.getUsers(["bob"]))[0]!.keys, keys(2));
        const thief = await store.registerUser({ name: "bob", keys: keys(3) });
        assert.equal(thief.created, false, "a rotated name is still taken");
        assert.deepEqual(thief.user.keys, keys(2));
        assert.equal(await store.rotateKeys("nobody", keys(1), keys(2)), false);
      });
    });

    it("keeps every key a user has had, oldest first, with the rotation signatures", async () => {
      await withStore(async (store) => {
        assert.deepEqual(await store.keyHistory("carol"), [], "nothing for an unknown user");
        await store.registerUser({ name: "carol", keys: keys(1) });
        const registered = await store.keyHistory("carol");
        assert.deepEqual(
          registered.map((l) => [l.keys, l.sig, l.sigNew]),
          [[keys(1), null, null]],
        );
        assert.equal(
          await store.rotateKeys("carol", keys(1), keys(2), { sig: "c2ln", sigNew: "bmV3" }),
          true,
        );
        assert.equal(await store.rotateKeys("carol", keys(7), keys(8), { sig: "eA", sigNew: null }), false);
        assert.equal(
          await store.rotateKeys("carol", keys(2), keys(3), { sig: "c2lnMw", sigNew: null }),
          true,
        );
        const chain = await store.keyHistory("carol");
        assert.deepEqual(
          chain.map((l) => [l.keys, l.sig, l.sigNew]),
          [
            [keys(1), null, null],
            [keys(2), "c2ln", "bmV3"],
            [keys(3), "c2lnMw", null],
          ],
        );
        for (const l of chain) assert.ok(!Number.isNaN(Date.parse(l.at)), `an ISO time: ${l.at}`);
        assert.ok(chain[0]!.at <= chain[1]!.at && chain[1]!.at <= chain[2]!.at, "in the order taken");
      });
    });

    it("keeps one key backup per user, the newest", async () => {
      await withStore(async (store) => {
        assert.equal(await store.getBackup("alice"), null);
        await store.putBackup("alice", '{"v":1,"ct":"first"}');
        await store.putBackup("alice", '{"v":1,"ct":"second"}');
        assert.equal(await store.getBackup("alice"), '{"v":1,"ct":"second"}');
        assert.equal(await store.getBackup("bob"), null);
      });
    });

    it("lets exactly one of concurrent claims use a one-time token, and only once", async () => {
      await withStore(async (store) => {
        const expires = Date.now() + 30_000;
        const results = await Promise.all([1, 2, 3, 4].map(() => store.claimOnce("nonce-A1", expires)));
        assert.equal(results.filter(Boolean).length, 1, "one winner among concurrent claims");
        assert.equal(await store.claimOnce("nonce-A1", expires), false, "a replay loses");
        assert.equal(await store.claimOnce("nonce-B2", expires), true, "another token is its own");
      });
    });

    it("keeps session revocations per user and scope, the latest time", async () => {
      await withStore(async (store) => {
        assert.equal((await store.sessionRevocations("alice")).size, 0);
        await store.revokeSessions("alice", "device:00aa", 2000);
        await store.revokeSessions("alice", "device:00aa", 1000);
        await store.revokeSessions("alice", "key:AbC_-1", Number.MAX_SAFE_INTEGER);
        await store.revokeSessions("bob", "*", 5000);
        const alice = await store.sessionRevocations("alice");
        assert.equal(alice.get("device:00aa"), 2000, "a later call keeps the later time");
        assert.equal(alice.get("key:AbC_-1"), Number.MAX_SAFE_INTEGER);
        assert.equal(alice.has("*"), false);
        assert.equal((await store.sessionRevocations("bob")).get("*"), 5000);
      });
    });

    it("lists users by name", async () => {
      await withStore(async (store) => {
        await store.registerUser({ name: "carol", keys: keys(3) });
        await store.registerUser({ name: "bob", keys: keys(2) });
        assert.deepEqual(
          (await store.listUsers()).map((u) => u.name),
          ["bob", "carol"],
        );
        await store.registerUser({ name: "alice", keys: keys(1) });
        await store.registerUser({ name: "dave", keys: keys(4) });
        const names = async (page: { after?: string; limit: number }) =>
          (await store.listUsers(page)).map((u) => u.name);
        assert.deepEqual(await names({ limit: 2 }), ["alice", "bob"], "a page of the first names");
        assert.deepEqual(await names({ after: "bob", limit: 2 }), ["carol", "dave"], "the next page");
        assert.deepEqual(await names({ after: "dave", limit: 2 }), [], "past the end");
      });
    });

    it("creates groups once and changes members", async () => {
      await withStore(async (store) => {
        const g = await store.createGroup({ name: "team", owner: "alice", members: ["alice", "bob"] });
        assert.equal(g.created, true);
        assert.deepEqual(g.group, { name: "team", owner: "alice", members: ["alice", "bob"], invited: [] });
        const again = await store.createGroup({ name: "team", owner: "bob", members: ["bob"] });
        assert.equal(again.created, false);
        assert.equal(again.group.owner, "alice");
        const changed = await store.setMembers("team", ["alice", "bob", "carol"]);
        assert.deepEqual(changed.members, ["alice", "bob", "carol"]);
        assert.deepEqual(
          (await store.groupsOf("carol")).map((x) => x.name),
          ["team"],
        );
        await store.setMembers("team", ["alice", "carol"]);
        assert.deepEqual(await store.groupsOf("bob"), []);
        assert.equal(await store.getGroup("nope"), null);
        await assert.rejects(store.setMembers("nope", ["alice"]), { code: "not_found" });
      });
    });

    it("keeps invitations apart from members", async () => {
      await withStore(async (store) => {
        const g = await store.createGroup({
          name: "crew",
          owner: "alice",
          members: ["alice"],
          invited: ["bob", "carol"],
        });
        assert.deepEqual(g.group, {
          name: "crew",
          owner: "alice",
          members: ["alice"],
          invited: ["bob", "carol"],
        });
        assert.deepEqual(
          (await store.groupsOf("bob")).map((x) => x.name),
          ["crew"],
          "an invitee sees the group",
        );
        const accepted = await store.setMembers("crew", ["alice", "bob"], ["carol"]);
        assert.deepEqual([accepted.members, accepted.invited], [["alice", "bob"], ["carol"]]);
        assert.deepEqual(await store.getGroup("crew"), accepted);
        await store.setMembers("crew", ["alice", "bob"], []);
        assert.deepEqual(await store.groupsOf("carol"), [], "a declined invitation is gone");
        assert.deepEqual((await store.getGroup("crew"))?.invited, []);
      });
    });

    it("changes a group's owner, admins and title, keeps them through member changes and a reopen (issue 17)", async () => {
      await withStore(async (store, reopen) => {
        await store.createGroup({ name: "ops", owner: "alice", members: ["alice"], invited: ["bob"] });
        await store.setMembers("ops", ["alice", "bob", "carol"], ["dave"]);
        const titled = await store.updateGroup("ops", { title: "Ops — on call", admins: ["bob", "carol"] });
        assert.deepEqual(titled, {
          name: "ops",
          owner: "alice",
          members: ["alice", "bob", "carol"],
          invited: ["dave"],
          admins: ["bob", "carol"],
          title: "Ops — on call",
        });
        // A member change keeps the roles; an admin who leaves is no longer one.
        const left = await store.setMembers("ops", ["alice", "bob"], ["dave"]);
        assert.deepEqual([left.admins, left.title], [["bob"], "Ops — on call"]);
        const handed = await store.updateGroup("ops", { owner: "bob", admins: [] });
        assert.equal(handed.owner, "bob");
        assert.equal(handed.admins, undefined, "no admins: the field is absent");
        assert.equal(handed.title, "Ops — on call", "fields not given stay");
        assert.deepEqual(await store.getGroup("ops"), handed);
        assert.deepEqual(
          (await store.groupsOf("bob")).map((g) => [g.name, g.owner]),
          [["ops", "bob"]],
        );
        // Added back later, carol is a plain member again.
        const back = await store.setMembers("ops", ["alice", "bob", "carol"], ["dave"]);
        assert.deepEqual(
          [back.owner, back.admins, back.members],
          ["bob", undefined, ["alice", "bob", "carol"]],
        );
        await assert.rejects(store.updateGroup("nope", { title: "x" }), { code: "not_found" });
        if (reopen) {
          await store.close();
          const again = await reopen();
          try {
            await again.init();
            assert.deepEqual(await again.getGroup("ops"), back, "roles are durable");
          } finally {
            await again.close();
          }
        }
      });
    });

    it("records a group's changes in order and pages them with cursors (issue 17)", async () => {
      await withStore(async (store, reopen) => {
        await store.createGroup({ name: "ops", owner: "alice", members: ["alice"] });
        await store.createGroup({ name: "other", owner: "bob", members: ["bob"] });
        const event = (n: number, group = "ops") => ({
          id: id(n),
          group,
          at: new Date(1_700_000_000_000 + n).toISOString(),
          kind: n % 2 === 0 ? "added" : "renamed",
          actor: "alice",
          target: n % 2 === 0 ? `user${n}` : null,
          title: n % 2 === 0 ? null : `Title ${n} "quoted" \\ ✓`,
        });
        for (let n = 0; n < 7; n++) await store.addGroupEvent(event(n));
        await store.addGroupEvent(event(99, "other"));
        const first = await store.groupEvents("ops", null, 4);
        assert.equal(first.more, true);
        const rest = await store.groupEvents("ops", first.events.at(-1)!.cursor, 4);
        assert.equal(rest.more, false);
        const all = [...first.events, ...rest.events];
        assert.deepEqual(
          all.map(({ cursor: _c, ...e }) => e),
          [0, 1, 2, 3, 4, 5, 6].map((n) => event(n)),
          "every field back as written, oldest first, no other group's",
        );
        for (const e of all) assert.match(e.cursor, /^[0-9]{1,24}$/, "cursors are decimal strings");
        assert.deepEqual((await store.groupEvents("ops", all.at(-1)!.cursor, 4)).events, [], "past the end");
        assert.deepEqual((await store.groupEvents("none", null, 4)).events, [], "an unknown group has none");
        if (reopen) {
          await store.close();
          const again = await reopen();
          try {
            await again.init();
            assert.equal((await again.groupEvents("ops", null, 100)).events.length, 7, "changes are durable");
          } finally {
            await again.close();
          }
        }
      });
    });

    it("appends to every mailbox, in order, and pages with cursors", async () => {
      await withStore(async (store) => {
        for (let i = 0; i < 25; i++) {
          await store.append({ id: id(i), owners: ["bob", "alice"], envelope: JSON.stringify({ n: i }) });
        }
        const page1 = await store.read("bob", null, 10);
        assert.equal(page1.items.length, 10);
        assert.equal(page1.more, true);
        const page2 = await store.read("bob", page1.items.at(-1)!.cursor, 10);
        const page3 = await store.read("bob", page2.items.at(-1)!.cursor, 10);
        assert.equal(page3.items.length, 5);
        assert.equal(page3.more, false);
        const all = [...page1.items, ...page2.items, ...page3.items].map((x) => JSON.parse(x.envelope).n);
        assert.deepEqual(all, [...Array(25).keys()]);
        assert.equal((await store.read("alice", null, 100)).items.length, 25);
        assert.equal((await store.read("carol", null, 100)).items.length, 0);
        const last = page3.items.at(-1)!.cursor;
        assert.deepEqual((await store.read("bob", last, 10)).items, []);
        // The mailbox quota counts what a mailbox holds; a resend is not a second message.
        await store.append({ id: id(0), owners: ["bob", "alice"], envelope: JSON.stringify({ n: 0 }) });
        assert.deepEqual(
          [
            await store.mailboxSize("bob"),
            await store.mailboxSize("alice"),
            await store.mailboxSize("carol"),
          ],
          [25, 25, 0],
        );
      });
    });

    it("a copy's prev, when the store tells it, is the position before it in that mailbox (resends too)", async () => {
      await withStore(async (store) => {
        const placements: Array<{ owner: string; cursor: string; prev?: string | null }> = [];
        for (let i = 0; i < 12; i++) {
          // Interleaved mailboxes: each mailbox's predecessor is its own, not the last append's.
          const owners = i % 3 === 0 ? ["carol", "bob"] : ["bob", "alice"];
          const r = await store.append({ id: id(i), owners, envelope: JSON.stringify({ n: i }) });
          for (const o of owners) placements.push({ owner: o, ...r.placed.get(o)! });
        }
        const resend = await store.append({ id: id(4), owners: ["bob", "alice"], envelope: "{}" });
        for (const owner of ["alice", "bob", "carol"]) {
          const items = (await store.read(owner, null, 100)).items;
          const told = placements.filter((p) => p.owner === owner && p.prev !== undefined);
          for (const p of told) {
            const at = items.findIndex((x) => x.cursor === p.cursor);
            assert.ok(at >= 0, `${owner}: ${p.cursor} is in the mailbox`);
            assert.equal(p.prev, at === 0 ? null : items[at - 1]!.cursor, `${owner}: prev of ${p.cursor}`);
          }
        }
        const first = placements.find(
          (p) => p.owner === "bob" && p.cursor === resend.placed.get("bob")!.cursor,
        );
        assert.equal(resend.placed.get("bob")!.prev, first?.prev);
      });
    });

    it("prev within one batch: each copy's predecessor is its own mailbox's, in-batch resends too", async () => {
      await withStore(async (store) => {
        await store.append({ id: id(90), owners: ["bob", "dave"], envelope: "{}" });
        const inputs = Array.from({ length: 10 }, (_, i) => ({
          id: id(i),
          owners: i % 3 === 0 ? ["dave", "bob"] : ["bob", "alice"],
          envelope: JSON.stringify({ n: i }),
        }));
        // A resend of an id stored earlier in this batch, and one of an id stored before it.
        inputs.push({ id: id(4), owners: ["bob", "alice"], envelope: "{}" });
        inputs.push({ id: id(90), owners: ["bob", "dave"], envelope: "{}" });
        const results = await store.appendMany(inputs);
        for (const owner of ["alice", "bob", "dave"]) {
          const items = (await store.read(owner, null, 100)).items;
          for (const [i, r] of results.entries()) {
            const p = r.placed.get(owner);
            if (!p || p.prev === undefined) continue;
            const at = items.findIndex((x) => x.cursor === p.cursor);
            assert.ok(at >= 0, `${owner}: ${p.cursor} is in the mailbox`);
            assert.equal(p.prev, at === 0 ? null : items[at - 1]!.cursor, `${owner}: prev of input ${i}`);
          }
        }
        assert.equal(results[10]!.duplicate, true);
        assert.deepEqual(results[10]!.placed.get("bob"), results[4]!.placed.get("bob"));
        assert.equal(results[11]!.duplicate, true);
      });
    });

    it("pages stop before a byte budget (one large item still comes alone) and lose nothing", async () => {
      await withStore(async (store) => {
        const big = (n: number, size: number) => JSON.stringify({ n, pad: "x".repeat(size) });
        for (let i = 0; i < 12; i++) {
          await store.append({ id: id(i), owners: ["bob"], envelope: big(i, i === 5 ? 5000 : 400) });
        }
        const seen: number[] = [];
        let after: string | null = null;
        let pages = 0;
        for (;;) {
          const page: { items: { cursor: string; envelope: string }[]; more: boolean } = await store.read(
            "bob",
            after,
            100,
            1000,
          );
          pages++;
          assert.ok(page.items.length >= 1, "a page holds at least one item");
          const chars = page.items.reduce((n, x) => n + x.envelope.length, 0);
          assert.ok(page.items.length === 1 || chars <= 1000, `a page of ${chars} chars`);
          seen.push(...page.items.map((x) => JSON.parse(x.envelope).n as number));
          if (!page.more) break;
          after = page.items.at(-1)!.cursor;
        }
        assert.deepEqual(seen, [...Array(12).keys()]);
        assert.ok(pages >= 6, `${pages} pages`);
      });
    });

    it("keeps a copy of its own for each mailbox when the append carries per-owner copies", async () => {
      await withStore(async (store) => {
        await store.append({
          id: id(3),
          owners: ["alice", "bob"],
          envelope: '{"all":true}',
          copies: new Map([
            ["alice", '{"for":"alice"}'],
            ["bob", '{"for":"bob"}'],
          ]),
        });
        assert.equal((await store.read("alice", null, 10)).items[0]!.envelope, '{"for":"alice"}');
        assert.equal((await store.read("bob", null, 10)).items[0]!.envelope, '{"for":"bob"}');
      });
    });

    it("stores a resend with the same id once and reports where the first copy is", async () => {
      await withStore(async (store) => {
        const a = await store.append({ id: id(1), owners: ["bob", "alice"], envelope: '{"x":1}' });
        assert.equal(a.duplicate, false);
        const b = await store.append({ id: id(1), owners: ["bob", "alice"], envelope: '{"x":1}' });
        assert.equal(b.duplicate, true);
        assert.deepEqual(b.placed.get("bob"), a.placed.get("bob"));
        assert.equal((await store.read("bob", null, 10)).items.length, 1);
      });
    });

    it("stores a resend through another server once: after its first copy landed, and racing it", async () => {
      await withStore(async (store, reopen) => {
        assert.ok(reopen, `${name} must provide reopen: it is the second server on the same data`);
        const other = await reopen();
        await other.init();
        try {
          // The first copy landed, its acknowledgement was lost, the client resent elsewhere.
          const first = await store.append({ id: id(1), owners: ["bob", "alice"], envelope: '{"n":1}' });
          const again = await other.append({ id: id(1), owners: ["bob", "alice"], envelope: '{"n":1}' });
          assert.equal(again.duplicate, true, "recognised as a resend by the other server");
          assert.equal(again.placed.get("bob")!.cursor, first.placed.get("bob")!.cursor);
          // A timed-out send and its resend at the same moment, through two servers.
          const racing = Array.from({ length: 20 }, (_, i) => id(100 + i));
          await Promise.all(
            racing.flatMap((m, i) =>
              [store, other].map((s) =>
                s.append({ id: m, owners: ["bob", "alice"], envelope: `{"n":${i}}` }),
              ),
            ),
          );
          const want = [id(1), ...racing];
          for (const reader of [store, other]) {
            for (const limit of [1, 3, 100]) {
              const ids: string[] = [];
              let after: string | null = null;
              for (let pages = 0; pages < 100; pages++) {
                const page: { items: { cursor: string; envelope: string }[]; more: boolean } =
                  await reader.read("bob", after, limit);
                ids.push(...page.items.map((x) => x.cursor));
                if (!page.more) break;
                assert.ok(page.items.length > 0, "a page that says more holds something");
                after = page.items.at(-1)!.cursor;
              }
              assert.equal(ids.length, want.length, `pages of ${limit}: each message once, no second copy`);
              assert.equal(new Set(ids).size, ids.length);
            }
          }
        } finally {
          await other.close();
        }
      });
    });

    it("stores a batch (appendMany) in one write, results in order, a repeated id once", async () => {
      await withStore(async (store, _reopen, batches) => {
        const earlier = await store.append({ id: id(1), owners: ["bob", "alice"], envelope: '{"n":1}' });
        const before = batches.length;
        const results = await store.appendMany([
          { id: id(2), owners: ["bob", "alice"], envelope: '{"n":2}' },
          { id: id(1), owners: ["bob", "alice"], envelope: '{"n":1}' },
          { id: id(3), owners: ["carol", "alice"], envelope: '{"n":3}' },
          { id: id(2), owners: ["bob", "alice"], envelope: '{"n":2}' },
        ]);
        assert.deepEqual(
          results.map((r) => r.duplicate),
          [false, true, false, true],
        );
        assert.deepEqual(results[1]!.placed.get("bob"), earlier.placed.get("bob"), "a resend of a stored id");
        assert.equal(results[3]!.placed.get("bob")!.cursor, results[0]!.placed.get("bob")!.cursor);
        assert.deepEqual(batches.slice(before), [4], "one write for the whole batch");
        const bob = (await store.read("bob", null, 10)).items.map((i) => JSON.parse(i.envelope).n);
        assert.deepEqual(bob, [1, 2]);
        assert.deepEqual(
          (await store.read("alice", null, 10)).items.map((i) => JSON.parse(i.envelope).n),
          [1, 2, 3],
        );
        const third = results[2]!.placed.get("alice")!;
        assert.equal(
          third.prev === undefined || third.prev === results[0]!.placed.get("alice")!.cursor,
          true,
        );
        assert.deepEqual(await store.appendMany([]), []);
      });
    });

    it("group-commits concurrent appends and loses none", async () => {
      await withStore(async (store, _reopen, batches) => {
        const n = 500;
        const results = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            store.append({ id: id(i), owners: ["bob"], envelope: `{"n":${i}}` }),
          ),
        );
        const cursors = new Set(results.map((r) => r.placed.get("bob")!.cursor));
        assert.equal(cursors.size, n, "every message has its own place");
        let after: string | null = null;
        const seen: number[] = [];
        for (;;) {
          const page: { items: { cursor: string; envelope: string }[]; more: boolean } = await store.read(
            "bob",
            after,
            200,
          );
          seen.push(...page.items.map((x) => JSON.parse(x.envelope).n as number));
          if (!page.more) break;
          after = page.items.at(-1)!.cursor;
        }
        assert.equal(seen.length, n);
        assert.equal(new Set(seen).size, n);
        // Group commit: every append went through a reported batch, and they shared writes
        // (one write per append would report n batches of one).
        assert.equal(
          batches.reduce((a, b) => a + b, 0),
          n,
          `batches reported: ${batches.join(",")}`,
        );
        assert.ok(
          batches.length <= n / 10,
          `${n} concurrent appends took ${batches.length} writes: ${batches.slice(0, 20).join(",")}`,
        );
      });
    });

    it("keeps envelopes byte for byte, unicode included", async () => {
      await withStore(async (store) => {
        const envelope = JSON.stringify({ text: 'grüße 🚀 "quoted" \\ back\nslash', emoji: "👩‍👩‍👧" });
        await store.append({ id: id(7), owners: ["bob"], envelope });
        assert.equal((await store.read("bob", null, 1)).items[0]!.envelope, envelope);
      });
    });

    it("keeps what it acknowledged across close and reopen", async (t) => {
      const { store, reopen, cleanup } = await open({ batch() {}, error() {} });
      try {
        if (!reopen) {
          t.diagnostic("this store has no reopen: durability is checked by its own suite");
          assert.fail(`${name} must provide reopen for the durability contract`);
        }
        await store.init();
        await store.registerUser({ name: "alice", keys: keys(1) });
        await store.append({ id: id(1), owners: ["alice"], envelope: "{}" });
        await store.close();
        const again = await reopen();
        await again.init();
        assert.equal((await again.read("alice", null, 10)).items.length, 1);
        assert.equal((await again.getUsers(["alice"])).length, 1);
        await again.close();
      } finally {
        await cleanup();
      }
    });
  });
}
