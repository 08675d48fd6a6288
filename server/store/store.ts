import type { PublicKeys } from "../../core/protocol/schema.js";

export interface UserRecord {
  name: string;
  keys: PublicKeys;
}

/** The signatures that bind a rotation: by the old keys and by the new ones, over rotationBytes. */
export interface RotationProof {
  sig: string;
  sigNew: string | null;
}

/** One key of a user's history, as kept by the store. */
export interface KeyLinkRecord {
  keys: PublicKeys;
  sig: string | null;
  sigNew: string | null;
  /** ISO time the store took the key. */
  at: string;
}

export interface GroupRecord {
  name: string;
  owner: string;
  /** Members in the order they joined, owner first. Only members get the group's messages. */
  members: string[];
  /** Users invited who have neither accepted nor declined yet, in the order they were invited. */
  invited: string[];
  /** Members the owner made admins (issue 17); absent when none. */
  admins?: string[];
  /** The display title set by a rename; absent when none. */
  title?: string;
}

/** What `updateGroup` changes: the fields given. */
export interface GroupChange {
  owner?: string;
  admins?: string[];
  title?: string;
}

/** One recorded change of a group (a system line, issue 17), as the service makes it. */
export interface GroupEventRecord {
  /** A UUIDv7 the service made. */
  id: string;
  group: string;
  /** ISO time the service made the change. */
  at: string;
  kind: string;
  actor: string;
  target: string | null;
  title: string | null;
}

/** A group as a caller creates it: no invitations unless given. */
export type NewGroup = Omit<GroupRecord, "invited"> & { invited?: string[] };

export interface StoredItem {
  cursor: string;
  serverTime: string;
  /** The envelope as JSON text, exactly as stored. */
  envelope: string;
}

export interface AppendInput {
  /** The client-made message id: a second append with the same id into the same mailbox is not stored again. */
  id: string;
  /** Every mailbox to store the message in (recipients and the sender). */
  owners: string[];
  envelope: string;
  /**
   * Per-owner copies that replace `envelope` in those mailboxes (envelope v2 keeps only the
   * owner's own wrapped key in each copy, so storage grows linearly with a group).
   */
  copies?: ReadonlyMap<string, string>;
}

/** The envelope text `owner`'s mailbox keeps for this append. */
export function envelopeFor(input: AppendInput, owner: string): string {
  return input.copies?.get(owner) ?? input.envelope;
}

/** The bytes an append stores over all its mailboxes (JSON text, UTF-16 length as an estimate). */
export function appendChars(input: AppendInput): number {
  let n = 0;
  for (const owner of new Set(input.owners)) n += envelopeFor(input, owner).length;
  return n;
}

/** One mailbox copy's place (see AppendResult). */
export interface Placement {
  cursor: string;
  serverTime: string;
  prev?: string | null;
}

export interface AppendResult {
  /**
   * Where the message now sits in each owner's mailbox. `prev` is the position just before it in
   * that mailbox (null: it is the first), so a client at `prev` can apply a live delivery without
   * reading; absent when the store cannot tell for sure (the client then syncs).
   */
  placed: Map<string, Placement>;
  /** True when every copy was already there (a resend). */
  duplicate: boolean;
}

/** One device of a user (server/devices.ts): its own id, sessions and delivery topic. */
export interface DeviceRecord {
  /** The device id the client logs in with (16 hex characters). */
  id: string;
  name: string;
  /** When it was added (ms since the epoch). */
  added: number;
  /** Its latest login (ms since the epoch), null before the first. */
  lastSeen: number | null;
  /** When it was revoked (ms since the epoch), null while it is live. */
  revoked: number | null;
  /** The device's own X25519 public key (raw, base64url): new keys after a revocation are sealed to it. */
  key: string | null;
  /** The user's Ed25519 signature over the device key (core/client/device-keys.ts). */
  keySig?: string | null;
}

/** What a store reports for `/metrics` (server/metrics.ts makes the Prometheus side). */
export interface StoreMetrics {
  /** One group commit: how many appends it carried and how long the write took. */
  batch(appends: number, seconds: number): void;
  /**
   * A group commit that found the write lock held by another process (SQLite's SQLITE_BUSY):
   * how long it waited from its first refused try until it committed, and how many tries it made.
   */
  lockWait?(seconds: number, tries: number): void;
  /** A store operation that failed (`append`, ...). */
  error(operation: string): void;
}

/**
 * Durable storage of users, groups and mailboxes. Every implementation passes
 * test/contract/store-contract.ts. All methods may throw ZmqchatError("unavailable") when the
 * backing store cannot be reached; an append that throws stored nothing the caller may rely on.
 */
