/**
 * A worker thread of the client's opener (opener.ts): verifies and decrypts mailbox items with
 * the same `openItem` as the main thread, against a snapshot of the senders' keys taken there.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Sealer } from "../crypto/envelope.js";
import { type IdentitySecrets, identityFromSecrets } from "../crypto/keys.js";
import type { MailboxItem } from "../protocol/schema.js";
import { openItem } from "./open.js";
import { type OwnSnapshot, ownLookup, type SenderSnapshot } from "./opener.js";

const { me, secrets } = workerData as { me: string; secrets: IdentitySecrets[] };
const sealers = secrets.map((s) => new Sealer(identityFromSecrets(me, s)));

parentPort!.on(
  "message",
  (job: { id: number; items: MailboxItem[]; senders: SenderSnapshot; own: OwnSnapshot }) => {
    try {
      const opened = job.items.map((item) =>
        openItem(item, {
          me,
          sealers,
          contact: (n) => job.senders[n]?.contact ?? null,
          keysOf: (n) => job.senders[n]?.view ?? null,
          ownReplacedAt: ownLookup(sealers, job.own),
        }),
      );
      parentPort!.postMessage({ id: job.id, opened });
    } catch (err) {
      parentPort!.postMessage({ id: job.id, error: String(err) });
    }
  },
);

// Loaded and listening: the opener sends batches here from now on (until then it opens them itself).
parentPort!.postMessage({ ready: true });
