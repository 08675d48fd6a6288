import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MAX_BATCH,
  type SendAck,
  type SendResult,
  SendWindow,
  type SendWindowDeps,
} from "../../core/client/send-window.js";
import { copyFor, Sealer } from "../../core/crypto/envelope.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { ZmqchatError } from "../../core/errors.js";
import { isEnvelope } from "../../core/protocol/envelope-check.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { MAX_ENVELOPE_BYTES } from "../../core/protocol/limits.js";
import type { Envelope } from "../../core/protocol/schema.js";

/** Only the id and the size matter to the window. */
function env(pad = 10): Envelope {
  return { id: uuidv7(), ct: "x".repeat(pad) } as unknown as Envelope;
}

function ack(e: Envelope, n: number): SendAck {
  return { id: e.id, cursor: String(n), serverTime: new Date().toISOString(), duplicate: false, prev: null };
}

/** A fake service that records every request and how many were in flight at once. */
function fakeService(answer?: (envelopes: Envelope[]) => SendResult[] | Promise<SendResult[]>) {
  let stored = 0;
  let inFlight = 0;
  const log = {
    many: [] as Envelope[][],
    one: [] as Envelope[],
    maxInFlight: 0,
  };
  const enter = () => {
    inFlight++;
    log.maxInFlight = Math.max(log.maxInFlight, inFlight);
  };
  const deps: SendWindowDeps = {
    async one(e) {
      enter();
      log.one.push(e);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return ack(e, ++stored);
    },
    async many(es) {
      enter();
      log.many.push(es);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      return answer ? answer(es) : es.map((e) => ack(e, ++stored));
    },
  };
  return { deps, log };
}

test("envelopes leave in the order their slots were taken, in batches of at most 64, one request at a time", async () => {
  const { deps, log } = fakeService();
  const w = new SendWindow(deps);
  const slots = Array.from({ length: 500 }, () => w.reserve());
  const envelopes = slots.map(() => env());
  // Sealed in a scrambled order: the window still sends them in slot order.
  const order = [...slots.keys()].sort((a, b) => ((a * 7919) % 500) - ((b * 7919) % 500));
  const acks: Array<Promise<SendAck>> = new Array(500);
  for (const i of order) acks[i] = slots[i]!.post(envelopes[i]!, 10_000);
  const got = await Promise.all(acks);
  assert.deepEqual(
    got.map((a) => a.id),
    envelopes.map((e) => e.id),
  );
  const sent = [...log.one, ...log.many.flat()].map((e) => e.id);
  assert.deepEqual(
    sent,
    envelopes.map((e) => e.id),
    "every envelope sent once, in slot order",
  );
  assert.equal(log.maxInFlight, 1, "one request in flight at a time");
  assert.ok(log.many.every((b) => b.length <= MAX_BATCH));
  assert.ok(
    log.many.length <= Math.ceil(500 / MAX_BATCH) + 1,
    `coalesced into few requests (${log.many.length})`,
  );
});

test("a slot given up does not hold back the ones behind it", async () => {
  const { deps } = fakeService();
  const w = new SendWindow(deps);
  const a = w.reserve();
  const b = w.reserve();
  const e = env();
  const p = b.post(e, 5000);
  a.cancel();
  assert.equal((await p).id, e.id);
  assert.equal(w.waiting, 0);
});

test("a service without send.many gets one send per envelope from then on", async () => {
  let manyCalls = 0;
  let stored = 0;
  const one: Envelope[] = [];
  const w = new SendWindow({
    async one(e) {
      one.push(e);
      return ack(e, ++stored);
    },
    async many() {
      manyCalls++;
      throw new ZmqchatError("bad_request", 'type: Invalid option: expected one of "hello"|"ping"');
    },
  });
  const first = Array.from({ length: 10 }, () => env());
  const slots = first.map(() => w.reserve());
  const acks = await Promise.all(slots.map((s, i) => s.post(first[i]!, 5000)));
  assert.equal(acks.length, 10);
  assert.equal(manyCalls, 1);
  const second = Array.from({ length: 10 }, () => env());
  await Promise.all(second.map((e) => w.reserve().post(e, 5000)));
  assert.equal(manyCalls, 1, "send.many is not tried again");
  assert.deepEqual(
    one.map((e) => e.id),
    [...first, ...second].map((e) => e.id),
  );
});

