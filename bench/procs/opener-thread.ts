/**
 * A worker thread of the parallel-recovery prototype: verifies and decrypts mailbox items with
 * the user's own Sealer, as ChatClient's private `open` does (the trimmed-down rules of a
 * recovery: sender keys come pinned from the main thread). Not product code: it measures what
 * opening on both cores would give.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ChatMessage } from "../../core/client/cache.js";
import { messageBase } from "../../core/client/open.js";
import { loadIdentity, profilePaths } from "../../core/client/profile.js";
import { Sealer } from "../../core/crypto/envelope.js";
import type { MailboxItem, PublicKeys } from "../../core/protocol/schema.js";

const { home, name } = workerData as { home: string; name: string };
const me = loadIdentity(profilePaths(home, name), name);
const sealer = new Sealer(me.identity);

function open(item: MailboxItem, keys: Record<string, PublicKeys>): ChatMessage {
  const env = item.envelope;
  const base = messageBase(item, name);
  const senderKeys = env.from === name ? me.identity.publicKeys : keys[env.from];
  if (!senderKeys) return { ...base, text: "", verified: false, problem: `unknown sender ${env.from}` };
  const r = sealer.open(env, senderKeys);
  return r.ok
    ? { ...base, text: r.text, verified: true, problem: null }
    : { ...base, text: "", verified: false, problem: r.reason };
}

parentPort!.on("message", (m: { id: number; items: MailboxItem[]; keys: Record<string, PublicKeys> }) => {
  parentPort!.postMessage({ id: m.id, messages: m.items.map((i) => open(i, m.keys)) });
});
