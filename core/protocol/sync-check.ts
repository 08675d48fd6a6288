import { isEnvelope, isPlainObject } from "./envelope-check.js";
import type { MailboxItem, ReplyBody } from "./schema.js";

/** A mailbox position as the schema allows it (also a delivery's `prev`, delivery-check.ts). */
export const CURSOR = /^[0-9]{1,24}$/;

/**
 * A mailbox item checked by hand, as schema.ts's mailboxItemSchema would parse it (unknown
 * members of the item and of its envelope's key entries dropped); null where the schema might
 * refuse it. The envelope is held to envelope-check.ts, which itself matches envelopeSchema.
 */
export function checkMailboxItem(x: unknown): MailboxItem | null {
  if (!isPlainObject(x)) return null;
  const { cursor, serverTime, envelope } = x;
  if (typeof cursor !== "string" || !CURSOR.test(cursor)) return null;
  if (typeof serverTime !== "string") return null;
  if (!isEnvelope(envelope)) return null;
  const keys = envelope.keys.map((k) => ({ to: k.to, wk: k.wk }));
  return { cursor, serverTime, envelope: { ...envelope, keys } };
}

/**
 * The body of a `sync` reply (a page of the mailbox) checked by hand, as replyBodies.sync would
 * parse it: a recovery's validation without Zod's cost per field (about a tenth of the
 * recovering client's main thread in the profile). Returns null wherever the schema might say
 * no; the caller then parses with the schema, which gives the error message.
 * test/unit/sync-check.test.ts holds the two to the same answers.
 */
export function checkSyncBody(x: unknown): ReplyBody<"sync"> | null {
  if (!isPlainObject(x)) return null;
  const { items, more } = x;
  if (typeof more !== "boolean" || !Array.isArray(items)) return null;
  const out: MailboxItem[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const item = checkMailboxItem(items[i]);
    if (item === null) return null;
    out[i] = item;
  }
  return { items: out, more };
}
