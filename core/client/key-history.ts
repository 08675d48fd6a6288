import { verify } from "node:crypto";
import { PublicKeyCache } from "../crypto/keys.js";
import { rotationBytes } from "../crypto/login.js";
import type { KeyLink, PublicKeys } from "../protocol/schema.js";
import type { Cache, Contact } from "./cache.js";

/**
 * A user's key history as the server keeps it (oldest first), checked link by link: link i
 * is forward-signed when the key before it signed "this name moves from key i-1 to key i",
 * and backward-signed when key i signed the same bytes. Forward signatures prove a rotation
 * was made by the holder of the older key; backward signatures prove the newer key claims the
 * older one as its past, which is what lets a client that pinned a newer key trust the older
 * keys for older messages (a server cannot invent a past key for a key it does not hold).
 */
export interface CheckedChain {
  links: KeyLink[];
  forward: boolean[];
  backward: boolean[];
}

/** A key a message from a contact may be verified with; `until` bounds when the server may have stored such a message. */
export interface SenderKey {
  keys: PublicKeys;
  /** When the next key replaced this one (null for the pinned key): later messages signed by it are refused. */
  until: string | null;
}

/** What a contact's pinned keys and checked chain allow. */
export interface ContactKeyView {
  /** Keys a message may be verified with: the pinned one first, then older ones back along the chain. */
  accepted: SenderKey[];
  /** Newer keys not trusted yet: a message signed by one of them is held until `keys trust`. */
  held: PublicKeys[];
  /** True when the pending key is reached from the pinned one by rotations each signed by the key before. */
  pendingSigned: boolean;
}

const same = (a: PublicKeys, b: PublicKeys) => a.sign === b.sign && a.enc === b.enc;

/** Checks every link of a chain (Ed25519 over `rotationBytes`, both directions). */
export function checkChain(name: string, links: KeyLink[], keys = new PublicKeyCache()): CheckedChain {
  const forward = [false];
  const backward = [false];
  const signedBy = (bytes: Buffer, signKey: string, sig: string | null) => {
    if (!sig) return false;
    try {
      return verify(null, bytes, keys.signKey(signKey), Buffer.from(sig, "base64url"));
    } catch {
      return false;
    }
  };
  for (let i = 1; i < links.length; i++) {
    const before = links[i - 1]!;
    const link = links[i]!;
    const bytes = rotationBytes(name, before.keys, link.keys);
    forward.push(signedBy(bytes, before.keys.sign, link.sig));
    backward.push(signedBy(bytes, link.keys.sign, link.sigNew));
  }
  return { links, forward, backward };
}

/**
 * The keys a contact's messages may be verified with. Only keys on the checked chain count:
 * the pinned key, older keys reached from it by links signed both ways (each valid until the
 * next key replaced it), and newer keys reached by forward-signed rotations (held, not shown).
 * A pending key that is not on such a chain is held too, and never accepted before trust.
 */
export function contactKeyView(contact: Contact, chain: CheckedChain | null): ContactKeyView {
  const accepted: SenderKey[] = [{ keys: contact.keys, until: null }];
  const held: PublicKeys[] = [];
  let pendingSigned = false;
  const links = chain?.links ?? [];
  let p = -1;
  for (let i = links.length - 1; i >= 0; i--) {
    if (same(links[i]!.keys, contact.keys)) {
      p = i;
      break;
    }
  }
  if (chain && p >= 0) {
    for (let j = p - 1; j >= 0; j--) {
      if (!chain.forward[j + 1] || !chain.backward[j + 1]) break;
      accepted.push({ keys: links[j]!.keys, until: links[j + 1]!.at });
    }
    for (let k = p + 1; k < links.length; k++) {
      if (!chain.forward[k]) break;
      held.push(links[k]!.keys);
      if (contact.pending && same(links[k]!.keys, contact.pending)) pendingSigned = true;
    }
  }
  if (contact.pending && !held.some((k) => same(k, contact.pending!))) held.push(contact.pending);
  return { accepted, held, pendingSigned };
}

/**
 * When the key generation `keys` was replaced on `chain` (the time of the rotation away from it,
 * as the server recorded it), or null when the chain does not show a rotation away from it that
 * its holder signed. Used for this user's own keys (core/client/open.ts, suite 3).
 */
export function replacedAt(chain: CheckedChain | null, keys: PublicKeys): string | null {
  const links = chain?.links ?? [];
  for (let i = links.length - 2; i >= 0; i--) {
    if (same(links[i]!.keys, keys)) return chain!.forward[i + 1] ? links[i + 1]!.at : null;
  }
  return null;
}

/**
 * Contacts' key histories for one client: fetched from the server when a message does not
 * verify with what is known, checked, and kept in the cache (so `keys trust` and later runs
 * work offline).
 */
export class ContactKeys {
  private readonly keyCache = new PublicKeyCache();
  private readonly memo = new Map<string, { raw: string; chain: CheckedChain }>();

  constructor(
    private readonly cache: Cache,
    private readonly fetch: (name: string) => Promise<KeyLink[]>,
  ) {}

  /** The keys that verify `name`'s messages, or null when `name` is not a contact. */
  view(name: string): ContactKeyView | null {
    const contact = this.cache.contact(name);
    if (!contact) return null;
    return contactKeyView(contact, this.chain(name));
  }

  /** The checked chain kept for `name`, if any. */
  chain(name: string): CheckedChain | null {
    const raw = this.cache.getState(`keychain:${name}`);
    if (raw === null) return null;
    const memo = this.memo.get(name);
    if (memo?.raw === raw) return memo.chain;
    let links: KeyLink[];
    try {
      links = JSON.parse(raw) as KeyLink[];
    } catch {
      return null;
    }
    const chain = checkChain(name, links, this.keyCache);
    this.memo.set(name, { raw, chain });
    return chain;
  }

  /** Fetches and keeps the chains of `names`; returns each one's newest key, for the caller to pin (TOFU or pending). */
  async refresh(names: string[]): Promise<Array<{ name: string; keys: PublicKeys }>> {
    const out: Array<{ name: string; keys: PublicKeys }> = [];
    for (const name of names) {
      const links = await this.fetch(name);
      if (links.length === 0) continue;
      this.cache.setState(`keychain:${name}`, JSON.stringify(links));
      out.push({ name, keys: links.at(-1)!.keys });
    }
    return out;
  }
}
