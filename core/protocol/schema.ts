import { z } from "zod";
import { WIRE_ERROR_CODES } from "../errors.js";
import { deviceReplyBodies, deviceRequestBodies } from "./devices.js";
import { fileReplyBodies, fileRequestBodies } from "./files.js";
import { UUID_PATTERN } from "./ids.js";
import {
  MAX_BATCH_LEAVES,
  MAX_BATCH_PATH_CHARS,
  MAX_DELIVERIES_PER_FRAME,
  MAX_GROUP_MEMBERS,
  MAX_SEND_MANY,
  MAX_SYNC_PAGE,
  NAME_PATTERN,
  NAME_RULE,
  PROTOCOL_VERSION,
  TOPIC_PATTERN,
} from "./limits.js";

export const nameSchema = z.string().regex(NAME_PATTERN, `a name has ${NAME_RULE}`);
const b64 = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/, "base64url expected")
  .max(8192);
const key32 = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "a 32-byte base64url key expected");
const uuid = z.string().regex(UUID_PATTERN, "a UUID expected");
/** Cursors are opaque decimal strings (SQLite row ids, InfluxDB nanosecond times): never JSON numbers. */
export const cursorSchema = z.string().regex(/^[0-9]{1,24}$/, "a cursor is a decimal string");

/** A public identity: the Ed25519 signing key and the X25519 encryption key, raw, base64url. */
export const publicKeysSchema = z.strictObject({ sign: key32, enc: key32 });
export type PublicKeys = z.infer<typeof publicKeysSchema>;

export const userInfoSchema = z.object({ name: nameSchema, keys: publicKeysSchema });
export type UserInfo = z.infer<typeof userInfoSchema>;

const envelopeFields = {
  suite: z.string().max(64),
  id: uuid,
  from: nameSchema,
  device: z.string().regex(/^[0-9a-f]{16}$/),
  to: nameSchema.nullable(),
  group: nameSchema.nullable(),
  seq: z.number().int().nonnegative(),
  sentAt: z.string().max(40),
  nonce: b64,
  ct: z.string().regex(/^[A-Za-z0-9_-]*$/),
  keys: z
    .array(z.object({ to: nameSchema, wk: b64 }))
    .min(1)
    .max(MAX_GROUP_MEMBERS + 1),
  sig: b64,
};

const { sig: _signature, ...unsignedFields } = envelopeFields;
/**
 * Version 3, 1:1 messages only: no signature; the sender is authenticated by AES-GCM under the
 * pairwise key named by the key ids `fromKey` and `toKey` (core/crypto/envelope.ts, SUITE_V3).
 */
const pairwiseFields = {
  ...unsignedFields,
  to: nameSchema,
  group: z.null(),
  fromKey: z.string().regex(/^[A-Za-z0-9_-]{16}$/, "a key id expected"),
  toKey: z.string().regex(/^[A-Za-z0-9_-]{16}$/, "a key id expected"),
  kc: key32,
  keys: z
    .array(z.object({ to: nameSchema, wk: b64 }))
    .min(1)
    .max(2),
};

/**
 * Version 4 (suite 4): version 2's fields, the signature over the Merkle root of the envelopes
 * of one send (core/crypto/merkle.ts), and this envelope's place in that tree with its inclusion
 * path (`path`: the sibling hashes, 32 bytes each, concatenated, base64url; empty for a tree of one).
 */
export const batchSchema = z.strictObject({
  size: z.number().int().min(1).max(MAX_BATCH_LEAVES),
  index: z.number().int().nonnegative(),
  path: z
    .string()
    .max(MAX_BATCH_PATH_CHARS)
    .regex(/^[A-Za-z0-9_-]*$/),
});

/**
 * The sealed message as the server sees it. Routing fields are in clear; the text is in `ct`.
 * `sig` signs the other fields (see core/crypto/envelope.ts). The server checks routing, never content.
 * Version 1 signs every wrapped key too, so each mailbox copy must carry all of them; version 2
 * signs a key commitment `kc` instead, so each mailbox copy keeps only its owner's wrapped key.
 * Version 3 (1:1 only) has no `sig`: the wrapped key authenticates the whole envelope.
 * Version 4 is version 2 with one signature for a batch of envelopes: `sig` signs the root of
 * their Merkle tree, and `batch` places this envelope in it.
 */
