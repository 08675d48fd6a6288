/**
 * Run compiled by test/integration/opener-threads.test.ts, in a process with nothing else to
 * wait for: after a first batch, two batches go to the opener's threads at once (as a sync's
 * next page does while the page before it is still opening), and the process must stay alive
 * until both are opened. Prints how many messages opened and verified.
 */
import { Opener } from "../../core/client/opener.js";
import { Sealer } from "../../core/crypto/envelope.js";
import { generateIdentity } from "../../core/crypto/keys.js";

const alice = generateIdentity("alice");
const bob = generateIdentity("bob");
const sealer = new Sealer(alice);
const items = Array.from({ length: 1000 }, (_, i) => ({
  cursor: String(1000 + i),
  serverTime: new Date().toISOString(),
  envelope: sealer.seal({
    id: `0190f000-0000-7000-8000-${String(i).padStart(12, "0")}`,
    device: "d1",
    to: "bob",
    group: null,
    seq: i + 1,
    sentAt: new Date().toISOString(),
    text: `message ${i}`,
    recipients: [{ name: "bob", keys: bob.publicKeys }],
  }),
}));
const contact = {
  name: "alice",
  keys: alice.publicKeys,
  pinnedAt: "",
  pending: null,
  verified: false,
  verifiedKeys: null,
};
const lookup = { contact: (n: string) => (n === "alice" ? contact : null), keysOf: () => null };
const opener = new Opener({ me: "bob", sealers: [new Sealer(bob)], threads: 2 });
void opener
  .ready()
  .then(() => opener.open(items.slice(0, 100), lookup))
  .then(() => Promise.all([opener.open(items.slice(0, 500), lookup), opener.open(items.slice(500), lookup)]))
  .then((parts) => {
    process.stdout.write(`opened ${parts.flat().filter((o) => o.message.verified).length}\n`);
  });
