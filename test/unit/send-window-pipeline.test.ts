import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  MAX_IN_FLIGHT,
  PIPELINE_MIN,
  type SendAck,
  type SendResult,
  SendWindow,
  type SendWindowDeps,
} from "../../core/client/send-window.js";
import { ZmqchatError } from "../../core/errors.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import type { Envelope } from "../../core/protocol/schema.js";

/** Only the id and the size matter to the window. */
function env(): Envelope {
  return { id: uuidv7(), ct: "x" } as unknown as Envelope;
}

const tick = (ms: number) => new Promise((r) => (ms === 0 ? setImmediate(r) : setTimeout(r, ms)));

interface ModelOptions {
  /** Random source (fast-check gives a seeded one). */
  random: () => number;
  /** Envelopes refused for good (never stored). */
  forbidden?: Set<string>;
  /** Chance an envelope is refused for good, decided when it is first seen (added to `forbidden`). */
  forbid?: number;
  /** Chance an envelope is refused "not now" on its first try. */
  notNow?: number;
  /** Chance a reply is lost and the request sent again with the same body (the channel's retry, maybe to the other server). */
  lost?: number;
  /** The service refuses `follows` as malformed (an older server). */
  old?: boolean;
}

/**
 * A model of the service over two servers sharing one store: each request waits a random time
 * before its checks and before its store write (so requests in flight overtake each other, as
 * on two servers), refuses "not now" and the rest of its request after it, stores a request
 * with `follows` only when the sender's mailbox holds that id (atomic with the write), and
 * keeps each id once.
 */
function modelService(o: ModelOptions) {
  const mailbox: string[] = [];
  const stored = new Set<string>();
  const triedOnce = new Set<string>();
  let inFlight = 0;
  const log = { maxInFlight: 0, requests: 0, chained: 0, refusedChain: 0, followsAfterOld: 0 };
  let sawOld = false;
  const wait = () => tick(Math.floor(o.random() * 4));

  async function serve(es: Envelope[], follows: string | undefined): Promise<SendResult[]> {
    await wait();
    const results: SendResult[] = [];
    const accepted: Envelope[] = [];
    let notNow = false;
    for (const e of es) {
      if (!triedOnce.has(e.id) && !o.forbidden?.has(e.id) && o.random() < (o.forbid ?? 0))
        o.forbidden?.add(e.id);
      if (notNow) results.push({ id: e.id, error: { code: "unavailable", message: "after a refused one" } });
      else if (o.forbidden?.has(e.id))
        results.push({ id: e.id, error: { code: "forbidden", message: "refused for good" } });
      else if (!triedOnce.has(e.id) && o.random() < (o.notNow ?? 0)) {
        triedOnce.add(e.id);
        notNow = true;
        results.push({ id: e.id, error: { code: "rate_limited", message: "not now", retryAfterMs: 1 } });
      } else {
        triedOnce.add(e.id);
        accepted.push(e);
        results.push(null as never);
      }
    }
    await wait();
    // The store write: the predecessor check and the append in one step.
    if (follows !== undefined && !stored.has(follows)) {
      log.refusedChain++;
      return results.map(
        (r, i) =>
          r ?? { id: es[i]!.id, error: { code: "unavailable", message: "predecessor", retryAfterMs: 0 } },
      );
    }
    return results.map((r, i) => {
      if (r) return r;
      const e = es[i]!;
      const duplicate = stored.has(e.id);
      if (!duplicate) {
        stored.add(e.id);
        mailbox.push(e.id);
      }
      const ack: SendAck = {
        id: e.id,
        cursor: String(mailbox.indexOf(e.id) + 1),
        serverTime: new Date().toISOString(),
        duplicate,
      };
      return ack;
    });
  }

  const deps: SendWindowDeps = {
    async one(e) {
      // `send` through the channel: a "not now" refusal is waited out and sent again (same body).
      for (;;) {
        const [r] = await deps.many([e], 10_000);
        if (r && "error" in r && (r.error.code === "unavailable" || r.error.code === "rate_limited"))
          continue;
        if (!r || "error" in r) throw new ZmqchatError((r?.error.code ?? "internal") as never, "refused");
        return r;
      }
    },
    async many(es, _timeoutMs, follows) {
      inFlight++;
      log.requests++;
      log.maxInFlight = Math.max(log.maxInFlight, inFlight);
      if (follows !== undefined) log.chained++;
      if (sawOld && follows !== undefined) log.followsAfterOld++;
      try {
        if (o.old && follows !== undefined) {
          sawOld = true;
          await wait();
          throw new ZmqchatError("bad_request", 'send.many: unrecognized key "follows"');
        }
        let results = await serve(es, follows);
        // A lost reply: the channel sends the same body again (same follows) and takes that answer.
        while (o.random() < (o.lost ?? 0)) results = await serve(es, follows);
        return results;
      } finally {
        inFlight--;
      }
    },
  };
  return { deps, log, mailbox };
}

