import type { ChatMessage } from "../../core/client/cache.js";
import { uuidv7 } from "../../core/protocol/ids.js";

/**
 * A message as the cache stores it, for cache tests: a fresh id, at mailbox position `cursor`
 * (also its sequence number), verified, sent and stored now from device "d1"; `fields` names the
 * conversation and its ends and overrides the rest.
 */
export function chatMessage(
  cursor: number,
  fields: Pick<ChatMessage, "conv" | "from" | "to" | "group" | "text"> & Partial<ChatMessage>,
): ChatMessage {
  const now = new Date().toISOString();
  return {
    id: uuidv7(),
    sentAt: now,
    serverTime: now,
    cursor: String(cursor),
    verified: true,
    problem: null,
    seq: cursor,
    device: "d1",
    ...fields,
  };
}
