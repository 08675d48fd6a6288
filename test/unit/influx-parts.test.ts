import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import type { Point } from "@influxdata/influxdb-client";
import { ZmqchatError } from "../../core/errors.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { bootstrap } from "../../server/store/influx/bootstrap.js";
import { Claims } from "../../server/store/influx/claims.js";
import { LaneClock, nowNs } from "../../server/store/influx/clock.js";
import { InfluxContext } from "../../server/store/influx/context.js";
import { GroupCommit } from "../../server/store/influx/group-commit.js";
import { V1Http } from "../../server/store/influx/http.js";
import { IdIndex } from "../../server/store/influx/id-index.js";
import { LaneLease } from "../../server/store/influx/lane-lease.js";
import { MailboxReader } from "../../server/store/influx/mailbox-read.js";
import { optionsFromUrl } from "../../server/store/influx/options.js";
import { retrying } from "../../server/store/influx/retry.js";
import { SafetyWindow } from "../../server/store/influx/window.js";
import { answer, FakeV1 } from "./influx-fake-v1.js";

// Each mechanism of the InfluxDB store against a fake v1 HTTP endpoint (influx-fake-v1.ts);
// the real influxd runs them together in test/integration/influx-store-contract.test.ts.

let fake: FakeV1;
let http: V1Http;
before(async () => {
  fake = await FakeV1.start();
});
after(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.writes.length = 0;
  fake.queries.length = 0;
  fake.points.length = 0;
  fake.onWrite = () => undefined;
  fake.onQuery = () => answer([]);
  http?.close();
  http = new V1Http({ url: fake.url, db: "db", timeoutMs: 2000 });
});

const ctxOf = (opts: { windowMs?: number; retryForMs?: number } = {}) =>
  new InfluxContext(
    http,
    { retryForMs: opts.retryForMs ?? 2000, where: "the fake" },
    new SafetyWindow(opts.windowMs ?? 30),
    undefined,
  );

describe("store URL and environment", () => {
  it("maps every URL parameter and the credentials from the environment to options", () => {
    assert.deepEqual(
      optionsFromUrl(
        "influxs://db.example:8443/chat?retention=30d&rp=keep&window=250ms&retry=2s&batch=500&timeout=3s&create=false",
        { ZMQCHAT_INFLUX_USER: "u", ZMQCHAT_INFLUX_PASSWORD: "p", ZMQCHAT_INFLUX_CONSISTENCY: "quorum" },
      ),
      {
        consistency: "quorum",
        url: "https://db.example:8443",
        db: "chat",
        retention: "30d",
        rp: "keep",
        username: "u",
        password: "p",
        safetyWindowMs: 250,
        retryForMs: 2000,
        timeoutMs: 3000,
        maxBatchPoints: 500,
        createDatabase: false,
      },
    );
    assert.deepEqual(optionsFromUrl("influx://h/db", { ZMQCHAT_INFLUX_TOKEN: "t" }), {
      url: "http://h:8086",
      db: "db",
      token: "t",
    });
    assert.throws(() => optionsFromUrl("influx://h/db", { ZMQCHAT_INFLUX_CONSISTENCY: "most" }), {
      code: "usage",
    });
  });
});

