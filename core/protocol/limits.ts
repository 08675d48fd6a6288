/** Largest frame any zmqchat socket accepts (ZMQ_MAXMSGSIZE); larger frames are dropped by libzmq. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** Largest message text, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 16 * 1024;
/** Largest group, counting its owner. */
export const MAX_GROUP_MEMBERS = 256;
/** Most messages one sync page returns. */
export const MAX_SYNC_PAGE = 2000;
/** User and group names: lower-case, so that "Alice" cannot pose as "alice". */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,31}$/;
export const NAME_RULE = "1-32 characters: a-z, 0-9, '_', '.', '-', starting with a letter or digit";
/** Delivery topics are 64 hex characters; the balancer refuses any other subscription. */
export const TOPIC_PATTERN = /^[0-9a-f]{64}$/;
export const PROTOCOL_VERSION = 1;
/**
 * Byte budget of one paged reply (sync, users, groups): a page stops before its items pass it,
 * and holds at least one item. Half the frame limit, so a page plus one largest item (an
 * envelope is at most MAX_ENVELOPE_BYTES) still fits in a frame.
 */
export const MAX_REPLY_BYTES = 512 * 1024;
/** Most entries one `users` or `groups` page returns. */
export const MAX_LIST_PAGE = 500;
/**
 * Largest envelope the service stores: room is left in a frame for the reply around it, so
 * every stored envelope can be read back (in a sync page of its own, if need be).
 */
export const MAX_ENVELOPE_BYTES = MAX_FRAME_BYTES - 8 * 1024;
/**
 * Most recipients (the sender included) a new envelope in the old format (v1) may have: every
 * v1 copy carries every recipient's wrapped key, so its storage grows with the square of the
 * recipients. Stored v1 envelopes of any size still open; larger new ones must be v2.
 */
export const MAX_V1_RECIPIENTS = 16;
/** The length of one wrapped key in base64url: 12-byte IV, 32-byte key, 16-byte GCM tag. */
export const WRAPPED_KEY_CHARS = 80;
/**
 * Most deliveries one `deliver.many` frame carries (server/delivery-publisher.ts); a client takes
 * a frame with more as malformed and syncs instead.
 */
export const MAX_DELIVERIES_PER_FRAME = 256;
/** Most envelopes one `send.many` request carries (issue 15): each is handled as one `send`. */
export const MAX_SEND_MANY = 64;
/**
 * Most envelopes one batch signature covers (envelope v4's `batch.size`): a client signs the
 * envelopes of one `send.many` (at most MAX_SEND_MANY); the wire allows larger trees, so a later
 * client that signs more at once is not refused by this one.
 */
export const MAX_BATCH_LEAVES = 1024;
/** Longest inclusion path of such a tree in base64url: 10 hashes of 32 bytes. */
export const MAX_BATCH_PATH_CHARS = Math.ceil((10 * 32 * 4) / 3);