export const envelopeSchema = z.discriminatedUnion("v", [
  z.strictObject({ v: z.literal(1), ...envelopeFields }),
  z.strictObject({ v: z.literal(2), ...envelopeFields, kc: key32 }),
  z.strictObject({ v: z.literal(3), ...pairwiseFields }),
  z.strictObject({ v: z.literal(4), ...envelopeFields, kc: key32, batch: batchSchema }),
]);
export type Envelope = z.infer<typeof envelopeSchema>;

/** One mailbox entry: where it sits in the owner's mailbox, when the server stored it, what it holds. */
export const mailboxItemSchema = z.object({
  cursor: cursorSchema,
  serverTime: z.string(),
  envelope: envelopeSchema,
});
export type MailboxItem = z.infer<typeof mailboxItemSchema>;

const groupMembers = z.array(nameSchema).max(MAX_GROUP_MEMBERS);

/** A group's display title: 1 to 64 characters, none of them control or format characters (terminal escapes). */
export const groupTitleSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$/u, "a title has no control characters")
  .refine((t) => t.trim() === t && t !== "", "a title neither starts nor ends with spaces");

/** What a group's system line says happened (issue 17). */
export const GROUP_EVENT_KINDS = [
  "created",
  "added",
  "joined",
  "declined",
  "removed",
  "left",
  "renamed",
  "owner",
  "admin",
  "unadmin",
] as const;
export type GroupEventKind = (typeof GROUP_EVENT_KINDS)[number];

/** One change of a group as the server recorded it when it made it. */
export const groupEventSchema = z.object({
  cursor: cursorSchema,
  id: uuid,
  at: z.string().max(40),
  kind: z.enum(GROUP_EVENT_KINDS),
  /** Who made the change (for joined, declined and left: the member themself). */
  actor: nameSchema,
  /** Whom it concerns (null for created and renamed). */
  target: nameSchema.nullable(),
  /** The new title (renamed only). */
  title: groupTitleSchema.nullable(),
});
export type GroupEvent = z.infer<typeof groupEventSchema>;

/** Most characters of a signal's sealed content (a group signal carries a wrapped key per member). */
export const MAX_SIGNAL_SEALED_CHARS = 64 * 1024;

