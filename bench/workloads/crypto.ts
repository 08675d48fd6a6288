import { sign, verify } from "node:crypto";
import { copyFor, Sealer, signedBytes } from "../../core/crypto/envelope.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import type { Envelope } from "../../core/protocol/schema.js";
import type { BenchContext } from "../lib/context.js";
import { benchIdentity } from "../lib/keys.js";
import { benchText } from "../lib/text.js";

/** Calls `fn` for about `ms` milliseconds (after a short warm-up) and returns calls per second. */
function perSecond(ms: number, fn: (i: number) => void): number {
  for (let i = 0; i < 200; i++) fn(i);
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let j = 0; j < 50; j++) fn(n++);
    elapsed = performance.now() - start;
  }
  return (n * 1000) / elapsed;
}

/** Group messages signed per batch (suite 4): about what one send.many of a burst holds (the group bench's mean is ~46). */
const GROUP_BATCH = 32;

/** Seal and open per second on one core (this thread), 1:1 (envelope v2 and v3) and for a group of 50 (v2 and v4). */
export function cryptoRun(ctx: BenchContext): void {
  const s = ctx.sizes;
  const alice = new Sealer(benchIdentity("alice"));
  const members = Array.from({ length: 49 }, (_, i) => benchIdentity(`m${i}`));
  const bob = new Sealer(members[0]!);
  const toBob = [{ name: "m0", keys: members[0]!.publicKeys }];
  const toGroup = members.map((m) => ({ name: m.name, keys: m.publicKeys }));
  const text = benchText("crypto", 0, s.textBytes);
  // Ids and times are made outside the measured calls: they are not part of sealing.
  const ids = Array.from({ length: 1024 }, () => uuidv7());
  const sentAt = new Date().toISOString();
  const seal = (recipients: typeof toBob, group: string | null, i: number, version?: 2 | 3 | 4): Envelope =>
    alice.seal({
      ...(version ? { version } : {}),
      ...(version === 4 ? { draft: true } : {}),
      id: ids[i % ids.length]!,
      device: "0123456789abcdef",
      to: group ? null : "m0",
      group,
      seq: i,
      sentAt,
      text,
      recipients,
    });
  const w = "crypto, one core";
  // The floor: OpenSSL's Ed25519 alone over the bytes a 1:1 envelope signs. Every seal signs
  // once and every open verifies once, so these bound seal and open on this machine, now.
  const signed = seal(toBob, null, 0, 2);
  if (signed.v !== 2) throw new Error("a v2 envelope expected");
  const { sig: _sig, ...unsigned } = signed;
  const bytes = signedBytes(unsigned);
  const sig = sign(null, bytes, alice.identity.signPrivate);
  const signs = perSecond(s.cryptoMs, () => sign(null, bytes, alice.identity.signPrivate));
  const verifies = perSecond(s.cryptoMs, () => verify(null, bytes, alice.identity.signPublic, sig));
  ctx.results.add("crypto.floor.sign", signs, {
    workload: w,
    label: "floor: Ed25519 sign alone (OpenSSL)",
    unit: "/s",
    better: "higher",
  });
  ctx.results.add("crypto.floor.verify", verifies, {
    workload: w,
    label: "floor: Ed25519 verify alone (OpenSSL)",
    unit: "/s",
    better: "higher",
  });
  // 1:1 is sealed as envelope v3 (AEAD under the cached pairwise key, no signature) by default;
  // v2 (signed) is measured beside it, and each v3 figure is given as a ratio to v2's.
  for (const [kind, recipients, group, version] of [
    ["1:1 v2 (Ed25519-signed)", toBob, null, 2],
    ["1:1 v3 (pairwise AEAD)", toBob, null, 3],
    ["group of 50 (v2)", toGroup, "team", 2],
    [`group of 50 (v4, signed in batches of ${GROUP_BATCH})`, toGroup, "team", 4],
  ] as const) {
    const id = group
      ? version === 2
        ? "crypto.group"
        : "crypto.group.v4"
      : version === 2
        ? "crypto.direct.v2"
        : "crypto.direct";
    // Suite 4 is sealed as drafts and signed a batch at a time, as the send window does it.
    const drafts: Envelope[] = [];
    const sealOne = (i: number) => {
      const e = seal(recipients, group, i, version);
      if (version !== 4) return e;
      drafts.push(e);
      if (drafts.length === GROUP_BATCH) alice.signBatch(drafts.splice(0));
      return e;
    };
    // A member's copies (its own wrapped key only), as its mailbox holds them.
    const sealed = Array.from({ length: 8 * GROUP_BATCH }, (_, i) => sealOne(i)).map((e) =>
      version === 4 ? copyFor(e, "m0") : e,
    );
    if (sealed[0]!.v !== version) ctx.results.fail(`crypto: ${kind} sealed as v${sealed[0]!.v}`);
    const seals = perSecond(s.cryptoMs, (i) => sealOne(i));
    let bad = 0;
    // A fresh opener for each pass over the sealed set: each batch's one verification is counted.
    let opener = bob;
    const opens = perSecond(s.cryptoMs, (i) => {
      if (version === 4 && i % sealed.length === 0) opener = new Sealer(members[0]!);
      if (!opener.open(sealed[i % sealed.length]!, alice.identity.publicKeys).ok) bad++;
    });
    if (bad > 0) ctx.results.fail(`crypto: ${bad} envelopes did not open`);
    const v3 = id === "crypto.direct";
    const signed = version === 2 || version === 4;
    ctx.results.add(`${id}.seal`, seals, {
      workload: w,
      label: `seal${signed ? " + sign" : ""}, ${kind}, ${s.textBytes} B`,
      unit: "msg/s",
      better: "higher",
      baseline: v3 ? "crypto.direct.v2.seal" : version === 4 ? "crypto.group.seal" : "crypto.floor.sign",
    });
    ctx.results.add(`${id}.open`, opens, {
      workload: w,
      label: `${signed ? "verify + " : ""}open, ${kind}, ${s.textBytes} B`,
      unit: "msg/s",
      better: "higher",
      baseline: v3 ? "crypto.direct.v2.open" : version === 4 ? "crypto.group.open" : "crypto.floor.verify",
    });
  }
}
