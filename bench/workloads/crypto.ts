import { Sealer } from "../../core/crypto/envelope.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import type { Envelope } from "../../core/protocol/schema.js";
import type { BenchContext } from "../lib/context.js";
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

/** Seal and open per second on one core (this thread), 1:1 and for a group of 50. */
export function cryptoRun(ctx: BenchContext): void {
  const s = ctx.sizes;
  const alice = new Sealer(generateIdentity("alice"));
  const members = Array.from({ length: 49 }, (_, i) => generateIdentity(`m${i}`));
  const bob = new Sealer(members[0]!);
  const toBob = [{ name: "m0", keys: members[0]!.publicKeys }];
  const toGroup = members.map((m) => ({ name: m.name, keys: m.publicKeys }));
  const text = benchText("crypto", 0, s.textBytes);
  const seal = (recipients: typeof toBob, group: string | null, i: number): Envelope =>
    alice.seal({
      id: uuidv7(),
      device: "0123456789abcdef",
      to: group ? null : "m0",
      group,
      seq: i,
      sentAt: new Date().toISOString(),
      text,
      recipients,
    });
  const w = "crypto, one core";
  for (const [kind, recipients, group] of [
    ["1:1", toBob, null],
    ["group of 50", toGroup, "team"],
  ] as const) {
    const id = kind === "1:1" ? "crypto.direct" : "crypto.group";
    const sealed = Array.from({ length: 256 }, (_, i) => seal(recipients, group, i));
    const seals = perSecond(s.cryptoMs, (i) => seal(recipients, group, i));
    let bad = 0;
    const opens = perSecond(s.cryptoMs, (i) => {
      if (!bob.open(sealed[i % sealed.length]!, alice.identity.publicKeys).ok) bad++;
    });
    if (bad > 0) ctx.results.fail(`crypto: ${bad} envelopes did not open`);
    ctx.results.add(`${id}.seal`, seals, {
      workload: w,
      label: `seal + sign, ${kind}, ${s.textBytes} B`,
      unit: "msg/s",
      better: "higher",
    });
    ctx.results.add(`${id}.open`, opens, {
      workload: w,
      label: `verify + open, ${kind}, ${s.textBytes} B`,
      unit: "msg/s",
      better: "higher",
    });
  }
}
