import type { ChatMessage } from "../core/client/cache.js";
import { sanitizeBody, sanitizeLine } from "../core/text/sanitize.js";

/** The `--json` line of a message: the keys the CLI contract promises, `problem` only when there is one. */
export function messageJson(m: ChatMessage): string {
  return JSON.stringify({
    id: m.id,
    from: m.from,
    to: m.to,
    group: m.group,
    text: m.text,
    sentAt: m.sentAt,
    serverTime: m.serverTime,
    verified: m.verified,
    ...(m.problem ? { problem: m.problem } : {}),
  });
}

/** A message for a terminal: everything the sender controls goes through the one sanitizer. */
export function messageLine(m: ChatMessage): string {
  const when = sanitizeLine(m.sentAt.replace("T", " ").slice(0, 19));
  const where = m.group ? `[${m.group}] ${m.from}` : `${m.from} → ${m.to}`;
  const text = m.verified ? sanitizeBody(m.text) : `⚠ UNVERIFIED (${m.problem ?? "unknown problem"})`;
  return sanitizeLine(`${when}  ${where}: `) + text;
}
