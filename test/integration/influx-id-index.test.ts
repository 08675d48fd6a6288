import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { uuidv7 } from "../../core/protocol/ids.js";
import { V1Http } from "../../server/store/influx/http.js";
import { InfluxStore } from "../../server/store/influx.js";
import { type Influxd, startInfluxd } from "../helpers/influxd.js";

/** The index slot of an id, computed here independently of id-index.ts: UUIDv7 ms × 10^6 + SHA-256 mod 10^6. */
function slotOf(id: string): bigint {
  const ms = BigInt(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16));
  return ms * 1_000_000n + BigInt(createHash("sha256").update(id).digest().readUInt32BE(0) % 1_000_000);
}

/** A UUIDv7 made at `ms` (uuidv7() itself never goes back in time). */
function madeAt(ms: number): string {
  const hex = ms.toString(16).padStart(12, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8)}${uuidv7().slice(13)}`;
}

/** The resend lookup that scans the mailboxes (what the index replaces), as InfluxQL text. */
const SCAN = /^SELECT "id" FROM "mailbox" WHERE \("owner" = /;

/**
 * The message id index (server/store/influx/id-index.ts) against a real influxd: a resend is found
 * by an exact read instead of a scan, and whatever the index cannot vouch for (a slot another id
 * took, an index point whose copy never landed, copies stored before the index existed) is
 * still never stored twice nor lost.
 */
describe("InfluxStore message id index", () => {
  let influxd: Influxd;
  let stores: InfluxStore[] = [];
  let db = 0;
  const queries: string[] = [];
  const original = V1Http.prototype.query;

  const open = async (name: string, count = 1) => {
    const opened = Array.from({ length: count }, () => new InfluxStore({ url: influxd.url, db: name }));
    await Promise.all(opened.map((s) => s.init()));
    stores.push(...opened);
    return opened;
  };
  const write = async (name: string, lines: string) => {
    const res = await fetch(`${influxd.url}/write?db=${name}&precision=ns`, { method: "POST", body: lines });
    assert.equal(res.status, 204, await res.text());
  };
  const readAll = async (s: InfluxStore, owner: string) => {
    const { items } = await s.read(owner, null, 1000);
    return items.map((i) => JSON.parse(i.envelope).n as number);
  };

  before(async () => {
    influxd = await startInfluxd();
    V1Http.prototype.query = function (q, o) {
      queries.push(q);
      return original.call(this, q, o);
    };
  });
  after(async () => {
    V1Http.prototype.query = original;
    await Promise.all(stores.map((s) => s.close()));
    stores = [];
    await influxd?.stop();
  });

  it("finds a resend through another server by the index, without scanning; an old id is scanned (control)", async () => {
    const [a, b] = await open(`index_${db++}`, 2);
    const id = uuidv7();
    const first = await a!.append({ id, owners: ["bob", "alice"], envelope: '{"n":1}' });
    queries.length = 0;
    const again = await b!.append({ id, owners: ["bob", "alice"], envelope: '{"n":1}' });
    assert.equal(again.duplicate, true);
    assert.equal(again.placed.get("bob")!.cursor, first.placed.get("bob")!.cursor);
    assert.equal(again.placed.get("alice")!.cursor, first.placed.get("alice")!.cursor);
    assert.deepEqual(
      queries.filter((q) => SCAN.test(q)),
      [],
      "the index answered: no mailbox scan",
    );
    // Positive control: an id made two hours ago is outside the index and takes the scan, and
    // is still found.
    const old = madeAt(Date.now() - 2 * 3600_000);
    const firstOld = await a!.append({ id: old, owners: ["bob", "alice"], envelope: '{"n":2}' });
    queries.length = 0;
    const againOld = await b!.append({ id: old, owners: ["bob", "alice"], envelope: '{"n":2}' });
    assert.equal(againOld.duplicate, true);
    assert.equal(againOld.placed.get("bob")!.cursor, firstOld.placed.get("bob")!.cursor);
    assert.equal(queries.filter((q) => SCAN.test(q)).length, 1, "the old id was looked up by the scan");
    assert.deepEqual(await readAll(a!, "bob"), [1, 2]);
  });

  it("never stores twice an id whose slot another id took (a hostile id overwrote its index point)", async () => {
    const name = `index_${db++}`;
    const [a, b] = await open(name, 2);
    const id = uuidv7();
    const first = await a!.append({ id, owners: ["bob", "alice"], envelope: '{"n":1}' });
    // Another id's index points on the very same slots: InfluxDB keeps the last one.
    const other = uuidv7();
    const slot = slotOf(id);
    await write(
      name,
      ["bob", "alice"].map((o) => `msg_ids,owner=${o} id="${other}",at="1" ${slot}`).join("\n"),
    );
    queries.length = 0;
    const again = await b!.append({ id, owners: ["bob", "alice"], envelope: '{"n":1}' });
    assert.equal(again.duplicate, true);
    assert.equal(again.placed.get("bob")!.cursor, first.placed.get("bob")!.cursor);
    assert.equal(queries.filter((q) => SCAN.test(q)).length, 1, "the index could not tell: scanned");
    assert.deepEqual(await readAll(b!, "bob"), [1]);
    assert.deepEqual(await readAll(b!, "alice"), [1]);
  });

  it("stores a message whose index point landed but whose copy did not (nothing acknowledged is lost)", async () => {
    const name = `index_${db++}`;
    const [a] = await open(name);
    const id = uuidv7();
    // What a batch leaves behind when its index write landed and its mailbox write failed.
    const slot = slotOf(id);
    const at = BigInt(Date.now()) * 1_000_000n;
    await write(
      name,
      ["bob", "alice"].map((o) => `msg_ids,owner=${o} id="${id}",at="${at}" ${slot}`).join("\n"),
    );
    const r = await a!.append({ id, owners: ["bob", "alice"], envelope: '{"n":7}' });
    assert.equal(r.duplicate, false);
    assert.notEqual(r.placed.get("bob")!.cursor, at.toString());
    assert.deepEqual(await readAll(a!, "bob"), [7]);
    // And its resend now finds that copy.
    const again = await a!.append({ id, owners: ["bob", "alice"], envelope: '{"n":7}' });
    assert.equal(again.duplicate, true);
    assert.equal(again.placed.get("bob")!.cursor, r.placed.get("bob")!.cursor);
  });

  it("scans for ids made before the index was complete (copies a server without it stored)", async () => {
    const name = `index_${db++}`;
    // A mailbox an older server wrote: copies, no index points.
    const id = uuidv7();
    const ts = BigInt(Date.now()) * 1_000_000n + 123n;
    await fetch(`${influxd.url}/query`, {
      method: "POST",
      body: new URLSearchParams({ q: `CREATE DATABASE "${name}"` }),
    });
    await write(
      name,
      ["bob", "alice"].map((o) => `mailbox,owner=${o} id="${id}",envelope="{\\"n\\":3}" ${ts}`).join("\n"),
    );
    const [a] = await open(name);
    const again = await a!.append({ id, owners: ["bob", "alice"], envelope: '{"n":3}' });
    assert.equal(again.duplicate, true, "found by the scan: not stored twice");
    assert.equal(again.placed.get("bob")!.cursor, ts.toString());
    assert.deepEqual(await readAll(a!, "bob"), [3]);
    // A server started later on the same database keeps the same rule (the lowest `since` wins).
    const [b] = await open(name);
    queries.length = 0;
    const fresh = uuidv7();
    await b!.append({ id: fresh, owners: ["bob", "alice"], envelope: '{"n":4}' });
    assert.equal(queries.filter((q) => SCAN.test(q)).length, 1, "an id of the first hour is scanned");
  });
});
