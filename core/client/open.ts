import type { OpenResult, Sealer } from "../crypto/envelope.js";
import type { MailboxItem, PublicKeys } from "../protocol/schema.js";
import { isIsoTime } from "../text/sanitize.js";
import { addExtraFields, readExtra } from "./actions.js";
import type { ChatMessage, Contact } from "./cache.js";
import { groupConv, userConv } from "./conv.js";
import type { ContactKeyView } from "./key-history.js";

/** What opening one mailbox item gave. */
export interface Opened {
  message: ChatMessage;
  /** Signed by a newer key of the sender that this user has not trusted yet: keep it, do not show it. */
  held: boolean;
  /** The signature matched no key known here: the sender's key history may explain it. */
  unexplained: boolean;
  /** Sealed (suite 3) for a key this user rotated away, whose rotation time is not known here: this user's own key history may explain it. */
  ownHistory?: boolean;
}

/**
 * How long after this user rotated a key a suite 3 copy sealed for the old key is still
 * accepted: senders re-check a recipient's keys every minute (core/client/keybook.ts), so a
 * message sealed just before the rotation is stored within this. Later, only a thief of the
 * old key could have made it (key compromise impersonation; core/crypto/envelope.ts).
 */
export const ROTATION_GRACE_MS = 10 * 60_000;

export interface OpenContext {
  me: string;
  /** This user's sealers, current keys first, then the keys held before rotations. */
  sealers: Sealer[];
  contact(name: string): Contact | null;
  keysOf(name: string): ContactKeyView | null;
  /** When this user's key generation `keys` was replaced (its own key history), null when not known. */
  ownReplacedAt?(keys: PublicKeys): string | null;
}

/**
 * The message of a mailbox item with its text and verdict: the fields that come from the item
 * (before it is verified or opened), then `text`, `verified`, `problem`, in that order, written
 * out (see addExtraFields for why not a spread).
 */
export function messageOf(
  item: MailboxItem,
  me: string,
  text: string,
  verified: boolean,
  problem: string | null,
): ChatMessage {
  const env = item.envelope;
  const other = env.group === null ? (env.from === me ? env.to : env.from) : null;
  return {
    id: env.id,
    conv: env.group !== null ? groupConv(env.group) : userConv(other ?? env.from),
    from: env.from,
    to: env.to,
    group: env.group,
    sentAt: env.sentAt,
    serverTime: item.serverTime,
    cursor: item.cursor,
    seq: env.seq,
    device: env.device,
    text,
    verified,
    problem,
  };
}

/**
 * Opens one envelope: verifies its signature against the sender's key that was valid for it
 * (only keys on the sender's checked key chain count; see key-history.ts), then decrypts the
 * copy sealed for this user with whichever of its keys it was sealed for. A suite 3 (1:1)
 * envelope names both key generations and is authenticated by the AEAD under their pairwise
 * key instead of a signature; the same rules pick the sender's key (pinned, older ones on the
 * chain until they were replaced, newer ones held). A copy sealed for a key this user rotated
 * away opens with the key kept for it, as in suite 2, but in suite 3 only if the server stored
 * it within ROTATION_GRACE_MS of the rotation (by this user's key history): a later one could
 * have been made by whoever stole the old key, and is flagged as a forgery.
 */
