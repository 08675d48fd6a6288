import type { ChatMessage } from "./cache.js";
import { convKind } from "./conv.js";

export interface Gap {
  from: string;
  device: string;
  /** Sequence numbers that sender's device used in this conversation but that are not here. */
  missing: number[];
}

/** A message whose number is not above the numbers its sender's device used before it in the mailbox. */
export interface OutOfOrder {
  from: string;
  device: string;
  id: string;
  seq: number;
  /** The message placed before it with a higher number. */
  after: { id: string; seq: number };
}

/** A message id the mailbox handed out at more than one place. */
export interface Replay {
  id: string;
  from: string;
  /** Every mailbox position (cursor) the id was seen at, first one first. */
  cursors: string[];
}

export interface HistoryReport {
  conv: string;
  messages: number;
  gaps: Gap[];
  outOfOrder: OutOfOrder[];
  replayed: Replay[];
  unverified: Array<{ id: string; from: string; problem: string }>;
  /** Messages kept but not shown: signed by a sender's new keys that are not trusted yet. */
  held: Array<{ id: string; from: string }>;
  complete: boolean;
}

/**
 * Checks a conversation for completeness and order: every sender numbers its messages per
 * conversation and device inside the signed envelope, so a hole in a sender's numbers is a
 * message the service dropped (or has not delivered yet), a number not above the ones before
 * it in mailbox order is a message the service moved, and an id handed out at a second place
 * is a replay. In a 1:1 conversation numbers start at 1; in a group, at the first message this
 * member saw (joining later is not a gap). `messages` are in mailbox order.
 *
 * What a complete report proves depends on the envelope (core/crypto/envelope.ts). Group
 * messages (v2) are signed: each came from its sender, and the proof is transferable (anyone
 * with the sender's key can check it). 1:1 messages (v3) are authenticated by AES-GCM under the
 * pair's directional key: each came from the peer or from this user, and the service did not
 * drop, alter, move or replay any of them; but this user holds that key too, so the report
 * convinces this user and proves nothing to a third party (deniable, as NaCl box and Signal).
 * Either way an edit or delete authenticated as someone other than the target's author is
 * listed as unverified (core/client/actions.ts).
 */
export function verifyHistory(
  conv: string,
  messages: ChatMessage[],
  replays: Array<{ id: string; cursors: string[] }> = [],
  held: Array<{ id: string; from: string }> = [],
): HistoryReport {
  const bySender = new Map<string, Set<number>>();
  const highest = new Map<string, { id: string; seq: number }>();
  const outOfOrder: OutOfOrder[] = [];
  const unverified: HistoryReport["unverified"] = [];
  const senderOf = new Map(messages.map((m) => [m.id, m.from]));
  for (const m of messages) {
    if (!m.verified) {
      unverified.push({ id: m.id, from: m.from, problem: m.problem ?? "not verified" });
      continue;
    }
    const key = `${m.from}\0${m.device}`;
    let seqs = bySender.get(key);
    if (!seqs) {
      seqs = new Set();
      bySender.set(key, seqs);
    }
    seqs.add(m.seq);
    const top = highest.get(key);
    if (top && m.seq < top.seq) {
      outOfOrder.push({ from: m.from, device: m.device, id: m.id, seq: m.seq, after: top });
    } else {
      highest.set(key, { id: m.id, seq: m.seq });
    }
  }
  const gaps: Gap[] = [];
  for (const [key, seqs] of bySender) {
    const [from, device] = key.split("\0") as [string, string];
    const sorted = [...seqs].sort((a, b) => a - b);
    const first = convKind(conv) === "group" ? sorted[0]! : 1;
    const missing: number[] = [];
    for (let n = first, i = 0; n <= sorted.at(-1)!; n++) {
      if (sorted[i] === n) i++;
      else missing.push(n);
    }
    if (missing.length > 0) gaps.push({ from, device, missing });
  }
  const replayed = replays.map((r) => ({ id: r.id, from: senderOf.get(r.id) ?? "?", cursors: r.cursors }));
  return {
    conv,
    messages: messages.length,
    gaps,
    outOfOrder,
    replayed,
    unverified,
    held,
    complete:
      gaps.length === 0 &&
      unverified.length === 0 &&
      outOfOrder.length === 0 &&
      replayed.length === 0 &&
      held.length === 0,
  };
}