/** Sends `n` messages through the window, `concurrency` awaiting at a time; returns the ids in send order and each outcome. */
async function drive(w: SendWindow, n: number, concurrency: number, random: () => number) {
  const envelopes = Array.from({ length: n }, () => env());
  const outcome = new Map<string, "acked" | string>();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const e = envelopes[next++]!;
      const slot = w.reserve();
      // Sealing takes a moment now and then, so batches form and break up.
      if (random() < 0.3) await tick(0);
      try {
        await slot.post(e, 600_000);
        outcome.set(e.id, "acked");
      } catch (err) {
        outcome.set(e.id, (err as ZmqchatError).code ?? String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ids: envelopes.map((e) => e.id), outcome };
}

/** The stored ids keep the send order (a subsequence of it). */
function assertInOrder(mailbox: readonly string[], ids: readonly string[]): void {
  const place = new Map(ids.map((id, i) => [id, i]));
  for (let i = 1; i < mailbox.length; i++)
    assert.ok(place.get(mailbox[i - 1]!)! < place.get(mailbox[i]!)!, `stored out of order at ${i}`);
  assert.equal(new Set(mailbox).size, mailbox.length, "each stored once");
}

describe("send window with several requests in flight", () => {
  it("keeps the send order in the store, each acknowledged message stored once, within the offered bound, under overtaking, refusals and lost replies", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.integer({ min: 2, max: 6 }),
        fc.constantFrom(0, 0.05, 0.2),
        fc.constantFrom(0, 0.1),
        fc.constantFrom(0, 0.05),
        async (seed, offer, notNow, lost, forbid) => {
          const random = mulberry32(seed);
          const forbidden = new Set<string>();
          const m = modelService({ random, notNow, lost, forbid, forbidden });
          const w = new SendWindow(m.deps);
          w.offer(offer);
          const { ids, outcome } = await drive(w, 300, 40, random);
          assertInOrder(m.mailbox, ids);
          for (const id of ids) {
            if (outcome.get(id) === "acked")
              assert.ok(m.mailbox.includes(id), "an acknowledged message is stored");
            else assert.ok(!m.mailbox.includes(id), `${id} refused (${outcome.get(id)}) yet stored`);
          }
          for (const id of forbidden) assert.equal(outcome.get(id), "forbidden");
          assert.equal(m.mailbox.length, ids.length - forbidden.size, "every other message stored");
          assert.ok(m.log.maxInFlight <= Math.min(offer, MAX_IN_FLIGHT), `in flight ${m.log.maxInFlight}`);
          assert.equal(w.waiting, 0);
          assert.equal(w.inFlight, 0);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("positive control: with the offer, 2+ requests are in flight and later ones name their predecessor", async () => {
    const m = modelService({ random: mulberry32(7) });
    const w = new SendWindow(m.deps);
    w.offer(4);
    const { ids } = await drive(w, 400, 60, mulberry32(8));
    assertInOrder(m.mailbox, ids);
    assert.ok(m.log.maxInFlight >= 2, `in flight at most ${m.log.maxInFlight}`);
    assert.ok(m.log.chained > 0, "requests named their predecessor");
  });

  it("without the offer, one request at a time and no predecessor named (an old server, or InfluxDB)", async () => {
    const m = modelService({ random: mulberry32(9) });
    const w = new SendWindow(m.deps);
    await drive(w, 200, 40, mulberry32(10));
    assert.equal(m.log.maxInFlight, 1);
    assert.equal(m.log.chained, 0);
    w.offer(undefined);
    await drive(w, 100, 40, mulberry32(11));
    assert.equal(m.log.maxInFlight, 1);
  });

  it("a request whose predecessor is refused for good does not wait for it: it is sent again, named after nothing", async () => {
    const forbidden = new Set<string>();
    const m = modelService({ random: () => 0.99, forbidden });
    const seen: Array<{ ids: string[]; follows?: string }> = [];
    const many = m.deps.many;
    m.deps.many = (es, t, f) => {
      seen.push({ ids: es.map((e) => e.id), ...(f ? { follows: f } : {}) });
      return many(es, t, f);
    };
    const w = new SendWindow(m.deps);
    w.offer(4);
    const [a, b] = [env(), env()];
    // A batch's worth (PIPELINE_MIN): fewer would wait for the reply in flight instead of joining it.
    const cs = Array.from({ length: PIPELINE_MIN }, () => env());
    forbidden.add(b.id);
    const sa = w.reserve();
    const sb = w.reserve();
    const pa = sa.post(a, 600_000);
    const pb = sb.post(b, 600_000);
    // a and b leave together; cs leave while they are in flight and name b, which is never stored.
    await tick(0);
    assert.equal(w.inFlight, 1);
    const slots = cs.map(() => w.reserve());
    const pcs = cs.map((c, i) => slots[i]!.post(c, 600_000));
    await pa;
    await assert.rejects(pb, { code: "forbidden" });
    await Promise.all(pcs);
    assert.deepEqual(m.mailbox, [a.id, ...cs.map((c) => c.id)]);
    assert.deepEqual(seen[1], { ids: cs.map((c) => c.id), follows: b.id }, "cs named b");
    assert.ok(m.log.refusedChain >= 1, "and was refused while b was missing");
    assert.equal(seen.at(-1)!.follows, undefined, "then sent again after the drain, naming nothing");
  });

  it("an older server refusing `follows` as malformed: the window falls back to one in flight, no message lost or doubled, order kept", async () => {
    const m = modelService({ random: mulberry32(12), old: true });
    const w = new SendWindow(m.deps);
    w.offer(4);
    const { ids, outcome } = await drive(w, 300, 40, mulberry32(13));
    assertInOrder(m.mailbox, ids);
    assert.equal(m.mailbox.length, 300);
    assert.ok([...outcome.values()].every((v) => v === "acked"));
    assert.equal(m.log.followsAfterOld, 0, "no predecessor named after the refusal");
    // The next login offers it again: the window tries once more, and falls back again.
    w.offer(4);
    await drive(w, 50, 20, mulberry32(14));
    assert.equal(m.mailbox.length, 350);
  });

  it("a service that refuses every chained request for want of its predecessor (hostile or broken) costs a bounded number of requests, and nothing hangs", async () => {
    let chained = 0;
    let unchained = 0;
    let stored = 0;
    const deps: SendWindowDeps = {
      one: async (e) => {
        unchained++;
        return { id: e.id, cursor: String(++stored), serverTime: "", duplicate: false };
      },
      many: async (es, _t, follows) => {
        if (follows === undefined) unchained++;
        else chained++;
        await tick(1);
        if (follows !== undefined)
          return es.map((e) => ({
            id: e.id,
            error: { code: "unavailable", message: "no", retryAfterMs: 0 },
          }));
        return es.map((e) => ({ id: e.id, cursor: String(++stored), serverTime: "", duplicate: false }));
      },
    };
    const w = new SendWindow(deps);
    w.offer(4);
    const { outcome } = await drive(w, 200, 40, mulberry32(15));
    assert.ok([...outcome.values()].every((v) => v === "acked"));
    assert.equal(stored, 200);
    // A chained request leaves only while an unchained one is in flight (at most MAX_IN_FLIGHT - 1
    // beside it), and a refusal drains before the next: the refusals are bounded by the requests
    // one at a time would have made, times the depth.
    assert.ok(chained <= (MAX_IN_FLIGHT - 1) * unchained, `${chained} chained, ${unchained} naming nothing`);
  });

  it("a service that refuses everything 'not now' with no wait: the window waits between tries and gives up at the deadline", async () => {
    let requests = 0;
    const deps: SendWindowDeps = {
      one: async () => {
        throw new ZmqchatError("unavailable", "no");
      },
      many: async (es) => {
        requests++;
        return es.map((e) => ({ id: e.id, error: { code: "unavailable", message: "no", retryAfterMs: 0 } }));
      },
    };
    const w = new SendWindow(deps);
    w.offer(4);
    const slots = Array.from({ length: 10 }, () => w.reserve());
    const results = await Promise.allSettled(slots.map((s) => s.post(env(), 300)));
    assert.ok(results.every((r) => r.status === "rejected"));
    // A floor of 10 ms between tries: about 30 in 300 ms, never a spin.
    assert.ok(requests <= 60, `${requests} requests`);
  });
});

/** A small seeded generator, so a failing run can be repeated. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