export function openItem(item: MailboxItem, ctx: OpenContext): Opened {
  const env = item.envelope;
  const me = ctx.me;
  const flagged = (problem: string, more: Partial<Opened> = {}): Opened => ({
    message: messageOf(item, me, "", false, problem),
    held: false,
    unexplained: false,
    ...more,
  });
  const contact = env.from === me ? null : ctx.contact(env.from);
  if (env.from !== me && !contact) return flagged(`unknown sender ${env.from}`);
  if (env.group === null && env.from !== me && env.to !== me) return flagged("addressed to someone else");
  const candidates: Array<{ keys: PublicKeys; until: string | null }> =
    env.from === me
      ? ctx.sealers.map((s) => ({ keys: s.identity.publicKeys, until: null }))
      : (ctx.keysOf(env.from)?.accepted ?? [{ keys: contact!.keys, until: null }]);
  let r: Tried = { ok: false, reason: "bad_signature" };
  let until: string | null = null;
  for (const c of byTime(candidates, item.serverTime)) {
    r = tryKeys(env, c.keys, ctx.sealers);
    until = c.until;
    if (r.ok || r.reason !== "bad_signature") break;
  }
  if (r.ok) {
    if (env.v === 3 && env.from !== me && r.by !== ctx.sealers[0]) {
      const at = ctx.ownReplacedAt?.(r.by!.identity.publicKeys) ?? null;
      if (at === null)
        return flagged("sealed for a key you rotated away, at a time not known here", { ownHistory: true });
      if (!(Date.parse(item.serverTime) <= Date.parse(at) + ROTATION_GRACE_MS))
        return flagged("not authentic: sealed for a key you had rotated away when it was stored (forged)");
    }
    if (until !== null && !(Date.parse(item.serverTime) <= Date.parse(until)))
      return flagged(`signed with a key ${env.from} had already replaced when it was stored`);
    if (!isIsoTime(env.sentAt)) return flagged("its sentAt is not an ISO 8601 time");
    const extra = readExtra(r.extra);
    if (!extra.ok) return flagged(extra.problem);
    return {
      message: addExtraFields(messageOf(item, me, r.text, true, null), extra.extra),
      held: false,
      unexplained: false,
    };
  }
  if (r.reason === "bad_signature" && env.from !== me) {
    for (const keys of ctx.keysOf(env.from)?.held ?? []) {
      const h = tryKeys(env, keys, ctx.sealers);
      // Suite 3 names the key it was sealed with: naming a held key does not make a forgery held.
      if (h.ok || (h.reason !== "bad_signature" && h.reason !== "forged"))
        return flagged(`held: signed by ${env.from}'s new keys, not trusted yet (see zmqchat keys trust)`, {
          held: true,
        });
    }
    return flagged("bad signature: altered or forged", { unexplained: true });
  }
  const problem = {
    bad_signature: "bad signature: altered or forged",
    forged: "not authentic (the pairwise key does not open it): altered or forged",
    not_for_me: "not sealed for you",
    undecryptable: "cannot be decrypted",
    unknown_suite: "unknown encryption suite",
  }[r.reason];
  return flagged(problem);
}

/** What tryKeys gives: the open result, and when it opened, the sealer that opened it. */
type Tried = OpenResult & { by?: Sealer };

/** Verifies with one sender key and decrypts with whichever of this user's keys the copy was sealed for. */
function tryKeys(env: MailboxItem["envelope"], senderKeys: PublicKeys, sealers: Sealer[]): Tried {
  let r: Tried = { ok: false, reason: "bad_signature" };
  for (const sealer of sealers) {
    r = sealer.open(env, senderKeys);
    // A result that opened is a fresh object (readPlaintext): `by` is set on it, not on a copy
    // (a spread per message cost ~2 µs on the group bench's members, once per delivery).
    if (r.ok) {
      r.by = sealer;
      return r;
    }
    if (r.reason !== "undecryptable") break;
  }
  return r;
}

/**
 * The candidate keys with the one valid when the message was stored first (the oldest key
 * replaced after it), so a recovery after rotations verifies each message once, not once per key.
 */
function byTime<T extends { until: string | null }>(candidates: T[], serverTime: string): T[] {
  // One key that was never replaced (every delivery from a contact who did not rotate): nothing to order.
  if (candidates.length === 1 && candidates[0]!.until === null) return candidates;
  const at = Date.parse(serverTime);
  let best = -1;
  for (let i = 0; i < candidates.length; i++) {
    const u = candidates[i]!.until;
    if (u === null || !(at <= Date.parse(u))) continue;
    if (best < 0 || Date.parse(u) < Date.parse(candidates[best]!.until!)) best = i;
  }
  if (best <= 0) return candidates;
  return [candidates[best]!, ...candidates.slice(0, best), ...candidates.slice(best + 1)];
}
