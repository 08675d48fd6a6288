import type { ChatMessage } from "./cache.js";

export interface Gap {
  from: string;
  device: string;
  /** Sequence numbers that sender's device used in this conversation but that are not here. */
  missing: number[];
}

export interface HistoryReport {
  conv: string;
  messages: number;
  gaps: Gap[];
  unverified: Array<{ id: string; from: string; problem: string }>;
  complete: boolean;
}

/**
 * Checks a conversation for completeness: every sender numbers its messages per conversation
 * and device inside the signed envelope, so a hole in a sender's numbers is a message the
 * service dropped (or has not delivered yet). In a 1:1 conversation numbers start at 1; in a
 * group, at the first message this member saw (joining later is not a gap).
 */
export function verifyHistory(conv: string, messages: ChatMessage[]): HistoryReport {
  const bySender = new Map<string, Set<number>>();
  const unverified: HistoryReport["unverified"] = [];
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
  }
  const gaps: Gap[] = [];
  for (const [key, seqs] of bySender) {
    const [from, device] = key.split("\0") as [string, string];
    const sorted = [...seqs].sort((a, b) => a - b);
    const first = conv.startsWith("g:") ? sorted[0]! : 1;
    const missing: number[] = [];
    for (let n = first, i = 0; n <= sorted.at(-1)!; n++) {
      if (sorted[i] === n) i++;
      else missing.push(n);
    }
    if (missing.length > 0) gaps.push({ from, device, missing });
  }
  return {
    conv,
    messages: messages.length,
    gaps,
    unverified,
    complete: gaps.length === 0 && unverified.length === 0,
  };
}
