import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openBackup, sealBackup } from "../crypto/backup.js";
import {
  generateIdentity,
  type Identity,
  type IdentitySecrets,
  identityFromSecrets,
  identitySecrets,
} from "../crypto/keys.js";
import { ZmqchatError } from "../errors.js";
import { NAME_PATTERN, NAME_RULE } from "../protocol/limits.js";

/** Where one user's files live: `HOME/users/NAME/` (mode 0700) with identity.json and cache.db (0600). */
export interface ProfilePaths {
  dir: string;
  identity: string;
  cache: string;
}

export function profilePaths(home: string, name: string): ProfilePaths {
  if (!NAME_PATTERN.test(name))
    throw new ZmqchatError("usage", `"${name}" is not a valid user name: ${NAME_RULE}`);
  const dir = join(home, "users", name);
  return { dir, identity: join(dir, "identity.json"), cache: join(dir, "cache.db") };
}

interface IdentityFile {
  version: 1;
  name: string;
  device: string;
  /** The private keys in clear (protected by the file mode only)… */
  secrets?: IdentitySecrets;
  /** …or encrypted under the user's passphrase (scrypt + AES-256-GCM, as a key backup). */
  protected?: string;
  /** Keys this user held before a rotation, kept to open old messages. */
  previous?: IdentitySecrets[];
  createdAt: string;
}

export interface LoadedIdentity {
  identity: Identity;
  device: string;
  previous?: Identity[];
}

export function hasIdentity(paths: ProfilePaths): boolean {
  return existsSync(paths.identity);
}

/** How to unlock a profile whose keys are protected by a passphrase. */
export interface UnlockOptions {
  passphrase?: string;
}

export function isProtected(paths: ProfilePaths): boolean {
  if (!existsSync(paths.identity)) return false;
  return Boolean((JSON.parse(readFileSync(paths.identity, "utf8")) as IdentityFile).protected);
}

export function loadIdentity(paths: ProfilePaths, name: string, unlock: UnlockOptions = {}): LoadedIdentity {
  if (!existsSync(paths.identity)) {
    throw new ZmqchatError("unauthorized", `there is no profile for ${name} here`, {
      hint: `run: zmqchat --user ${name} register`,
    });
  }
  let file: IdentityFile;
  try {
    file = JSON.parse(readFileSync(paths.identity, "utf8")) as IdentityFile;
  } catch (cause) {
    throw new ZmqchatError("internal", `cannot read ${paths.identity}`, { cause });
  }
  let secrets = file.secrets;
  let previous = file.previous ?? [];
  if (file.protected) {
    if (!unlock.passphrase) {
      throw new ZmqchatError("unauthorized", `${name}'s keys are protected by a passphrase`, {
        hint: "set ZMQCHAT_PASSPHRASE",
      });
    }
    const contents = openBackup(file.protected, name, unlock.passphrase);
    secrets = contents.secrets;
    previous = contents.previous;
  }
  if (!secrets) throw new ZmqchatError("internal", `${paths.identity} holds no keys`);
  return {
    identity: identityFromSecrets(name, secrets),
    device: file.device,
    previous: previous.map((p) => identityFromSecrets(name, p)),
  };
}

/** A new device id: each restored or new profile is its own device, with its own message numbering. */
export function newDeviceId(): string {
  return randomBytes(8).toString("hex");
}

/** Makes keys for a new profile, or returns the existing ones. */
export function ensureIdentity(
  paths: ProfilePaths,
  name: string,
  unlock: UnlockOptions = {},
): LoadedIdentity & { created: boolean } {
  if (existsSync(paths.identity)) return { ...loadIdentity(paths, name, unlock), created: false };
  const identity = generateIdentity(name);
  const device = newDeviceId();
  saveIdentity(paths, { identity, device }, paths.identity, unlock);
  return { identity, device, created: true };
}

/** Writes the profile's keys (mode 0600); with a passphrase, only encrypted under it. */
export function saveIdentity(
  paths: ProfilePaths,
  loaded: LoadedIdentity,
  file = paths.identity,
  unlock: UnlockOptions = {},
): void {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  chmodSync(paths.dir, 0o700);
  const contents: IdentityFile = {
    version: 1,
    name: loaded.identity.name,
    device: loaded.device,
    ...(unlock.passphrase
      ? {
          protected: sealBackup(
            {
              name: loaded.identity.name,
              secrets: identitySecrets(loaded.identity),
              previous: (loaded.previous ?? []).map(identitySecrets),
            },
            unlock.passphrase,
          ).blob,
        }
      : {
          secrets: identitySecrets(loaded.identity),
          previous: (loaded.previous ?? []).map(identitySecrets),
        }),
    createdAt: new Date().toISOString(),
  };
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(contents, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}
