import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { messageLine, systemFields } from "../../bin/format.js";
import { Cache } from "../../core/client/cache.js";
import type { ChatMessage } from "../../core/client/message.js";
import {
  cachedSystemLines,
  mergeSystemLines,
  renderSystemLine,
  type SystemEntry,
} from "../../core/client/system-lines.js";
import { silentLogger } from "../../core/logger.js";
import { GROUP_EVENT_KINDS } from "../../core/protocol/schema.js";
import { GroupService } from "../../server/groups.js";
import { DEFAULT_SERVER_QUOTAS } from "../../server/limits.js";
import { SqliteStore } from "../../server/store/sqlite.js";

const keys = (n: number) => ({
  sign: Buffer.alloc(32, n).toString("base64url"),
  enc: Buffer.alloc(32, n + 100).toString("base64url"),
});

/**
 * Group roles (server/groups.ts) over a real SQLite store, and system lines' rendering and
 * placement (core/client/system-lines.ts), without a network.
 */
describe("group roles: who may do what (server/groups.ts)", () => {
  let store: SqliteStore;
  let groups: GroupService;
  const published: string[] = [];

  before(async () => {
    store = new SqliteStore(":memory:");
    await store.init();
    for (const [i, u] of ["olive", "adam", "mia", "ivy", "newt", "stranger"].entries())
      await store.registerUser({ name: u, keys: keys(i + 1) });
    groups = new GroupService({
      store,
      quotas: DEFAULT_SERVER_QUOTAS,
      log: silentLogger,
      topics: async (u) => [`topic-${u}`],
      publish: (topic, frame) => published.push(`${topic} ${Buffer.from(frame).toString()}`),
      limit: (_name, check) => check(),
    });
    // olive owns g; adam is an admin, mia a plain member, ivy an invitee.
    await groups.create({ name: "g", members: ["adam", "mia", "ivy"] }, "olive");
    await groups.answer("g", "adam", "accept");
    await groups.answer("g", "mia", "accept");
    await groups.admin({ name: "g", user: "adam" }, "olive");
  });
  after(async () => {
    await store.close();
  });

  const refused = (p: Promise<unknown>, code = "forbidden") => assert.rejects(p, { code });

  it("the owner's rights are the owner's alone: rename, hand over, name admins", async () => {
    for (const who of ["adam", "mia", "ivy", "stranger"]) {
      await refused(groups.rename({ name: "g", title: "Mine" }, who));
      await refused(groups.handOver({ name: "g", user: who }, who));
      await refused(groups.admin({ name: "g", user: "mia" }, who));
    }
    const g = await store.getGroup("g");
    assert.deepEqual([g?.owner, g?.admins, g?.title], ["olive", ["adam"], undefined], "nothing changed");
  });

  it("an admin adds and removes plain members and invitations, but not the owner or another admin", async () => {
    await groups.change("g", ["newt"], "add", "adam");
    await groups.change("g", ["newt"], "remove", "adam");
    await refused(groups.change("g", ["olive"], "remove", "adam"), "bad_request");
    await groups.admin({ name: "g", user: "mia" }, "olive");
    await refused(groups.change("g", ["mia"], "remove", "adam"));
    await groups.admin({ name: "g", user: "mia", remove: true }, "olive");
    // A plain member, an invitee and a stranger change nobody.
    for (const who of ["mia", "ivy", "stranger"]) {
      await refused(groups.change("g", ["newt"], "add", who));
      await refused(groups.change("g", ["adam"], "remove", who));
    }
    assert.deepEqual((await store.getGroup("g"))?.members, ["olive", "adam", "mia"]);
  });

  it("only members may be made admins or owners; a removed admin is an admin no more", async () => {
    await refused(groups.admin({ name: "g", user: "ivy" }, "olive"), "not_found");
    await refused(groups.handOver({ name: "g", user: "stranger" }, "olive"), "not_found");
    await refused(groups.admin({ name: "g", user: "olive" }, "olive"), "bad_request");
    await groups.change("g", ["adam"], "remove", "olive");
    await groups.change("g", ["adam"], "add", "olive");
    await groups.answer("g", "adam", "accept");
    assert.equal((await store.getGroup("g"))?.admins, undefined, "re-added, adam is a plain member");
  });

  it("records each change once with its actor; refusals and repeats record nothing; the log is for members", async () => {
    const before = (await store.groupEvents("g", null, 1000)).events.length;
    await refused(groups.rename({ name: "g", title: "No" }, "mia"));
    await groups.rename({ name: "g", title: "Gee" }, "olive");
    await groups.rename({ name: "g", title: "Gee" }, "olive");
    await groups.handOver({ name: "g", user: "mia" }, "olive");
    await groups.handOver({ name: "g", user: "mia" }, "mia");
    const events = (await store.groupEvents("g", null, 1000)).events.slice(before);
    assert.deepEqual(
      events.map((e) => [e.kind, e.actor, e.target, e.title]),
      [
        ["renamed", "olive", null, "Gee"],
        ["owner", "olive", "mia", null],
      ],
    );
    const page = JSON.parse(await groups.events({ name: "g" }, "ivy")) as { events: unknown[] };
    assert.ok(page.events.length > 0, "an invitee may read it, as group info");
    await refused(groups.events({ name: "g" }, "stranger"));
    const leave = groups.leave("g", "mia");
    await assert.rejects(leave, /hand it over first/);
    assert.ok(
      published.some((p) => p.includes('"change":"owner"')),
      "members are told live",
    );
  });
});