test("one envelope's refusal refuses only that envelope; 'not now' is sent again with the same id", async () => {
  const refused = new Set<string>();
  let busyOnce = "";
  let stored = 0;
  const seen: string[] = [];
  const { deps, log } = fakeService((es) =>
    es.map((e) => {
      seen.push(e.id);
      if (refused.has(e.id)) return { id: e.id, error: { code: "forbidden", message: "not a member" } };
      if (e.id === busyOnce) {
        busyOnce = "";
        return { id: e.id, error: { code: "unavailable", message: "store busy", retryAfterMs: 5 } };
      }
      return ack(e, ++stored);
    }),
  );
  const w = new SendWindow(deps);
  const es = Array.from({ length: 6 }, () => env());
  refused.add(es[2]!.id);
  busyOnce = es[4]!.id;
  const results = await Promise.allSettled(es.map(() => w.reserve()).map((s, i) => s.post(es[i]!, 5000)));
  assert.deepEqual(
    results.map((r) => r.status),
    ["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled", "fulfilled"],
  );
  const r2 = results[2] as PromiseRejectedResult;
  assert.ok(r2.reason instanceof ZmqchatError && r2.reason.code === "forbidden");
  const sends = [...seen, ...log.one.map((e) => e.id)];
  assert.equal(sends.filter((id) => id === es[4]!.id).length, 2, "the busy one was sent twice, same id");
});

test("a reply that does not match the request (wrong ids, too few results) fails those sends, nothing is taken as stored", async () => {
  const { deps } = fakeService((es) => es.slice(1).map((e) => ack(e, 1)));
  const w = new SendWindow(deps);
  const es = [env(), env(), env()];
  const results = await Promise.allSettled(es.map(() => w.reserve()).map((s, i) => s.post(es[i]!, 5000)));
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert.equal(((r as PromiseRejectedResult).reason as ZmqchatError).code, "internal");
  }
});

test("a batch stays within a frame: large envelopes are split across requests", async () => {
  const { deps, log } = fakeService();
  const w = new SendWindow(deps);
  const big = Math.floor(MAX_ENVELOPE_BYTES / 3);
  const es = Array.from({ length: 7 }, () => env(big));
  await Promise.all(es.map(() => w.reserve()).map((s, i) => s.post(es[i]!, 10_000)));
  const requests = [...log.many, ...log.one.map((e) => [e])];
  assert.ok(requests.length >= 3);
  for (const b of log.many) {
    const bytes = b.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0);
    assert.ok(bytes <= MAX_ENVELOPE_BYTES, `${bytes} bytes in one request`);
  }
});

test("a send whose deadline passes while its batch is out is told timeout at its deadline", async () => {
  let release: () => void = () => {};
  const w = new SendWindow({
    one: async (e) => ack(e, 1),
    many: (es) =>
      new Promise((resolve) => {
        release = () => resolve(es.map((e, i) => ack(e, i + 1)));
      }),
  });
  const a = env();
  const b = env();
  const short = w.reserve().post(a, 50);
  const long = w.reserve().post(b, 60_000);
  await assert.rejects(short, (err: unknown) => err instanceof ZmqchatError && err.code === "timeout");
  release();
  assert.equal((await long).id, b.id);
});

