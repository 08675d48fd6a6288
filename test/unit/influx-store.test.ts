import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { Point } from "@influxdata/influxdb-client";
import { isoOf, LaneClock } from "../../server/store/influx/clock.js";
import { parseQueryResponse, rows, timeOf, V1Http } from "../../server/store/influx/http.js";
import { durationMs, goDurationMs, ident, nanos, str } from "../../server/store/influx/influxql.js";
import { parseRawJson, RawNumber } from "../../server/store/influx/raw-json.js";
import { InfluxStore } from "../../server/store/influx.js";

describe("raw JSON from InfluxDB", () => {
  it("keeps nanosecond times exact beyond 2^53", () => {
    const body =
      '{"results":[{"statement_id":0,"series":[{"name":"mailbox","tags":{"owner":"bob"},"columns":["time","id"],"values":[[1732493270123456789,"a"],[9223372036854775806,"b"]]}]}]}';
    const [series] = parseQueryResponse(body, "q")[0]!;
    const r = rows(series!);
    assert.equal(timeOf(r[0]!), 1732493270123456789n);
    assert.equal(timeOf(r[1]!), 9223372036854775806n);
    assert.notEqual(
      String(JSON.parse("1732493270123456789")),
      "1732493270123456789",
      "what JSON.parse would have done",
    );
    assert.deepEqual(series!.tags, { owner: "bob" });
  });

  it("decodes strings with escapes, unicode and nesting like JSON.parse", () => {
    const value = { a: ['x"y\\z\n\t\u0001', "grüße 🚀 👩‍👩‍👧", null, true, false, { b: [] }], c: {} };
    const parsed = parseRawJson(JSON.stringify(value));
    assert.deepEqual(parsed, value);
    assert.deepEqual(parseRawJson("[1.5e3,-2]"), [new RawNumber("1.5e3"), new RawNumber("-2")]);
    for (const bad of ["", "[1,", '{"a" 1}', '"open', "[1] x", "tru"])
      assert.throws(() => parseRawJson(bad), SyntaxError);
  });

  it("reads answers that come in many pieces, several at once, each whole and apart", async () => {
    // Answers are joined in one buffer that the next answer reuses (http.ts): two of different
    // sizes at once, each sent in many pieces, must each come out as sent.
    const answer = (n: number, tag: string) =>
      JSON.stringify({
        results: [
          {
            statement_id: 0,
            series: [
              {
                name: "mailbox",
                columns: ["time", "id", "envelope"],
                values: Array.from({ length: n }, (_, i) => [
                  `TIME${1732493270123456789n + BigInt(i)}TIME`,
                  `${tag}${i}`,
                  JSON.stringify({ v: 2, body: `${tag} ü "${i}"`.repeat(20) }),
                ]),
              },
            ],
          },
        ],
      }).replace(/"TIME(\d+)TIME"/g, "$1");
    const fake = createServer((req, res) => {
      let q = "";
      req.on("data", (c: Buffer) => {
        q += c.toString();
      });
      req.on("end", async () => {
        const body = Buffer.from(q.includes("big") ? answer(400, "big") : answer(3, "small"));
        res.writeHead(200, { "content-type": "application/json" });
        for (let at = 0; at < body.length; at += 1000) {
          res.write(body.subarray(at, at + 1000));
          await new Promise((r) => setImmediate(r));
        }
        res.end();
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const http = new V1Http({ url: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, db: "d" });
    try {
      const asked = ["big", "small", "big", "small", "small", "big"];
      const answers = await Promise.all(asked.map((q) => http.query(q)));
      answers.forEach((res, k) => {
        const tag = asked[k]!;
        const n = tag === "big" ? 400 : 3;
        const r = rows(res[0]![0]!);
        assert.equal(r.length, n);
        assert.equal(timeOf(r[n - 1]!), 1732493270123456789n + BigInt(n - 1));
        assert.equal(r[2]!.id, `${tag}2`);
        assert.deepEqual(JSON.parse(r[2]!.envelope as string), { v: 2, body: `${tag} ü "2"`.repeat(20) });
      });
    } finally {
      http.close();
      fake.close();
    }
  });

  it("turns an error inside a 200 answer, or at the top, into a failure", () => {
    assert.throws(
      () =>
        parseQueryResponse(
          '{"results":[{"statement_id":0},{"statement_id":1,"error":"database not found: x"}]}',
          "q",
        ),
      /database not found/,
    );
    assert.throws(() => parseQueryResponse('{"error":"error parsing query"}', "q"), /error parsing query/);
    assert.throws(() => parseQueryResponse("<html>", "q"), /unreadable/);
    assert.deepEqual(parseQueryResponse('{"results":[{"statement_id":0}]}', "q"), [[]]);
  });
});

describe("InfluxQL text", () => {
  it("escapes identifiers and strings so nothing breaks out", () => {
    assert.equal(ident('we"ird\\'), '"we\\"ird\\\\"');
    assert.equal(str("it's \\ "), "'it\\'s \\\\ '");
    assert.throws(() => str("line\nbreak"), /control character/);
    assert.throws(() => ident("nul\u0000"), /control character/);
  });

  it("lets only digits through as timestamps", () => {
    assert.equal(nanos("1732493270123456789"), "1732493270123456789");
    assert.equal(nanos(5n), "5");
    for (const bad of ["", "1 OR 1=1", "-1", "01", "12345678901234567890", "1e9"])
      assert.throws(() => nanos(bad));
  });

  it("reads durations both ways", () => {
    assert.equal(durationMs("30d"), 30 * 86400e3);
    assert.equal(durationMs("500ms"), 500);
    assert.equal(durationMs("INF"), Number.POSITIVE_INFINITY);
    assert.equal(goDurationMs("720h0m0s"), 30 * 86400e3);
    assert.equal(goDurationMs("1h30m0s"), 5400e3);
    assert.equal(goDurationMs("0s"), Number.POSITIVE_INFINITY);
  });
});

describe("lane clock", () => {
  it("is strictly increasing within a millisecond and when the wall clock steps back", () => {
    let now = 1_732_493_270_000;
    const clock = new LaneClock(42, () => now);
    const stamps: bigint[] = [];
    for (let i = 0; i < 2500; i++) stamps.push(clock.next());
    now -= 5000;
    for (let i = 0; i < 10; i++) stamps.push(clock.next());
    now += 10_000;
    stamps.push(clock.next());
    for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i]! > stamps[i - 1]!, `stamp ${i} increases`);
    for (const s of stamps) assert.equal(s % 1000n, 42n, "every stamp carries the lane");
    assert.equal(stamps.at(-1), BigInt(now) * 1_000_000n + 42n);
    assert.equal(isoOf(stamps[0]!), "2024-11-25T00:07:50.000Z");
  });

  it("runs on from a stamp taken ahead, strictly increasing and on its lane", () => {
    let now = 1_732_493_270_000;
    const clock = new LaneClock(7, () => now);
    const first = clock.next();
    const promise = clock.ahead(100);
    assert.equal(promise, BigInt(now + 100) * 1_000_000n + 7n);
    const stamps = [first, promise];
    for (let i = 0; i < 1500; i++) stamps.push(clock.next());
    now += 50;
    stamps.push(clock.ahead(20), clock.next());
    now += 1000;
    stamps.push(clock.next());
    for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i]! > stamps[i - 1]!, `stamp ${i} increases`);
    for (const s of stamps) assert.equal(s % 1000n, 7n, "every stamp carries the lane");
    assert.equal(stamps.at(-1), BigInt(now) * 1_000_000n + 7n, "back on the wall clock once it passed");
  });

  it("stamps above a stamp it observed, from another lane's clock run ahead", () => {
    let now = 1_732_493_270_000;
    const a = new LaneClock(1, () => now);
    const b = new LaneClock(2, () => now);
    a.ahead(50); // a is idle and has promised 50 ms ahead: its stamps run on from there
    const fromA = a.next();
    now += 3;
    // The positive control: without observing, b's later stamp sorts below a's earlier one.
    const unaware = b.next();
    assert.ok(unaware < fromA, "b's clock alone stamps below a's stamp");
    b.observe(fromA, 50);
    const stamps = [fromA, b.next()];
    for (let i = 0; i < 1200; i++) stamps.push(b.next());
    for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i]! > stamps[i - 1]!, `stamp ${i} increases`);
    for (const s of stamps.slice(1)) assert.equal(s % 1000n, 2n, "b's stamps stay on b's lane");
    // An older stamp, or one of the same millisecond and sequence, moves nothing back.
    const before = b.next();
    b.observe(unaware, 50);
    b.observe(before - 1n, 50);
    assert.ok(b.next() > before);
    // Seen within the same millisecond at a later sequence: the next stamp is above it.
    const c = new LaneClock(3, () => now);
    c.next();
    const late = BigInt(now) * 1_000_000n + 500n * 1000n + 9n;
    c.observe(late, 50);
    assert.equal(c.next(), late + 1000n - 9n + 3n);
  });

  it("is carried no further than maxAheadMs past its wall clock by a stamp it observed", () => {
    const now = 1_732_493_270_000;
    const clock = new LaneClock(5, () => now);
    // A stamp from a server whose clock is an hour fast.
    const far = BigInt(now + 3_600_000) * 1_000_000n + 5n;
    clock.observe(far, 50);
    const next = clock.next();
    assert.ok(next > BigInt(now + 50) * 1_000_000n, "moved up to the limit");
    assert.ok(next < BigInt(now + 51) * 1_000_000n, "and no further");
    assert.equal(next % 1000n, 5n);
  });

  it("never gives two lanes the same stamp", () => {
    const now = () => 1_732_493_270_000;
    const a = new LaneClock(1, now);
    const b = new LaneClock(2, now);
    const seen = new Set<bigint>();
    for (let i = 0; i < 3000; i++) {
      seen.add(a.next());
      seen.add(b.next());
    }
    assert.equal(seen.size, 6000);
  });
});