describe("group record for former members (server/groups.ts)", () => {
  it("a former member reads the record up to their own departure, nothing after; a stranger nothing", async () => {
    const store = new SqliteStore(":memory:");
    await store.init();
    try {
      for (const [i, u] of ["olive", "newt", "mia", "stranger"].entries())
        await store.registerUser({ name: u, keys: keys(i + 1) });
      const groups = new GroupService({
        store,
        quotas: DEFAULT_SERVER_QUOTAS,
        log: silentLogger,
        topics: async () => [],
        publish: () => {},
        limit: (_name, check) => check(),
      });
      await groups.create({ name: "g", members: ["newt", "mia"] }, "olive");
      await groups.answer("g", "newt", "accept");
      await groups.change("g", ["newt"], "remove", "olive");
      await groups.rename({ name: "g", title: "After newt" }, "olive");
      const kinds = async (user: string) =>
        (
          JSON.parse(await groups.events({ name: "g" }, user)) as {
            events: Array<{ kind: string; target: string | null }>;
          }
        ).events.map((e) => `${e.kind}:${e.target ?? ""}`);
      const all = await kinds("mia");
      assert.deepEqual(
        all.slice(-2),
        ["removed:newt", "renamed:"],
        "positive control: a member sees the later change",
      );
      assert.deepEqual(await kinds("newt"), all.slice(0, -1), "newt sees up to his removal");
      await assert.rejects(groups.events({ name: "g" }, "stranger"), { code: "forbidden" });
    } finally {
      await store.close();
    }
  });
});

describe("system lines: text and place (core/client/system-lines.ts)", () => {
  const line = (
    kind: (typeof GROUP_EVENT_KINDS)[number],
    at: string,
    title: string | null = null,
  ): SystemEntry => {
    const system = {
      kind,
      actor: "alice",
      target: kind === "renamed" || kind === "created" ? null : "bob",
      title,
    };
    return { id: `id-${at}`, group: "team", at, system, text: renderSystemLine(system) };
  };
  const msg = (text: string, serverTime: string) =>
    ({
      id: text,
      from: "carol",
      to: null,
      group: "team",
      text,
      sentAt: serverTime,
      serverTime,
      verified: true,
      cursor: "1",
    }) as ChatMessage;

  it("renders every kind as a sentence naming the actor", () => {
    const texts = GROUP_EVENT_KINDS.map((k) => line(k, "2026-01-01T00:00:00.000Z", "T").text);
    assert.deepEqual(texts, [
      "alice created the group",
      "alice added bob",
      "alice joined",
      "alice declined the invitation",
      "alice removed bob",
      "alice left",
      'alice renamed the group to "T"',
      "alice made bob the owner",
      "alice made bob an admin",
      "alice removed bob as an admin",
    ]);
  });

  it("places lines among messages by time, keeps the messages' order, and cuts to the newest `limit`", () => {
    const m1 = msg("one", "2026-01-01T00:00:01.000Z");
    const m2 = msg("two", "2026-01-01T00:00:03.000Z");
    const l0 = line("added", "2026-01-01T00:00:00.500Z");
    const l1 = line("left", "2026-01-01T00:00:02.000Z");
    const l2 = line("admin", "2026-01-01T00:00:04.000Z");
    const all = mergeSystemLines([m1, m2], [l0, l1, l2], 10);
    assert.deepEqual(
      all.map((x) => ("at" in x ? x.system.kind : x.text)),
      ["added", "one", "left", "two", "admin"],
    );
    // A full page of messages: lines older than its first message belong to an older page.
    const page = mergeSystemLines([m1, m2], [l0, l1, l2], 2);
    assert.deepEqual(
      page.map((x) => ("at" in x ? x.system.kind : x.text)),
      ["two", "admin"],
    );
  });

  it("a hostile title cannot reach the terminal raw, and --json keeps the message keys with `system` last", () => {
    const row = systemFields(line("renamed", "2026-01-01T00:00:00.000Z", "x\u001b]0;pwned\u0007\u001b[2Jy"));
    assert.ok(row.text.includes("\u001b"), "positive control: the raw sentence carries the escape");
    const printed = messageLine(row);
    assert.ok(!printed.includes("\u001b") && !printed.includes("\u0007"), printed);
    assert.match(printed, /\[team\] — alice renamed the group to "x.*y" —$/);
    assert.equal(Object.keys(row).at(-1), "system");
    assert.deepEqual(row.system, { kind: "renamed", actor: "alice", target: null, title: row.system!.title });
  });

  it("the cached record is read defensively: unparsable entries are skipped, not rendered", async () => {
    const cache = new Cache(":memory:");
    try {
      cache.setState(
        "group_events:team",
        JSON.stringify([
          {
            cursor: "1",
            id: "0190f000-0000-7000-8000-000000000001",
            at: "2026-01-01T00:00:00.000Z",
            kind: "added",
            actor: "alice",
            target: "bob",
            title: null,
          },
          {
            cursor: "2",
            id: "not-a-uuid",
            at: "x",
            kind: "owned-everything",
            actor: "mallory",
            target: null,
            title: null,
          },
        ]),
      );
      assert.deepEqual(
        cachedSystemLines(cache, "team").map((l) => l.text),
        ["alice added bob"],
      );
      cache.setState("group_events:other", "{not json");
      assert.deepEqual(cachedSystemLines(cache, "other"), []);
    } finally {
      await cache.close();
    }
  });
});