describe("the one retry helper", () => {
  it("retries 5xx until it works, and gives up at once on a 4xx", async () => {
    let failures = 2;
    fake.onWrite = () => (failures-- > 0 ? { status: 503, body: '{"error":"busy"}' } : undefined);
    const ctx = ctxOf();
    await ctx.write(["m v=1 1"], "write");
    assert.equal(fake.writes.length, 3, "two refusals, then the write");
    fake.writes.length = 0;
    fake.onWrite = () => ({ status: 400, body: '{"error":"partial write"}' });
    await assert.rejects(ctx.write(["m v=1 1"], "write a thing"), (e: Error & { code?: string }) => {
      assert.equal(e.code, "unavailable");
      assert.match(e.message, /failed to write a thing: HTTP 400: partial write/);
      return true;
    });
    assert.equal(fake.writes.length, 1, "a 4xx is not retried");
  });

  it("stops at its deadline, and lets the store's own errors through untouched", async () => {
    fake.onWrite = () => ({ status: 500, body: '{"error":"down"}' });
    // A second attempt comes after the first refusal (a pause of tens of ms): 1 s of retrying
    // leaves room for it even when a loaded machine makes the first attempt slow.
    await assert.rejects(ctxOf({ retryForMs: 1000 }).write(["m v=1 1"], "write"), { code: "unavailable" });
    assert.ok(fake.writes.length >= 2, `${fake.writes.length} attempts`);
    let calls = 0;
    await assert.rejects(
      retrying({ retryForMs: 1000, where: "x" }, "x", async () => {
        calls++;
        throw new ZmqchatError("conflict", "mine");
      }),
      { code: "conflict" },
    );
    assert.equal(calls, 1, "a ZmqchatError is never retried");
  });
});

describe("bootstrap", () => {
  it("creates a missing database, and refuses to with create=false", async () => {
    fake.onQuery = (q) =>
      q === "SHOW DATABASES" ? answer([{ columns: ["name"], values: [["_internal"]] }]) : answer([]);
    const o = { db: "chat", rp: undefined, retention: undefined, createDatabase: true };
    await bootstrap(ctxOf(), o);
    assert.deepEqual(fake.queries, ["SHOW DATABASES", 'CREATE DATABASE "chat"']);
    fake.queries.length = 0;
    await assert.rejects(bootstrap(ctxOf(), { ...o, createDatabase: false }), /database does not exist/);
    assert.deepEqual(fake.queries, ["SHOW DATABASES"]);
  });

  it("creates the retention policy, or changes its duration only when it differs", async () => {
    let policies: unknown[][] = [];
    fake.onQuery = (q) =>
      q === "SHOW DATABASES"
        ? answer([{ columns: ["name"], values: [["chat"]] }])
        : q.startsWith("SHOW RETENTION")
          ? answer(policies.length ? [{ columns: ["name", "duration"], values: policies }] : [])
          : answer([]);
    const o = { db: "chat", rp: "keep", retention: "30d", createDatabase: true };
    await bootstrap(ctxOf(), o);
    assert.equal(fake.queries.at(-1), 'CREATE RETENTION POLICY "keep" ON "chat" DURATION 30d REPLICATION 1');
    policies = [["keep", "720h0m0s"]];
    fake.queries.length = 0;
    await bootstrap(ctxOf(), o);
    assert.deepEqual(fake.queries, ["SHOW DATABASES", 'SHOW RETENTION POLICIES ON "chat"'], "same duration");
    await bootstrap(ctxOf(), { ...o, retention: "7d" });
    assert.equal(fake.queries.at(-1), 'ALTER RETENTION POLICY "keep" ON "chat" DURATION 7d');
    policies = [];
    await assert.rejects(bootstrap(ctxOf(), { ...o, retention: undefined }), /no retention policy keep/);
  });
});