describe("line protocol through the client's Point", () => {
  it("escapes envelopes so any text survives", () => {
    const line = new Point("mailbox")
      .tag("owner", "bob")
      .stringField("envelope", 'a "q" \\ b\nc')
      .timestamp("1732493270123456789")
      .toLineProtocol();
    assert.equal(line, 'mailbox,owner=bob envelope="a \\"q\\" \\\\ b\nc" 1732493270123456789');
  });
});

describe("InfluxStore.fromUrl", () => {
  it("takes credentials from the environment only", async () => {
    assert.throws(() => InfluxStore.fromUrl("influx://user:pw@h:8086/db", {}), { code: "usage" });
    // What reaches InfluxDB: a fake v1 endpoint on a free loopback port records the
    // Authorization header of the first request and refuses it.
    const seen: (string | undefined)[] = [];
    const fake = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(401, { "content-type": "application/json" }).end('{"error":"authorization failed"}');
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const port = (fake.address() as AddressInfo).port;
    const firstAuth = async (env: NodeJS.ProcessEnv): Promise<string | undefined> => {
      seen.length = 0;
      const store = InfluxStore.fromUrl(`influx://127.0.0.1:${port}/db?retry=10ms&timeout=2s`, env);
      await assert.rejects(store.init());
      await store.close();
      assert.ok(seen.length >= 1, "the store sent no request");
      return seen[0];
    };
    try {
      const basic = `Basic ${Buffer.from("u:p").toString("base64")}`;
      assert.equal(await firstAuth({ ZMQCHAT_INFLUX_USER: "u", ZMQCHAT_INFLUX_PASSWORD: "p" }), basic);
      assert.equal(await firstAuth({ ZMQCHAT_INFLUX_TOKEN: "t0k" }), "Token t0k");
      assert.equal(await firstAuth({}), undefined);
    } finally {
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });

  it("refuses what it does not understand", () => {
    for (const bad of [
      "influx://h:8086/",
      "influx://h:8086/db?retention=forever",
      "influx://h:8086/db?window=soon",
      "influx://h:8086/db?batch=0",
      "influx://h:8086/db?what=1",
      "http://h:8086/db",
    ]) {
      assert.throws(() => InfluxStore.fromUrl(bad, {}), { code: "usage" }, bad);
    }
  });

  it("refuses work before init", async () => {
    const store = InfluxStore.fromUrl("influx://127.0.0.1:1/db", {});
    await assert.rejects(store.read("bob", null, 1), { code: "unavailable" });
    await assert.rejects(store.append({ id: "x", owners: ["bob"], envelope: "" }), { code: "unavailable" });
  });
});
