import { isPlainObject } from "./envelope-check.js";
import { MAX_DELIVERIES_PER_FRAME, NAME_PATTERN, PROTOCOL_VERSION } from "./limits.js";
import type { DeliveryFrame } from "./schema.js";
import { CURSOR, checkMailboxItem } from "./sync-check.js";

/**
 * A live delivery frame checked by hand, as schema.ts's deliveryFrameSchema would parse it: the
 * receiving client's validation without Zod's cost per field (a tenth of a receiver's CPU in the
 * profile). Unknown members of the frame and of its item are dropped, as the schema drops them;
 * the envelope is held to envelope-check.ts (which itself matches envelopeSchema). Returns null
 * exactly where the schema refuses the frame (test/unit/delivery-check.test.ts holds the two to
 * the same answers).
 */
export function checkDeliveryFrame(x: unknown): DeliveryFrame | null {
  if (!isPlainObject(x)) return null;
  if (x.v !== PROTOCOL_VERSION || x.type !== "deliver") return null;
  const { owner, item } = x;
  const prev = x.prev as string | null | undefined;
  if (typeof owner !== "string" || !NAME_PATTERN.test(owner)) return null;
  if (prev !== undefined && prev !== null && (typeof prev !== "string" || !CURSOR.test(prev))) return null;
  // The item as a sync page's (sync-check.ts): unknown members dropped, the envelope strict.
  const checked = checkMailboxItem(item);
  if (checked === null) return null;
  return {
    v: PROTOCOL_VERSION,
    type: "deliver",
    owner,
    item: checked,
    ...(Object.hasOwn(x, "prev") ? { prev } : {}),
  };
}

/**
 * The deliveries a `deliver.many` frame carries (schema.ts deliveryBatchFrameSchema), each still
 * to be checked as a delivery frame; null when `x` is not such a frame, or is one the schema
 * refuses (then the caller treats it as one malformed delivery).
 */
export function deliveriesInFrame(x: unknown): unknown[] | null {
  if (!isPlainObject(x) || x.type !== "deliver.many") return null;
  const { frames, owner } = x;
  if (x.v !== PROTOCOL_VERSION || typeof owner !== "string" || !NAME_PATTERN.test(owner)) return null;
  if (!Array.isArray(frames) || frames.length > MAX_DELIVERIES_PER_FRAME) return null;
  return frames;
}