describe("lane lease", () => {
  /** Answers lane reads from the marks written so far, with `rivals` (earlier, live) added. */
  function lanesFromMarks(rivals: Array<{ lane: number; holder: string }>) {
    fake.onQuery = (q) => {
      const only = /"lane" = '(\d+)'/.exec(q)?.[1];
      const series = new Map<
        string,
        { tags: Record<string, string>; columns: string[]; values: unknown[][] }
      >();
      for (const r of rivals)
        series.set(`${r.lane}/${r.holder}`, {
          tags: { lane: String(r.lane), holder: r.holder },
          columns: ["time", "alive"],
          values: [[1n, true]],
        });
      for (const p of fake.points.filter((x) => x.measurement === "lanes")) {
        const key = `${p.tags.lane}/${p.tags.holder}`;
        const s = series.get(key) ?? { tags: { ...p.tags }, columns: ["time", "alive"], values: [] };
        s.values.push([p.ts, p.fields.alive]);
        series.set(key, s);
      }
      return answer([...series.values()].filter((s) => only === undefined || s.tags.lane === only));
    };
  }

  it("takes a free lane, moves on when an earlier live mark holds it, and releases it", async () => {
    // Every lane but 7 and 8 is held; whichever of them is tried first turns out taken.
    const rivals = Array.from({ length: 1000 }, (_, lane) => ({ lane, holder: "other" })).filter(
      (r) => r.lane !== 7 && r.lane !== 8,
    );
    lanesFromMarks(rivals);
    const realWrite = fake.onWrite;
    fake.onWrite = (body) => {
      const lane = Number(/lane=(\d+)/.exec(body)?.[1]);
      if (!rivals.some((r) => r.holder === "early")) rivals.push({ lane, holder: "early" });
      return realWrite(body);
    };
    const lease = new LaneLease(ctxOf(), 60_000, "me");
    await lease.lease();
    try {
      const marks = fake.points.filter((p) => p.measurement === "lanes");
      assert.equal(marks.length, 2, "two marks: the lost lane and the won one");
      assert.notEqual(marks[0]!.tags.lane, marks[1]!.tags.lane);
      assert.equal(lease.clock?.lane, Number(marks[1]!.tags.lane));
      assert.ok([7, 8].includes(lease.clock!.lane));
    } finally {
      await lease.release();
    }
    const last = fake.points.at(-1)!;
    assert.deepEqual([last.tags.holder, last.fields.alive], ["me", false], "released");
  });
});

describe("first-claim agreement", () => {
  const claimRow = (id: string, ts: bigint, owner: string) => ({
    tags: { name: "team", claim: id },
    columns: ["time", "owner", "void"],
    values: [[ts, owner, false]],
  });

  it("the earliest claim wins, read after the window has passed this one", async () => {
    let clock = new LaneClock(1);
    const claims = new Claims(ctxOf({ windowMs: 300 }), () => clock.next());
    const rivalTs = nowNs() - 1n;
    fake.onQuery = () => {
      const mine = fake.points.filter((p) => p.measurement === "groups");
      return answer([
        claimRow("rival", rivalTs, "bob"),
        ...mine.map((p) => claimRow(p.tags.claim!, p.ts, String(p.fields.owner))),
      ]);
    };
    // The rival's claim is younger than the window: this server claims too, then loses.
    const lost = await claims.claim("groups", "team", ["owner"], (p: Point) =>
      p.stringField("owner", "alice"),
    );
    assert.deepEqual([lost.created, lost.winner.id, lost.winner.fields.owner], [false, "rival", "bob"]);
    assert.equal(fake.writes.length, 1, "one claim written");
    fake.points.length = 0;
    fake.onQuery = () =>
      answer(
        fake.points
          .filter((p) => p.measurement === "groups" && p.fields.void === false)
          .map((p) => claimRow(p.tags.claim!, p.ts, String(p.fields.owner))),
      );
    clock = new LaneClock(2);
    const won = await claims.claim("groups", "team", ["owner"], (p: Point) =>
      p.stringField("owner", "alice"),
    );
    assert.equal(won.created, true);
  });

  it("withdraws a claim whose write took over half the window, and claims again", async () => {
    const claims = new Claims(ctxOf({ windowMs: 400 }), () => new LaneClock(3).next());
    let slow = true;
    fake.onWrite = async () => {
      if (slow) await new Promise((r) => setTimeout(r, 300));
      slow = false;
      return undefined;
    };
    fake.onQuery = () =>
      answer(
        fake.points
          .filter(
            (p) =>
              p.measurement === "groups" &&
              !fake.points.some((v) => v.tags.claim === p.tags.claim && v.fields.void === true),
          )
          .map((p) => claimRow(p.tags.claim!, p.ts, String(p.fields.owner))),
      );
    const r = await claims.claim("groups", "team", ["owner"], (p: Point) => p.stringField("owner", "alice"));
    assert.equal(r.created, true);
    const voids = fake.points.filter((p) => p.fields.void === true);
    assert.ok(voids.length >= 1, "the slow claim was withdrawn");
    assert.ok(
      voids.every((v) => v.tags.claim !== r.winner.id),
      "and a fresh one won",
    );
  });
});