/** Request bodies, by request type. */
export const requestBodies = {
  hello: z.strictObject({}),
  ping: z.strictObject({}),
  register: z.strictObject({ name: nameSchema, keys: publicKeysSchema }),
  challenge: z.strictObject({ name: nameSchema }),
  login: z.strictObject({
    name: nameSchema,
    nonce: b64,
    expires: z.number().int(),
    mac: b64,
    sig: b64,
    /** This device's id: `logout` ends the sessions of one device. */
    device: z
      .string()
      .regex(/^[0-9a-f]{16}$/)
      .optional(),
    /** This device's CURVE public key (raw, base64url): binds the session to it (core/crypto/session-binding.ts). */
    curve: key32.optional(),
    /** Proof of the CURVE secret key for this challenge. */
    curveProof: key32.optional(),
    /** The challenge's `bind`, accepted and ignored, so a client may echo the whole challenge back. */
    bind: key32.optional(),
  }),
  /** With `names`: those users. Without: every user, one page at a time, after the name `after`. */
  users: z.strictObject({
    names: z.array(nameSchema).max(MAX_GROUP_MEMBERS).optional(),
    after: nameSchema.optional(),
  }),
  "group.create": z.strictObject({ name: nameSchema, members: groupMembers }),
  "group.add": z.strictObject({ name: nameSchema, members: groupMembers.min(1) }),
  "group.remove": z.strictObject({ name: nameSchema, members: groupMembers.min(1) }),
  "group.info": z.strictObject({ name: nameSchema }),
  /** Invitations: a member added by the owner is invited and receives nothing until accepting. */
  "group.accept": z.strictObject({ name: nameSchema }),
  "group.decline": z.strictObject({ name: nameSchema }),
  "group.leave": z.strictObject({ name: nameSchema }),
  /** Issue 17: the owner sets the group's display title (its name, the id scripts use, stays). */
  "group.rename": z.strictObject({ name: nameSchema, title: groupTitleSchema }),
  /** The owner hands the group over to a member. */
  "group.owner": z.strictObject({ name: nameSchema, user: nameSchema }),
  /** The owner makes a member an admin (who may add and remove plain members), or no longer one. */
  "group.admin": z.strictObject({ name: nameSchema, user: nameSchema, remove: z.boolean().optional() }),
  /** The server's record of a group's changes (system lines), oldest first, after the cursor `after`. */
  "group.events": z.strictObject({ name: nameSchema, after: cursorSchema.optional() }),
  /** The caller's groups, one page at a time, after the group named `after`. */
  groups: z.strictObject({ after: nameSchema.optional() }),
  send: z.strictObject({ envelope: envelopeSchema }),
  /**
   * Several envelopes at once, each handled as `send` would (same checks and quotas, each
   * refused on its own, except that one refused "not now" (unavailable, rate_limited) refuses
   * the rest the same way, so none lands before it); the server stores them in as few
   * transactions as it can.
   */
  "send.many": z.strictObject({
    envelopes: z.array(envelopeSchema).min(1).max(MAX_SEND_MANY),
    /**
     * The id of this device's envelope that must be stored before these (the last one of its
     * previous request still in flight): the server stores the request only once the sender's
     * own mailbox holds it, and otherwise refuses every envelope as `unavailable` to be sent
     * again. Only to a server whose login reply offered `pipeline` (an older one refuses it).
     */
    follows: uuid.optional(),
    /**
     * This device stores its own copies from the reply (each with its `prev`): the server does
     * not publish them on this session's device topics (other devices of the user still get
     * theirs). Only to a server whose login reply offered `quiet` (an older one refuses it).
     */
    quiet: z.literal(true).optional(),
  }),
  sync: z.strictObject({ after: cursorSchema.nullable(), limit: z.number().int().min(1).max(MAX_SYNC_PAGE) }),
  /** `sig` by the current keys; `sigNew` by the new ones over the same bytes (so the chain verifies both ways). */
  "keys.rotate": z.strictObject({ keys: publicKeysSchema, sig: b64, sigNew: b64.optional() }),
  "keys.history": z.strictObject({ name: nameSchema }),
  "backup.put": z.strictObject({
    blob: z
      .string()
      .min(1)
      .max(64 * 1024),
    /** SHA-256 of the backup's auth key (see core/crypto/backup.ts): lets a proof fetch it without a session. */
    verifier: key32.optional(),
  }),
  /** Needs the owner's session, or `proof` (the auth key derived from the passphrase). */
  "backup.get": z.strictObject({ name: nameSchema, proof: key32.optional() }),
  /** The public salt and cost of a user's backup, to derive the proof on a new machine. */
  "backup.params": z.strictObject({ name: nameSchema }),
  /** A fresh token for the current session, before it expires, without a new signed login. */
  "session.renew": z.strictObject({}),
  /** Ends this device's sessions (every session of the user with `all`). */
  logout: z.strictObject({ all: z.boolean().optional() }),
  /** An ephemeral signal (typing, presence), relayed live and never stored (server/ephemeral.ts). */
  signal: z.strictObject({
    to: nameSchema.nullable(),
    group: nameSchema.nullable(),
    sealed: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, "base64url expected")
      .max(MAX_SIGNAL_SEALED_CHARS),
  }),
  ...deviceRequestBodies,
  /** Attachments: upload and download of encrypted chunks (core/protocol/files.ts). */
  ...fileRequestBodies,
} as const;

export type RequestType = keyof typeof requestBodies;
export type RequestBody<T extends RequestType> = z.infer<(typeof requestBodies)[T]>;
export const REQUEST_TYPES = Object.keys(requestBodies) as RequestType[];

/**
 * One key a user has had, oldest first: the first is the registered one (no signatures); each
 * later one carries the rotation signatures by the key before it (`sig`) and by itself (`sigNew`,
 * absent for rotations made before it existed); `at` is when the server took it.
 */
export const keyLinkSchema = z.object({
  keys: publicKeysSchema,
  sig: b64.nullable(),
  sigNew: b64.nullable(),
  at: z.string().max(40),
});
export type KeyLink = z.infer<typeof keyLinkSchema>;