test("group drafts leave signed: one batch signature per request, on every path (send.many, a resend, one send each)", async () => {
  const alice = generateIdentity("alice");
  const bob = generateIdentity("bob");
  const sealer = new Sealer(alice);
  const draft = (i: number) =>
    sealer.seal({
      id: uuidv7(),
      device: "0123456789abcdef",
      to: null,
      group: "team",
      seq: i + 1,
      sentAt: new Date().toISOString(),
      text: `m${i}`,
      recipients: [{ name: "bob", keys: bob.publicKeys }],
      draft: true,
    });
  const seen: Envelope[] = [];
  let refuseOnce = true;
  let manyWorks = true;
  let stored = 0;
  const check = (e: Envelope) => {
    // What the service would see: a draft is malformed there, so it must never leave.
    const sent = JSON.parse(JSON.stringify(e)) as Envelope;
    assert.ok(isEnvelope(sent), "a well-formed, signed envelope leaves");
    seen.push(sent);
  };
  const w = new SendWindow({
    async one(e) {
      check(e);
      return ack(e, ++stored);
    },
    async many(es) {
      if (!manyWorks) throw new ZmqchatError("bad_request", 'type: Invalid option: expected one of "hello"');
      es.forEach(check);
      await new Promise((r) => setTimeout(r, 2));
      return es.map((e, i): SendResult => {
        // The third envelope of the first request: "not now", so it goes again in a later request.
        if (refuseOnce && i === 2) {
          refuseOnce = false;
          return { id: e.id, error: { code: "unavailable", message: "not now", retryAfterMs: 1 } };
        }
        return ack(e, ++stored);
      });
    },
    sign: (es) => sealer.signBatch(es),
  });
  const first = Array.from({ length: 40 }, (_, i) => draft(i));
  await Promise.all(first.map((e) => w.reserve().post(e, 10_000)));
  manyWorks = false;
  const second = Array.from({ length: 5 }, (_, i) => draft(40 + i));
  await Promise.all(second.map((e) => w.reserve().post(e, 10_000)));
  const bobs = new Sealer(bob);
  for (const e of [...first, ...second])
    assert.equal(bobs.open(copyFor(e, "bob"), alice.publicKeys).ok, true, "each verifies and opens");
  // Fewer signatures than envelopes (positive control: a sealer without batches checks one each).
  const signatures = new Set([...first, ...second].map((e) => (e as Extract<Envelope, { v: 4 }>).sig));
  assert.ok(signatures.size < 10, `${signatures.size} signatures for 45 envelopes`);
  assert.equal(bobs.signatureChecks, signatures.size);
  // The refused envelope left again as it first left, signature and place in its batch alike.
  const copies = seen.filter((e) => e.id === first[2]!.id);
  assert.equal(copies.length, 2);
  assert.deepEqual(copies[1], copies[0]);
  assert.equal(seen.length, 46);
});

test("a rate_limited refusal whose retry-after reaches past the deadline fails at once as rate_limited; the rest of its batch is sent again", async () => {
  let calls = 0;
  const w = new SendWindow({
    // What is sent again alone leaves as a plain send.
    one: async (e) => {
      calls++;
      return ack(e, 1);
    },
    async many(es) {
      calls++;
      await new Promise((r) => setTimeout(r, 2));
      if (calls === 1)
        return es.map(
          (e, i): SendResult => ({
            id: e.id,
            // The first is over its rate for a minute; the service refuses the rest of the request after it.
            error: { code: "rate_limited", message: "over the rate", retryAfterMs: i === 0 ? 60_000 : 20 },
          }),
        );
      return es.map((e, i) => ack(e, i + 1));
    },
  });
  const a = env();
  const b = env();
  const sa = w.reserve();
  const sb = w.reserve();
  // The second is posted first, so both are ready when the head is: one request of two.
  const second = sb.post(b, 120_000);
  const first = sa.post(a, 30_000);
  const outcome = await Promise.race([
    first.then(
      () => "stored",
      (err: unknown) => err,
    ),
    new Promise((r) => setTimeout(() => r("still waiting after 5 s"), 5000)),
  ]);
  assert.ok(outcome instanceof ZmqchatError, `told at once (${String(outcome)})`);
  assert.equal(outcome.code, "rate_limited");
  assert.match(outcome.hint ?? "", /try again in 60 s/);
  assert.equal(calls, 1, "not sent again");
  assert.equal(
    (await second).id,
    b.id,
    "the other, whose retry-after fits its deadline, is waited out and stored",
  );
  assert.equal(calls, 2);
});