/** Answers mailbox queries (pages, ids before a cursor, resend lookups) from the points written so far. */
function mailboxFromPoints(): void {
  fake.onQuery = (q) =>
    answer(
      ...q.split("; ").map((statement) => {
        const owners = [...statement.matchAll(/"owner" = '([^']+)'/g)].map((m) => m[1]!);
        const gt = /time > (\d+)/.exec(statement)?.[1];
        const le = /time <= (\d+)/.exec(statement)?.[1];
        const ge = /time >= (\d+)/.exec(statement)?.[1];
        const limit = Number(/LIMIT (\d+)/.exec(statement)?.[1] ?? 1e9);
        return owners.map((owner) => ({
          tags: { owner },
          columns: ["time", "id", "envelope"],
          values: fake
            .mailbox(owner)
            .filter(
              (p) =>
                (gt === undefined || p.ts > BigInt(gt)) &&
                (le === undefined || p.ts <= BigInt(le)) &&
                (ge === undefined || p.ts >= BigInt(ge)),
            )
            .slice(0, limit)
            .map((p) => [p.ts, p.fields.id, p.fields.envelope]),
        }));
      }),
    );
}

describe("safety-window reads", () => {
  function lateWriter(windowMs: number) {
    // Stamped a little in the past, so that with no window nothing is waited for.
    const clock = new LaneClock(4, () => Date.now() - 10);
    // Another server stamped `early` before `late`, but its write lands only after the first read.
    const early = clock.next();
    const late = clock.next();
    fake.points.push({
      measurement: "mailbox",
      tags: { owner: "bob" },
      fields: { id: "late", envelope: '"late"' },
      ts: late,
    });
    mailboxFromPoints();
    const answerPage = fake.onQuery;
    let reads = 0;
    fake.onQuery = (q) => {
      const a = answerPage(q);
      if (++reads === 1)
        fake.points.push({
          measurement: "mailbox",
          tags: { owner: "bob" },
          fields: { id: "early", envelope: '"early"' },
          ts: early,
        });
      return a;
    };
    return new MailboxReader(ctxOf({ windowMs }), () => null);
  }

  it("does not jump over a point stamped earlier but committed later", async () => {
    const page = await lateWriter(1000).read("bob", null, 10);
    assert.deepEqual(
      page.items.map((i) => i.envelope),
      ['"early"', '"late"'],
      "both points in timestamp order, the late-committed one included",
    );
    assert.match(fake.queries[1]!, /time <= \d+/, "read again up to the boundary after the window");
  });

  it("positive control: with no window the late point is jumped over", async () => {
    const page = await lateWriter(0).read("bob", null, 10);
    assert.deepEqual(
      page.items.map((i) => i.envelope),
      ['"late"'],
    );
  });

  it("hands out the first copy of an id only, also when the second lies pages later", async () => {
    const clock = new LaneClock(7, () => Date.now() - 2000);
    const put = (id: string) =>
      fake.points.push({
        measurement: "mailbox",
        tags: { owner: "bob" },
        fields: { id, envelope: `"${id}"` },
        ts: clock.next(),
      });
    // Two servers stored x and y twice, racing (the copies lie within the window of each other).
    for (const id of ["a", "x", "y", "b", "x", "y", "c"]) put(id);
    mailboxFromPoints();
    const reader = new MailboxReader(ctxOf({ windowMs: 100 }), () => null);
    const seen: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const page: { items: { cursor: string; envelope: string }[]; more: boolean } = await reader.read(
        "bob",
        after,
        1,
      );
      seen.push(...page.items.map((i) => JSON.parse(i.envelope) as string));
      if (!page.more) break;
      after = page.items.at(-1)!.cursor;
    }
    assert.deepEqual(seen, ["a", "x", "y", "b", "c"]);
  });

  it("never hands out a position at or past a local batch still in flight", async () => {
    const clock = new LaneClock(5);
    const a = clock.next();
    const inflight = clock.next();
    const b = clock.next();
    for (const [id, ts] of [
      ["a", a],
      ["b", b],
    ] as const)
      fake.points.push({
        measurement: "mailbox",
        tags: { owner: "bob" },
        fields: { id, envelope: "{}" },
        ts,
      });
    mailboxFromPoints();
    const page = await new MailboxReader(ctxOf({ windowMs: 0 }), () => inflight).read("bob", null, 10);
    assert.deepEqual(
      page.items.map((i) => i.cursor),
      [a.toString()],
    );
    assert.equal(page.more, true);
  });
});