export const groupInfoSchema = z.object({
  name: nameSchema,
  owner: nameSchema,
  /** Members who accepted (the owner first): they are who a message is sealed for. */
  members: z.array(userInfoSchema),
  /** Users invited who have not accepted yet (absent from older servers). */
  invited: z.array(nameSchema).optional(),
  /** Members the owner made admins, who may add and remove plain members (absent from older servers). */
  admins: z.array(nameSchema).optional(),
  /** The display title set by `group rename`, or null (absent from older servers). */
  title: groupTitleSchema.nullable().optional(),
});
export type GroupInfo = z.infer<typeof groupInfoSchema>;

export const wireErrorSchema = z.object({
  code: z.enum(WIRE_ERROR_CODES),
  message: z.string().max(2000),
  /** With `rate_limited`: how long to wait before trying again. */
  retryAfterMs: z.number().int().nonnegative().optional(),
});

const sendReply = z.object({
  id: uuid,
  cursor: cursorSchema,
  serverTime: z.string(),
  duplicate: z.boolean(),
  /** The sender's mailbox position before its copy (null: none); absent from older servers. */
  prev: cursorSchema.nullable().optional(),
});

/** Reply bodies, by request type. The client validates every reply it gets. */
export const replyBodies = {
  hello: z.object({
    pubPort: z.number().int(),
    pubHost: z.string().nullable(),
    version: z.string(),
    /** The balancer tells each subscriber when it took its subscription (SUBSCRIBED_FRAME). */
    subscribed: z.boolean().optional(),
    /** "link": deliveries come over the request connection on `subscribe` (core/protocol/broker.ts). */
    deliveries: z.string().optional(),
  }),
  ping: z.object({ time: z.string() }),
  register: z.object({ created: z.boolean() }),
  challenge: z.object({
    nonce: b64,
    expires: z.number().int(),
    mac: b64,
    /** The cluster's X25519 key a session is bound with (see login `curve`). */
    bind: key32.optional(),
  }),
  login: z.object({
    session: z.string(),
    expires: z.string(),
    topic: z.string().regex(TOPIC_PATTERN),
    /**
     * The same device's topic for deliveries several to a frame (`deliver.many`, below), besides
     * group notices and signals. A client that knows it subscribes here instead of `topic`.
     */
    batchTopic: z.string().regex(TOPIC_PATTERN).optional(),
    /** When the topic stops receiving deliveries; the client logs in again before. */
    topicExpires: z.string().optional(),
    /** How long the session lasts; the client renews it (session.renew) before. */
    lifetimeMs: z.number().int().positive().optional(),
    /** True when the session is bound to the device's CURVE key: each request then carries `pop`. */
    bound: z.boolean().optional(),
    /**
     * How many `send.many` requests the client may have in flight, each after the first naming
     * its predecessor (`follows`); absent: one at a time (an older server, or a store that cannot
     * check a predecessor).
     */
    pipeline: z.number().int().min(1).optional(),
    /** The server takes `send.many`'s `quiet`: this device's own copies are not rung on its topics. */
    quiet: z.literal(true).optional(),
    /**
     * A device's first login: every server's device list holds it only this many ms from now.
     * Until then a delivery may be published without this device's topics, so a client that
     * listens syncs once after it (an older server waited this out before answering).
     */
    settleMs: z.number().int().min(0).max(60_000).optional(),
  }),
  /** `more`: another page follows (ask again with `after` = the last name of this one). */
  users: z.object({ users: z.array(userInfoSchema), more: z.boolean().optional() }),
  "group.create": z.object({ group: groupInfoSchema, created: z.boolean() }),
  "group.add": z.object({ group: groupInfoSchema }),
  "group.remove": z.object({ group: groupInfoSchema }),
  "group.info": z.object({ group: groupInfoSchema }),
  "group.accept": z.object({ group: groupInfoSchema }),
  "group.decline": z.object({ declined: z.literal(true) }),
  "group.leave": z.object({ left: z.literal(true) }),
  "group.rename": z.object({ group: groupInfoSchema }),
  "group.owner": z.object({ group: groupInfoSchema }),
  "group.admin": z.object({ group: groupInfoSchema }),
  "group.events": z.object({ events: z.array(groupEventSchema), more: z.boolean() }),
  groups: z.object({ groups: z.array(groupInfoSchema), more: z.boolean().optional() }),
  send: sendReply,
  /** One result per envelope, in order: where it was stored (as `send`'s reply), or why it was refused. */
  "send.many": z.object({
    results: z.array(z.union([sendReply, z.object({ id: uuid, error: wireErrorSchema })])),
  }),
  sync: z.object({ items: z.array(mailboxItemSchema), more: z.boolean() }),
  "keys.rotate": z.object({ rotated: z.literal(true) }),
  "keys.history": z.object({ name: nameSchema, chain: z.array(keyLinkSchema) }),
  "backup.put": z.object({ stored: z.literal(true) }),
  "backup.get": z.object({ blob: z.string() }),
  "backup.params": z.object({
    kdf: z.literal("scrypt"),
    N: z.number().int(),
    r: z.number().int(),
    p: z.number().int(),
    salt: b64,
    /** False for a backup made before proofs existed: it can be fetched with the owner's session only. */
    proof: z.boolean(),
  }),
  "session.renew": z.object({
    session: z.string(),
    expires: z.string(),
    lifetimeMs: z.number().int().positive().optional(),
  }),
  logout: z.object({ ended: z.literal(true) }),
  signal: z.object({ relayed: z.number().int().nonnegative() }),
  ...deviceReplyBodies,
  ...fileReplyBodies,
} as const satisfies Record<RequestType, z.ZodType>;

