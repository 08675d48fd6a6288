import { fingerprint } from "../crypto/keys.js";
import { ZmqchatError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { GroupInfo, KeyLink, MailboxItem, PublicKeys, UserInfo } from "../protocol/schema.js";
import type { Cache, ChatMessage, Contact } from "./cache.js";
import { convOfTarget } from "./conv.js";
import { ContactKeys, type ContactKeyView, replacedAt } from "./key-history.js";
import type { Opened } from "./open.js";

/** Where a message goes: one user, or a group. */
export type Target = { user: string } | { group: string };

/** How long a contact's keys (or a group's members) looked up for a send are trusted without asking again. */
const KEY_CHECK_MS = 60_000;

/** What the key book needs from the client around it. */
export interface KeyBookDeps {
  /** This user's name and keys (a recipient like any other in groups and own-device copies). */
  name: string;
  publicKeys: PublicKeys;
  cache: Cache;
  log: Logger;
  /** Looks users up on the service (`users` request). */
  lookupUsers(names: string[], timeoutMs?: number): Promise<UserInfo[]>;
  /** A group's current members (`group.info` request). */
  groupInfo(name: string, timeoutMs: number): Promise<GroupInfo>;
  /** A user's key history as the service keeps it (`keys.history` request). */
  keyHistory(name: string): Promise<KeyLink[]>;
  /** Opens one mailbox item with the keys the book knows now. */
  openOne(item: MailboxItem): Opened;
  keyChanged(name: string): void;
  shown(message: ChatMessage): void;
}

/**
 * The client's key book: pins contacts' keys on first sight (TOFU), keeps their checked key
 * histories, answers who a message goes to and with which keys (refusing a recipient whose keys
 * changed and were not trusted), and releases what was held during a key change once trusted.
 */
export class KeyBook {
  /** Contacts' checked key histories: which key verifies which message. */
  private readonly contactKeys: ContactKeys;
  private readonly keysCheckedAt = new Map<string, number>();
  private readonly groupCache = new Map<string, { info: GroupInfo; at: number }>();

  constructor(private readonly deps: KeyBookDeps) {
    this.contactKeys = new ContactKeys(deps.cache, (name) => deps.keyHistory(name));
  }

  /** What the opener asks: a contact's pinned keys and which keys verify their messages. */
  readonly lookup = {
    contact: (n: string): Contact | null => this.deps.cache.contact(n),
    keysOf: (n: string): ContactKeyView | null => this.contactKeys.view(n),
    ownReplacedAt: (keys: PublicKeys): string | null =>
      replacedAt(this.contactKeys.chain(this.deps.name), keys),
  };

  /** Pins (or records as pending) the keys the service presented for a user. */
  pin(u: UserInfo): void {
    if (u.name === this.deps.name) return;
    const seen = this.deps.cache.see(u.name, u.keys);
    if (seen === "changed") {
      // Views say it in their own words (the event); the log keeps a record.
      this.deps.log.info({ user: u.name }, "key changed");
      this.deps.keyChanged(u.name);
    }
  }

  /** Fetches the key histories of `names` and pins what they end with. */
  async refresh(names: string[]): Promise<void> {
    for (const u of await this.contactKeys.refresh(names)) this.pin(u);
  }

  /** Recipients with their pinned keys; refuses when a recipient's keys changed and were not trusted. */
  async recipientsOf(
    target: Target,
    fresh: boolean,
    deadline: number,
  ): Promise<Array<{ name: string; keys: PublicKeys }>> {
    const { cache, name: me } = this.deps;
    let names: string[];
    if ("user" in target) {
      names = [target.user];
      const stale = Date.now() - (this.keysCheckedAt.get(target.user) ?? 0) > KEY_CHECK_MS;
      if (fresh || stale || !cache.contact(target.user)) {
        await this.once(fresh, `u:${target.user}`, async () => {
          const found = await this.deps.lookupUsers(names, remaining(deadline));
          if (found.length === 0) throw new ZmqchatError("not_found", `no user named ${target.user}`);
          for (const u of found) this.pin(u);
          this.keysCheckedAt.set(target.user, Date.now());
        });
      }
    } else {
      const key = convOfTarget(target);
      const cached = this.groupCache.get(key);
      if (fresh || !cached || Date.now() - cached.at >= KEY_CHECK_MS) {
        await this.once(fresh, key, async () => {
          const info = await this.deps.groupInfo(target.group, remaining(deadline));
          for (const u of info.members) this.pin(u);
          this.groupCache.set(key, { info, at: Date.now() });
        });
      }
      names = this.groupCache.get(key)!.info.members.map((m) => m.name);
    }
    return names.map((name) => {
      if (name === me) return { name, keys: this.deps.publicKeys };
      const c = cache.contact(name)!;
      if (c.pending) {
        // A contact the user verified gets both safety numbers, to compare the new one with them.
        const numbers = c.verified
          ? ` (verified safety number: ${fingerprint(name, c.keys)}; new: ${fingerprint(name, c.pending)})`
          : "";
        throw new ZmqchatError(
          "key_changed",
          `${name}'s keys changed since you first saw them; the message was not sent${numbers}`,
          {
            hint: `compare fingerprints with ${name} (zmqchat keys fingerprint ${name}), then run: zmqchat keys trust ${name}`,
          },
        );
      }
      return { name, keys: c.keys };
    });
  }

  /**
   * Runs one look-up per key at a time: many sends composed at once to a contact not looked up
   * yet share one request (a `fresh` look-up, after a refusal, always asks again).
   */
  private async once(fresh: boolean, key: string, lookUp: () => Promise<void>): Promise<void> {
    const running = fresh ? undefined : this.lookups.get(key);
    if (running) return running;
    const p = lookUp().finally(() => {
      if (this.lookups.get(key) === p) this.lookups.delete(key);
    });
    if (!fresh) this.lookups.set(key, p);
    return p;
  }

  private readonly lookups = new Map<string, Promise<void>>();

  /**
   * Which keys verify `name`'s messages, and whether a pending change is a signed rotation.
   * With `fetch`, the key history is fetched first (offline: what the cache holds).
   */
  async keyView(name: string, fetch = true): Promise<ContactKeyView | null> {
    if (fetch) {
      try {
        await this.refresh([name]);
      } catch (err) {
        this.deps.log.warn({ err }, "could not fetch a key history");
      }
    }
    return this.contactKeys.view(name);
  }

  /**
   * Marks a contact's pinned keys verified after the user compared safety numbers (fetches
   * and pins them first when unknown). Refuses while a key change waits for `trust`.
   */
  async verifyContact(name: string): Promise<{ keys: PublicKeys; already: boolean }> {
    const { cache } = this.deps;
    if (!cache.contact(name)) for (const u of await this.deps.lookupUsers([name])) this.pin(u);
    const c = cache.contact(name);
    if (!c) throw new ZmqchatError("not_found", `no user named ${name}`);
    if (c.pending)
      throw new ZmqchatError("key_changed", `${name}'s keys changed and are not trusted yet`, {
        hint: `compare the new safety number (zmqchat keys fingerprint ${name}), then: zmqchat keys trust ${name}`,
      });
    if (!c.verified) cache.markVerified(name);
    return { keys: c.keys, already: c.verified };
  }

  /** Accepts a contact's changed keys after the user compared fingerprints. */
  trust(name: string): boolean {
    const ok = this.deps.cache.trust(name);
    this.keysCheckedAt.delete(name);
    if (ok) this.releaseHeld(name);
    return ok;
  }

  /** Opens again what was held for `name` during a key change; shows what now verifies. */
  private releaseHeld(name: string): void {
    const { cache } = this.deps;
    const shown: ChatMessage[] = [];
    for (const item of cache.heldFrom(name)) {
      const o = this.deps.openOne(item);
      if (o.held) continue;
      shown.push(o.message);
    }
    if (shown.length === 0) return;
    const fresh = cache.addMessages(shown, null);
    for (const m of shown) cache.unhold(m.id);
    for (const m of fresh) this.deps.shown(m);
  }
}

export function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}