describe("pages read ahead", () => {
  const clock = new LaneClock(9, () => Date.now() - 5000);
  const put = (id: string) =>
    fake.points.push({
      measurement: "mailbox",
      tags: { owner: "bob" },
      fields: { id, envelope: `"${id}"` },
      ts: clock.next(),
    });
  const idsOf = (page: { items: { envelope: string }[] }) =>
    page.items.map((i) => JSON.parse(i.envelope) as string);
  /** Page reads after `cursor` that reached the fake. */
  const readsAfter = (cursor: string) => fake.queries.filter((q) => q.includes(`time > ${cursor} `)).length;
  const quiet = async () => {
    for (let n = -1; n !== fake.queries.length; ) {
      n = fake.queries.length;
      await new Promise((r) => setTimeout(r, 30));
    }
  };
  /** Reads pages of `limit` after `after` until one says there is no more: the ids, and the last cursor. */
  const walk = async (reader: MailboxReader, after: string | null, limit: number, pause = false) => {
    const seen: string[] = [];
    for (let pages = 0; pages < 20; pages++) {
      const page = await reader.read("bob", after, limit);
      seen.push(...idsOf(page));
      after = page.items.at(-1)?.cursor ?? after;
      if (!page.more) break;
      if (pause) await quiet();
    }
    return { seen, after };
  };

  it("a page that says there is more has the next one read at once, served once to the reader who asks", async () => {
    for (const id of ["a", "b", "c", "d", "e"]) put(id);
    mailboxFromPoints();
    const reader = new MailboxReader(ctxOf({ windowMs: 100 }), () => null, null, true);
    const first = await reader.read("bob", null, 2);
    assert.deepEqual(idsOf(first), ["a", "b"]);
    await quiet();
    const cursor = first.items.at(-1)!.cursor;
    assert.equal(readsAfter(cursor), 1, "read ahead before anyone asked");
    // Another page size is another page: read afresh.
    assert.deepEqual(idsOf(await reader.read("bob", cursor, 3)), ["c", "d", "e"]);
    assert.equal(readsAfter(cursor), 2);
    const second = await reader.read("bob", cursor, 2);
    assert.equal(readsAfter(cursor), 2, "served from what was read ahead");
    assert.deepEqual(
      second,
      await new MailboxReader(ctxOf({ windowMs: 100 }), () => null).read("bob", cursor, 2),
    );
    // A message that lands meanwhile is read in its place, once: every message once, in order.
    await quiet();
    put("f");
    const rest = await walk(reader, second.items.at(-1)!.cursor, 2);
    assert.deepEqual([...idsOf(first), ...idsOf(second), ...rest.seen], ["a", "b", "c", "d", "e", "f"]);
    await quiet();
    assert.equal(readsAfter(rest.after!), 0, "nothing read ahead of a page that said there is no more");
  });

  it("a page read ahead takes the ids before its cursor from the page before, not from InfluxDB again", async () => {
    for (const id of ["a", "b", "c", "d", "e"]) put(id);
    mailboxFromPoints();
    const reader = new MailboxReader(ctxOf({ windowMs: 100 }), () => null, null, true);
    const { seen } = await walk(reader, null, 2);
    assert.deepEqual(seen, ["a", "b", "c", "d", "e"]);
    assert.equal(
      fake.queries.filter((q) => q.includes('SELECT "id" FROM')).length,
      0,
      "no page read the ids before its cursor",
    );
  });

  it("a page read ahead still hands out the first copy of an id only, the second lying pages later", async () => {
    // Two servers stored x and y twice, racing (the copies lie within the window of each other).
    for (const id of ["a", "x", "y", "b", "x", "y", "c", "d"]) put(id);
    mailboxFromPoints();
    for (const limit of [1, 2, 3]) {
      const reader = new MailboxReader(ctxOf({ windowMs: 100 }), () => null, null, true);
      const { seen } = await walk(reader, null, limit, true);
      assert.deepEqual(seen, ["a", "x", "y", "b", "c", "d"], `pages of ${limit}`);
    }
  });

  it("a page read ahead that said there was no more is not served: what landed since is read", async () => {
    for (const id of ["a", "b", "c"]) put(id);
    mailboxFromPoints();
    const reader = new MailboxReader(ctxOf({ windowMs: 100 }), () => null, null, true);
    const first = await reader.read("bob", null, 2);
    await quiet();
    put("d");
    const next = await reader.read("bob", first.items.at(-1)!.cursor, 2);
    assert.deepEqual(idsOf(next), ["c", "d"], "not the page read ahead, which ended at c");
  });
});