export interface Store {
  /** Creates what is missing (tables, database) and checks the store answers. */
  init(): Promise<void>;
  /** Binds a name to keys once. Returns the keys the name is bound to (the earlier ones if it was taken). */
  registerUser(user: UserRecord): Promise<{ created: boolean; user: UserRecord }>;
  getUsers(names: string[]): Promise<UserRecord[]>;
  /** Users by name; with `page`, only those after `page.after` (exclusive), at most `page.limit`. */
  listUsers(page?: { after?: string; limit: number }): Promise<UserRecord[]>;
  /** Creates a group; when the name exists, returns the existing group with `created: false`. */
  createGroup(group: NewGroup): Promise<{ created: boolean; group: GroupRecord }>;
  /**
   * Replaces a group's members and pending invitations (none when `invited` is absent); the
   * caller checked who may. Throws not_found for unknown groups.
   */
  setMembers(name: string, members: string[], invited?: string[]): Promise<GroupRecord>;
  /**
   * Changes a group's owner, admins or title (the fields `change` gives; members stay); the caller
   * checked who may. Admins are kept only while members (setMembers drops the others). Throws
   * not_found for unknown groups.
   */
  updateGroup(name: string, change: GroupChange): Promise<GroupRecord>;
  /** Records one change of a group; resolves when it is durable. */
  addGroupEvent(event: GroupEventRecord): Promise<void>;
  /**
   * A group's recorded changes after the cursor `after` (exclusive; null from the first), oldest
   * first, at most `limit`; each with its cursor (an opaque decimal string).
   */
  groupEvents(
    group: string,
    after: string | null,
    limit: number,
  ): Promise<{ events: Array<GroupEventRecord & { cursor: string }>; more: boolean }>;
  getGroup(name: string): Promise<GroupRecord | null>;
  /** The groups `user` is a member of or invited to, by name. */
  groupsOf(user: string): Promise<GroupRecord[]>;
  /**
   * Replaces a user's keys, but only when they are still `from` (the caller checked a
   * signature by the old key). Returns false when the keys were not `from`.
   */
  rotateKeys(
    name: string,
    from: UserRecord["keys"],
    to: UserRecord["keys"],
    proof?: RotationProof,
  ): Promise<boolean>;
  /** Every key the user has had, oldest first, with the rotation signatures; empty for an unknown user. */
  keyHistory(name: string): Promise<KeyLinkRecord[]>;
  /** Stores (replaces) a user's passphrase-encrypted key backup: opaque text. */
  putBackup(name: string, blob: string): Promise<void>;
  getBackup(name: string): Promise<string | null>;
  /**
   * Uses up a one-time token (a login challenge's nonce): true for exactly one caller across
   * every server sharing the store, false for every later (or losing, concurrent) one. The
   * store may forget a token once `expires` (ms since the epoch) has passed.
   */
  claimOnce(token: string, expires: number): Promise<boolean>;
  /**
   * Ends a user's sessions of one scope (`*` every session, `device:ID` one device's,
   * `key:TAG` one key generation's) issued before `before` (ms since the epoch). A later call
   * for the same scope keeps the later time.
   */
  revokeSessions(name: string, scope: string, before: number): Promise<void>;
  /** A user's revocations: scope → sessions issued before this time are ended. */
  sessionRevocations(name: string): Promise<Map<string, number>>;
  /** Stores (replaces) one device record of a user. */
  putDevice(name: string, device: DeviceRecord): Promise<void>;
  /** A user's devices (revoked ones included), oldest first. */
  listDevices(name: string): Promise<DeviceRecord[]>;
  /**
   * Keeps an opaque sealed value under `key` until `expires` (ms since the epoch), replacing
   * any earlier one: the link relay and the keys pushed to devices after a revocation.
   * Single use is the caller's part (claimOnce).
   */
  putDrop(key: string, value: string, expires: number): Promise<void>;
  /** The value under `key`, or null when there is none or it expired before `now`. */
  getDrop(key: string, now: number): Promise<string | null>;
  /** Stores one message in several mailboxes; resolves only when the write is durable. */
  append(input: AppendInput): Promise<AppendResult>;
  /**
   * Stores several messages at once, as `append` each, in as few writes as the store can (one
   * transaction on SQLite, one group commit on InfluxDB while the batch fits in one); the results
   * come in the order of `inputs`. A later input with the id of an earlier one is a resend of it.
   * All or nothing: when it throws, the caller may rely on none of them being stored.
   */
  appendMany(inputs: readonly AppendInput[]): Promise<AppendResult[]>;
  /**
   * As `appendMany`, but only when `follows.owner`'s mailbox already holds a copy of message
   * `follows.id`; resolves null otherwise, having stored none of `inputs`. Every copy of `inputs`
   * then lies after every copy of that message's own append in every mailbox, also when another
   * server stored it: a client with several `send.many` requests in flight keeps its order by
   * naming each request's predecessor. A store that cannot tell for sure (committed and visible
   * to every server, placed after) does not implement it, and the service keeps clients at one
   * request in flight.
   */
  appendFollowing?(
    follows: { owner: string; id: string },
    inputs: readonly AppendInput[],
  ): Promise<AppendResult[] | null>;
  /**
   * The owner's mailbox after `after` (exclusive), oldest first: at most `limit` items and, when
   * `maxChars` is given, stopping before the envelopes' total length would pass it (but always
   * at least one item); `more` tells whether anything was left.
   */
  read(
    owner: string,
    after: string | null,
    limit: number,
    maxChars?: number,
  ): Promise<{ items: StoredItem[]; more: boolean }>;
  /** How many messages the owner's mailbox holds (for the mailbox quota, server/limits.ts). */
  mailboxSize(owner: string): Promise<number>;
  close(): Promise<void>;
}
