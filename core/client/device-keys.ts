import { sign, verify } from "node:crypto";
import type { Identity } from "../crypto/keys.js";
import { x25519Private, x25519PublicRaw } from "../crypto/session-binding.js";
import type { RequestBody, RequestType } from "../protocol/schema.js";
import type { LoadedIdentity } from "./profile.js";

/**
 * Each device's own X25519 key (its CURVE key, see bin/curve.ts), signed by the user's Ed25519 key
 * (issue #19): the keys rotated after a revocation are sealed to it (core/client/devices.ts).
 * Apart from devices.ts so that the client can register the key at login without an import cycle.
 */

/** What a user's signature over one of their device keys covers. */
function deviceKeyBytes(name: string, device: string, key: string): Buffer {
  return Buffer.from(`zmqchat-device-key-v1\n${name}\n${device}\n${key}`);
}

/** The device's public X25519 key (base64url) and the user's Ed25519 signature over it. */
export function deviceKeyClaim(
  identity: Identity,
  device: string,
  secret: Buffer,
): { key: string; keySig: string } {
  const key = x25519PublicRaw(x25519Private(secret)).toString("base64url");
  const keySig = sign(null, deviceKeyBytes(identity.name, device, key), identity.signPrivate).toString(
    "base64url",
  );
  return { key, keySig };
}

/** True when one of `signers` (this user's keys, now and before) signed this device's key. */
export function deviceKeyTrusted(
  name: string,
  device: string,
  key: string,
  keySig: string,
  signers: Identity[],
): boolean {
  const bytes = deviceKeyBytes(name, device, key);
  return signers.some((s) => {
    try {
      return verify(null, bytes, s.signPublic, Buffer.from(keySig, "base64url"));
    } catch {
      return false;
    }
  });
}

/** What registering the key needs of a client. */
export interface DeviceKeyClient {
  cache: { getState(key: string): string | null; setState(key: string, value: string): void };
  request<T extends RequestType>(type: T, body: RequestBody<T>): Promise<unknown>;
}

/** Cache state naming the device key this profile registered (`DEVICE:KEY`). */
const KEY_REGISTERED = "devices.key";

/**
 * After a login: registers this device's key (signed by the user's keys) once per profile, so that
 * every device — the one that ran `register`, one made by `keys restore` — gets the keys pushed
 * after a revocation, not only those that ran a `devices` command. Best effort: a service that
 * predates devices refuses it, and the next login tries again.
 */
export function registerDeviceKey(
  client: DeviceKeyClient,
  loaded: LoadedIdentity,
  secret: Buffer,
  onError: (err: unknown) => void,
): void {
  const claim = deviceKeyClaim(loaded.identity, loaded.device, secret);
  const mark = `${loaded.device}:${claim.key}`;
  if (client.cache.getState(KEY_REGISTERED) === mark) return;
  client
    .request("devices.hello", claim)
    .then(() => {
      try {
        client.cache.setState(KEY_REGISTERED, mark);
      } catch {
        // A command that exits at once closed its cache meanwhile: the next login marks it.
      }
    })
    .catch(onError);
}