export type ReplyBody<T extends RequestType> = z.infer<(typeof replyBodies)[T]>;

/** Every request: `{v, id, type, session?, body}`. The body is checked per type in a second step. */
export const requestFrameSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  id: z.string().min(1).max(64),
  type: z.enum(REQUEST_TYPES as [RequestType, ...RequestType[]]),
  session: z.string().max(512).optional(),
  /** With a session bound to a CURVE key: the request's proof of possession (core/crypto/session-binding.ts). */
  pop: z.string().max(64).optional(),
  body: z.unknown(),
});
export type RequestFrame = z.infer<typeof requestFrameSchema>;

export const replyFrameSchema = z.union([
  z.object({
    v: z.literal(PROTOCOL_VERSION),
    id: z.string().nullable(),
    ok: z.literal(true),
    body: z.unknown(),
  }),
  z.object({
    v: z.literal(PROTOCOL_VERSION),
    id: z.string().nullable(),
    ok: z.literal(false),
    error: wireErrorSchema,
  }),
]);
export type ReplyFrame = z.infer<typeof replyFrameSchema>;

/**
 * A live notice of a group change, published on the topics of the group's members and
 * invitees (and of whoever the change concerns). Best effort, like every live delivery:
 * `groups` and `group.info` are the truth.
 */
export const groupNoticeSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal("group"),
  group: nameSchema,
  change: z.enum([
    "invited",
    "joined",
    "declined",
    "left",
    "removed",
    "renamed",
    "owner",
    "admin",
    "unadmin",
  ]),
  /** Whom the change concerns. */
  user: nameSchema,
  /** Who made it. */
  by: nameSchema,
});
export type GroupNotice = z.infer<typeof groupNoticeSchema>;

/** An ephemeral signal as relayed to a recipient's delivery topic (server/ephemeral.ts); never stored. */
export const signalFrameSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal("signal"),
  from: nameSchema,
  to: nameSchema.nullable(),
  group: nameSchema.nullable(),
  sealed: z.string().max(MAX_SIGNAL_SEALED_CHARS),
});
export type SignalFrame = z.infer<typeof signalFrameSchema>;

/** A live delivery, published on the recipient's delivery topic. */
export const deliveryFrameSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal("deliver"),
  owner: nameSchema,
  item: mailboxItemSchema,
  /**
   * The owner's mailbox position just before this item (null: it is the first). A client whose
   * cursor is there applies the item directly; otherwise it syncs. Absent: always sync.
   */
  prev: cursorSchema.nullable().optional(),
});
export type DeliveryFrame = z.infer<typeof deliveryFrameSchema>;

/**
 * Several live deliveries in one frame, in mailbox order, published on a device's batch topic
 * (login's `batchTopic`; server/delivery-publisher.ts): each member of `frames` is a delivery
 * frame as above. At most MAX_DELIVERIES_PER_FRAME of them.
 */
export const deliveryBatchFrameSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal("deliver.many"),
  owner: nameSchema,
  frames: z.array(z.unknown()).max(MAX_DELIVERIES_PER_FRAME),
});
