import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { ZmqchatError } from "../../core/errors.js";
import { openStore } from "../../server/store/index.js";
import { InfluxStore } from "../../server/store/influx.js";
import { type Influxd, startInfluxd } from "../helpers/influxd.js";

async function influxql(
  influxd: Influxd,
  q: string,
  auth?: { user: string; password: string },
): Promise<string> {
  const headers: Record<string, string> = {};
  if (auth)
    headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}`;
  const res = await fetch(`${influxd.url}/query`, {
    method: "POST",
    headers,
    body: new URLSearchParams({ q }),
  });
  return res.text();
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

describe("InfluxStore start-up and failures", () => {
  let influxd: Influxd;
  before(async () => {
    influxd = await startInfluxd();
  });
  after(() => influxd?.stop());

  it("says clearly when InfluxDB cannot be reached", async () => {
    const port = await closedPort();
    const store = InfluxStore.fromUrl(`influx://127.0.0.1:${port}/zmqchat?retry=300ms`, {});
    await assert.rejects(store.init(), (err: unknown) => {
      assert.ok(err instanceof ZmqchatError);
      assert.equal(err.code, "unavailable");
      assert.match(err.message, /cannot reach InfluxDB at http:\/\/127\.0\.0\.1:\d+/);
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(err.hint);
      return true;
    });
    await store.close();
  });

  it("creates the database and the retention policy, and changes its duration when told", async () => {
    const store = await openStore(`influx://127.0.0.1:${influxd.port}/fresh?retention=2d`, {});
    await store.append({ id: "0190f000-0000-7000-8000-000000000001", owners: ["bob"], envelope: "{}" });
    assert.equal((await store.read("bob", null, 10)).items.length, 1);
    await store.close();
    assert.match(await influxql(influxd, "SHOW DATABASES"), /"fresh"/);
    assert.match(await influxql(influxd, "SHOW RETENTION POLICIES ON fresh"), /"zmqchat","48h0m0s"/);
    const again = await openStore(`influx://127.0.0.1:${influxd.port}/fresh?retention=3d`, {});
    assert.match(await influxql(influxd, "SHOW RETENTION POLICIES ON fresh"), /"zmqchat","72h0m0s"/);
    assert.equal((await again.read("bob", null, 10)).items.length, 1, "the data lives in the policy");
    await again.close();
  });

  it("does not create the database when told not to, and says what to do", async () => {
    const store = InfluxStore.fromUrl(`influx://127.0.0.1:${influxd.port}/absent?create=false`, {});
    await assert.rejects(store.init(), (err: ZmqchatError) => {
      assert.equal(err.code, "unavailable");
      assert.match(err.message, /does not exist/);
      assert.match(err.hint ?? "", /DBRP/);
      return true;
    });
  });

  it("treats a 400 partial write as a failed append, never as success", async () => {
    const store = new InfluxStore({ url: influxd.url, db: "partial", retryForMs: 300 });
    await store.init();
    // Make the mailbox's id field an integer, so that InfluxDB drops our points with "partial write".
    const res = await fetch(`${influxd.url}/write?db=partial&precision=ns`, {
      method: "POST",
      // Field types are per shard: put the conflicting point in today's.
      body: `mailbox,owner=zed id=1i,envelope=2i ${Date.now()}000000`,
    });
    assert.equal(res.status, 204);
    await assert.rejects(
      store.append({ id: "0190f000-0000-7000-8000-000000000002", owners: ["bob"], envelope: "{}" }),
      (err: ZmqchatError) => {
        assert.equal(err.code, "unavailable");
        assert.match(err.message, /partial write|field type conflict/);
        return true;
      },
    );
    await store.close();
  });

  it("reports an error InfluxDB hides inside a 200 answer", async () => {
    const store = new InfluxStore({ url: influxd.url, db: "dropped", retryForMs: 300 });
    await store.init();
    await influxql(influxd, 'DROP DATABASE "dropped"');
    await assert.rejects(store.read("bob", null, 10), (err: ZmqchatError) => {
      assert.equal(err.code, "unavailable");
      assert.match(err.message, /database not found/);
      return true;
    });
    await store.close();
  });

  it("refuses credentials in the URL and names that could inject InfluxQL", async () => {
    assert.throws(() => InfluxStore.fromUrl("influx://u:p@127.0.0.1:8086/db", {}), { code: "usage" });
    assert.throws(() => InfluxStore.fromUrl("influx://127.0.0.1:8086/db?nope=1", {}), { code: "usage" });
    assert.throws(() => InfluxStore.fromUrl('influx://127.0.0.1:8086/db"x', {}), { code: "usage" });
    const store = new InfluxStore({ url: influxd.url, db: "inject" });
    await store.init();
    await store.registerUser({ name: "alice", keys: { sign: "s", enc: "e" } });
    const evil = ["alice' OR 'a'='a", 'x" OR 1=1', "a\\", "bob'; DROP DATABASE inject; --"];
    assert.deepEqual(await store.getUsers(evil), []);
    assert.equal(await store.getGroup(evil[0]!), null);
    for (const name of evil) {
      await assert.rejects(store.registerUser({ name, keys: { sign: "s", enc: "e" } }), {
        code: "bad_request",
      });
      await assert.rejects(store.read(name, null, 1), { code: "bad_request" });
      await assert.rejects(store.append({ id: "x", owners: [name], envelope: "{}" }), {
        code: "bad_request",
      });
    }
    await assert.rejects(store.read("alice", "1 OR time > 0", 1), { code: "bad_request" });
    await assert.rejects(store.read("alice", "99999999999999999999", 1), { code: "bad_request" });
    // Envelopes are data, whatever they hold.
    const nasty = `it's "quoted" \\ ' ; DROP DATABASE inject\n\ttab`;
    await store.append({ id: "0190f000-0000-7000-8000-000000000003", owners: ["alice"], envelope: nasty });
    assert.equal((await store.read("alice", null, 1)).items[0]?.envelope, nasty);
    assert.equal((await store.getUsers(["alice"])).length, 1);
    await store.close();
  });
});

describe("InfluxStore against an influxd with auth", () => {
  let influxd: Influxd;
  before(async () => {
    influxd = await startInfluxd({ auth: true });
  });
  after(() => influxd?.stop());

  it("says clearly when InfluxDB refuses the credentials", async () => {
    for (const env of [
      {},
      { ZMQCHAT_INFLUX_USER: "admin", ZMQCHAT_INFLUX_PASSWORD: "wrong" },
      { ZMQCHAT_INFLUX_TOKEN: "nope" },
    ]) {
      const store = InfluxStore.fromUrl(`${influxd.storeUrl("secured")}?retry=300ms`, env);
      await assert.rejects(store.init(), (err: ZmqchatError) => {
        assert.equal(err.code, "unavailable");
        assert.match(err.message, /refused the credentials/);
        assert.match(err.hint ?? "", /ZMQCHAT_INFLUX_USER/);
        return true;
      });
      await store.close();
    }
  });

  it("works with credentials from the environment", async () => {
    const admin = influxd.admin!;
    const store = await openStore(influxd.storeUrl("secured"), {
      ZMQCHAT_INFLUX_USER: admin.user,
      ZMQCHAT_INFLUX_PASSWORD: admin.password,
    });
    const r = await store.registerUser({ name: "alice", keys: { sign: "s", enc: "e" } });
    assert.equal(r.created, true);
    await store.close();
  });
});