describe("group commit", () => {
  const id = (n: number) => `0190f000-0000-7000-8000-${String(n).padStart(12, "0")}`;
  const commitOf = (o: { retryForMs?: number } = {}) => {
    const clock = new LaneClock(6);
    return new GroupCommit(
      ctxOf(o),
      { maxBatchPoints: 2000, maxBatchBytes: 4 << 20, dedupeWindowMs: 3600_000, safetyWindowMs: 500 },
      () => clock.next(),
    );
  };

  it("writes concurrent appends in one request and stores a resend in the same batch once", async () => {
    mailboxFromPoints();
    const gc = commitOf();
    const batches: number[] = [];
    gc.metrics = { batch: (n) => batches.push(n), error() {} };
    const results = await Promise.all([
      ...Array.from({ length: 50 }, (_, i) =>
        gc.append({ id: id(i), owners: ["bob", "alice"], envelope: `{"n":${i}}` }),
      ),
      gc.append({ id: id(3), owners: ["bob", "alice"], envelope: '{"n":3}' }),
    ]);
    assert.equal(fake.writes.length, 1, "one HTTP write");
    assert.deepEqual(batches, [51]);
    assert.equal(fake.mailbox("bob").length, 50);
    assert.equal(fake.mailbox("alice").length, 50);
    assert.equal(results[50]!.duplicate, true);
    assert.deepEqual(results[50]!.placed.get("bob"), results[3]!.placed.get("bob"));
    assert.equal(new Set(results.slice(0, 50).map((r) => r.placed.get("bob")!.cursor)).size, 50);
  });

  it("retries a failed write and settles every append once it lands; a refused one rejects all", async () => {
    mailboxFromPoints();
    let failures = 1;
    fake.onWrite = () => (failures-- > 0 ? { status: 503, body: '{"error":"busy"}' } : undefined);
    const gc = commitOf();
    const results = await Promise.all(
      [1, 2, 3].map((n) => gc.append({ id: id(n), owners: ["bob"], envelope: "{}" })),
    );
    assert.equal(fake.writes.length, 2);
    assert.equal(fake.mailbox("bob").length, 3);
    assert.ok(results.every((r) => !r.duplicate));
    fake.writes.length = 0;
    fake.onWrite = () => ({ status: 400, body: '{"error":"field type conflict"}' });
    const errors: string[] = [];
    const failed = commitOf();
    failed.metrics = { batch() {}, error: (op) => errors.push(op) };
    const outcomes = await Promise.allSettled(
      [4, 5].map((n) => failed.append({ id: id(n), owners: ["bob"], envelope: "{}" })),
    );
    assert.deepEqual(
      outcomes.map((o) => o.status === "rejected" && (o.reason as { code?: string }).code),
      ["unavailable", "unavailable"],
    );
    assert.equal(fake.writes.length, 1, "a 4xx is not retried");
    assert.deepEqual(errors, ["append"]);
  });

  it("a request cut into several batches has none of its later ones stored once one failed", async () => {
    mailboxFromPoints();
    const clock = new LaneClock(3);
    const opts = { maxBatchPoints: 2, maxBatchBytes: 4 << 20, dedupeWindowMs: 3600_000, safetyWindowMs: 500 };
    const gc = new GroupCommit(ctxOf(), opts, () => clock.next());
    let writes = 0;
    fake.onWrite = () =>
      writes++ === 0 ? { status: 400, body: '{"error":"field type conflict"}' } : undefined;
    const request = gc.appendMany(
      [1, 2, 3, 4].map((n) => ({ id: id(n), owners: ["bob"], envelope: `"${n}"` })),
    );
    // Another request queued behind it is not its business: stored.
    const other = gc.append({ id: id(5), owners: ["bob"], envelope: '"5"' });
    await assert.rejects(request);
    await other;
    assert.deepEqual(
      fake.mailbox("bob").map((p) => p.fields.envelope),
      ['"5"'],
      "nothing of the failed request: its resend keeps its order",
    );
    assert.equal(fake.writes.length, 2, "its second batch was never written");
  });

  it("looks for stored copies again when the lookup took over half the window", async () => {
    mailboxFromPoints();
    const answerQuery = fake.onQuery;
    let lookups = 0;
    fake.onQuery = async (q: string) => {
      if (++lookups === 1) await new Promise((r) => setTimeout(r, 1500));
      return answerQuery(q);
    };
    const clock = new LaneClock(8);
    // A window wide enough that the second lookup stays under its half on a loaded machine
    // (with 100 ms, a second lookup that took over 50 ms was done a third time).
    const gc = new GroupCommit(
      ctxOf(),
      { maxBatchPoints: 2000, maxBatchBytes: 4 << 20, dedupeWindowMs: 3600_000, safetyWindowMs: 2000 },
      () => clock.next(),
    );
    await gc.append({ id: id(1), owners: ["bob"], envelope: "{}" });
    assert.equal(lookups, 2, "a slow lookup is done again before stamping");
  });

  it("writes a batch's id index points before its copies; a refused index write stores no copy", async () => {
    mailboxFromPoints();
    const ctx = ctxOf();
    const index = new IdIndex(ctx);
    await index.start();
    fake.writes.length = 0;
    const clock = new LaneClock(7);
    const opts = {
      maxBatchPoints: 2000,
      maxBatchBytes: 4 << 20,
      dedupeWindowMs: 3600_000,
      safetyWindowMs: 500,
    };
    const gc = new GroupCommit(ctx, opts, () => clock.next(), null, 0n, index);
    const msg = uuidv7();
    const r = await gc.append({ id: msg, owners: ["bob", "alice"], envelope: "{}" });
    assert.equal(fake.writes.length, 2);
    const [first, second] = fake.writes.map((w) => w.split("\n"));
    assert.deepEqual(
      first!.map((l) => l.split(",")[0]),
      ["msg_ids", "msg_ids"],
      "the index first, in a request of its own",
    );
    assert.deepEqual(
      second!.map((l) => l.split(",")[0]),
      ["mailbox", "mailbox"],
    );
    assert.ok(first!.every((l) => l.includes(`id="${msg}"`)));
    assert.ok(first!.some((l) => l.includes(`at="${r.placed.get("bob")!.cursor}"`)));
    fake.writes.length = 0;
    fake.onWrite = (body) =>
      body.startsWith("msg_ids") ? { status: 400, body: '{"error":"partial write"}' } : undefined;
    await assert.rejects(gc.append({ id: uuidv7(), owners: ["bob", "alice"], envelope: "{}" }));
    assert.equal(fake.writes.length, 1, "no mailbox write after the index write failed");
    assert.equal(fake.mailbox("bob").length, 1);
  });

  it("finds a resend's first copy already stored and writes nothing", async () => {
    mailboxFromPoints();
    const gc = commitOf();
    const first = await gc.append({ id: id(9), owners: ["bob"], envelope: "{}" });
    const again = await gc.append({ id: id(9), owners: ["bob"], envelope: "{}" });
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.placed.get("bob"), first.placed.get("bob"));
    assert.equal(fake.mailbox("bob").length, 1);
  });
});
