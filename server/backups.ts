import { backupParamsOf, proofMatches } from "../core/crypto/backup.js";
import { ZmqchatError } from "../core/errors.js";
import type { ReplyBody } from "../core/protocol/schema.js";
import type { Store } from "./store/store.js";

/** How the service stores a backup: the client's blob and the verifier of its proof. */
interface StoredBackup {
  zmqchatBackup: 2;
  verifier: string | null;
  blob: string;
}

function parse(text: string): StoredBackup {
  try {
    const s = JSON.parse(text) as Partial<StoredBackup>;
    if (s.zmqchatBackup === 2 && typeof s.blob === "string")
      return { zmqchatBackup: 2, verifier: typeof s.verifier === "string" ? s.verifier : null, blob: s.blob };
  } catch {
    // Not ours: a blob stored as it was, before verifiers.
  }
  return { zmqchatBackup: 2, verifier: null, blob: text };
}

/**
 * Key backups behind an access check: the owner's session, or a proof derived from the
 * passphrase that matches the stored verifier (compared in constant time). The server never
 * sees the passphrase or the backup's encryption key.
 */
export class Backups {
  constructor(private readonly store: Store) {}

  async put(name: string, blob: string, verifier: string | undefined): Promise<void> {
    const stored: StoredBackup = { zmqchatBackup: 2, verifier: verifier ?? null, blob };
    await this.store.putBackup(name, JSON.stringify(stored));
  }

  /** The blob, for its owner (`sessionUser === name`) or for a matching proof; unauthorized otherwise. */
  async get(name: string, sessionUser: string | null, proof: string | undefined): Promise<string> {
    const text = await this.store.getBackup(name);
    const owner = sessionUser === name;
    if (!owner && proof === undefined)
      throw new ZmqchatError(
        "unauthorized",
        "a key backup is given only to its owner's session or with a proof derived from its passphrase",
      );
    if (text === null) throw new ZmqchatError("not_found", `${name} has no key backup`);
    const stored = parse(text);
    if (owner) return stored.blob;
    if (stored.verifier === null)
      throw new ZmqchatError(
        "unauthorized",
        `${name}'s backup was made by an older zmqchat without a passphrase proof: it can be fetched only by ${name}'s session (run \`zmqchat keys backup\` again on a device that has the keys)`,
      );
    if (!proofMatches(proof!, stored.verifier))
      throw new ZmqchatError(
        "unauthorized",
        "wrong passphrase: the proof derived from it does not match this backup",
      );
    return stored.blob;
  }

  /** The salt and cost to derive the proof with (public: without the verifier or blob they allow no offline guess). */
  async params(name: string): Promise<ReplyBody<"backup.params">> {
    const text = await this.store.getBackup(name);
    if (text === null) throw new ZmqchatError("not_found", `${name} has no key backup`);
    const stored = parse(text);
    const p = backupParamsOf(stored.blob);
    if (!p)
      throw new ZmqchatError("not_found", `${name}'s key backup is in a format this server does not know`);
    return { kdf: p.kdf, N: p.N, r: p.r, p: p.p, salt: p.salt, proof: stored.verifier !== null && p.v === 2 };
  }
}
