import { z } from "zod";
import { NAME_PATTERN, NAME_RULE } from "./limits.js";

/** The request and reply bodies of devices (issue #19), spread into schema.ts's tables. */

const name = z.string().regex(NAME_PATTERN, `a name has ${NAME_RULE}`);
const b64 = z.string().regex(/^[A-Za-z0-9_-]+$/, "base64url expected");
const key32 = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "a 32-byte base64url key expected");
/** A device id: 16 hex characters, as a profile makes it. */
export const deviceIdSchema = z.string().regex(/^[0-9a-f]{16}$/, "a device id is 16 hex characters");
/** The public part of a link code: 4 Crockford base32 characters. */
export const linkSlotSchema = z
  .string()
  .regex(/^[0-9A-HJKMNP-TV-Z]{4}$/, "a link slot is 4 base32 characters");
export const deviceNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[^\p{Cc}]+$/u, "a device name has no control characters");
/** Largest sealed identity (keys and earlier keys) a link or a key push carries. */
const SEALED_MAX = 32 * 1024;

export const deviceRequestBodies = {
  /** The caller's devices. */
  "devices.list": z.strictObject({}),
  /**
   * Names this device and registers its own X25519 key with the user's signature over it
   * (core/client/device-keys.ts): each kept only when not set yet.
   */
  "devices.hello": z.strictObject({
    name: deviceNameSchema.optional(),
    key: key32.optional(),
    keySig: b64.max(128).optional(),
  }),
  /** Renames one of the caller's devices (not a revoked one). */
  "devices.rename": z.strictObject({ id: deviceIdSchema, name: deviceNameSchema }),
  /** Ends a device: its sessions end and its logins are refused for good. */
  "devices.revoke": z.strictObject({ id: deviceIdSchema }),
  /** The user's new keys after a revocation, sealed to one remaining device's key (signed by the old keys). */
  "devices.rekey.put": z.strictObject({ device: deviceIdSchema, blob: b64.max(SEALED_MAX) }),
  /** Public: a device whose keys were rotated by another fetches them (sealed to its own key). */
  "devices.rekey.get": z.strictObject({ name, device: deviceIdSchema }),
  /**
   * Offers a sealed identity to the device that knows the link code: kept at most 10 minutes,
   * handed out once, to a proof whose SHA-256 is `verifier`.
   */
  "link.put": z.strictObject({
    slot: linkSlotSchema,
    verifier: key32,
    blob: b64.max(SEALED_MAX),
    device: deviceIdSchema,
    deviceName: deviceNameSchema,
    ttlMs: z.number().int().min(1000).max(600_000),
  }),
  /** Public: the new device proves the code and takes the sealed identity. */
  "link.get": z.strictObject({ name, slot: linkSlotSchema, proof: key32 }),
} as const;

export const deviceInfoSchema = z.object({
  id: z.string(),
  name: z.string(),
  added: z.string(),
  lastSeen: z.string().nullable(),
  revoked: z.string().nullable(),
});
export type DeviceInfo = z.infer<typeof deviceInfoSchema>;

export const deviceReplyBodies = {
  "devices.list": z.object({ devices: z.array(deviceInfoSchema), current: z.string() }),
  "devices.hello": z.object({ id: z.string() }),
  "devices.rename": z.object({ id: z.string(), name: z.string() }),
  /** The devices left, with their keys, to push the rotated keys to. */
  "devices.revoke": z.object({
    revoked: z.literal(true),
    remaining: z.array(
      z.object({ id: z.string(), key: z.string().nullable(), keySig: z.string().nullable() }),
    ),
  }),
  "devices.rekey.put": z.object({ stored: z.literal(true) }),
  "devices.rekey.get": z.object({ blob: z.string() }),
  "link.put": z.object({ expires: z.string() }),
  "link.get": z.object({ blob: z.string(), device: z.string() }),
} as const;
