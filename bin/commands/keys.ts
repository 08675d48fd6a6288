import { renameSync, rmSync } from "node:fs";
import type { Command } from "commander";
import { Cache } from "../../core/client/cache.js";
import { ChatClient } from "../../core/client/client.js";
import {
  hasIdentity,
  isProtected,
  type LoadedIdentity,
  loadIdentity,
  newDeviceId,
  profilePaths,
  saveIdentity,
} from "../../core/client/profile.js";
import { fingerprint, generateIdentity, identityFromSecrets } from "../../core/crypto/keys.js";
import { ZmqchatError } from "../../core/errors.js";
import { clientTransport, openClient, requireUser, settingsOf, unlockOptions } from "../context.js";
import type { Io } from "../io.js";
import { passphraseStrength } from "../passphrase.js";
import { checkName } from "./chat.js";

export async function keysShowCommand(cmd: Command, io: Io, opts: { json?: boolean }): Promise<void> {
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const { identity } = loadIdentity(profilePaths(settings.home, user), user, unlockOptions());
  const fp = fingerprint(user, identity.publicKeys);
  io.out(opts.json ? JSON.stringify({ user, fingerprint: fp, keys: identity.publicKeys }) : `${user}: ${fp}`);
}

/** Another user's fingerprint as pinned here (and the new one, if their keys changed); fetched when not pinned yet. */
export async function keysFingerprintCommand(
  cmd: Command,
  io: Io,
  name: string,
  opts: { json?: boolean },
): Promise<void> {
  checkName("user", name);
  const s = openClient(settingsOf(cmd));
  try {
    let c = s.client.cache.contact(name);
    if (!c && name !== s.client.name) {
      const found = await s.client.users([name]);
      if (found.length === 0) throw new ZmqchatError("not_found", `no user named ${name}`);
      c = s.client.cache.contact(name);
    }
    if (!c) throw new ZmqchatError("usage", "that is you: zmqchat keys show");
    const view = await s.client.keyView(name);
    c = s.client.cache.contact(name)!;
    const pinned = fingerprint(name, c.keys);
    const pending = c.pending ? fingerprint(name, c.pending) : null;
    const signed = c.pending ? (view?.pendingSigned ?? false) : null;
    if (opts.json)
      io.out(JSON.stringify({ user: name, fingerprint: pinned, changedTo: pending, changeSigned: signed }));
    else {
      io.out(`${name}: ${pinned}`);
      if (pending) {
        io.out(`WARNING: the server now presents other keys for ${name}: ${pending}`);
        io.out(
          signed
            ? `  the new keys are signed by their previous key (a rotation); compare the new safety number with ${name}, then: zmqchat keys trust ${name}`
            : `  the new keys are NOT signed by their previous key: do not trust them before comparing with ${name} in person`,
        );
      }
    }
  } finally {
    await s.close();
  }
}

/** Marks a contact's keys verified once the user compared safety numbers (first contact, #12). */
export async function keysVerifyCommand(cmd: Command, io: Io, name: string): Promise<void> {
  checkName("user", name);
  const s = openClient(settingsOf(cmd));
  try {
    if (name === s.client.name) throw new ZmqchatError("usage", "that is you: zmqchat keys show");
    const r = await s.client.verifyContact(name);
    io.out(
      `${r.already ? "already verified" : "verified"} ${name}: ${fingerprint(name, r.keys)}${r.already ? "" : " (you compared this safety number with them)"}`,
    );
  } finally {
    await s.close();
  }
}

export async function keysTrustCommand(cmd: Command, io: Io, name: string): Promise<void> {
  checkName("user", name);
  const s = openClient(settingsOf(cmd));
  try {
    const c = s.client.cache.contact(name);
    if (!c) throw new ZmqchatError("not_found", `no keys pinned for ${name}`);
    if (!c.pending) {
      io.out(`${name}'s keys have not changed; nothing to trust`);
      return;
    }
    const held = s.client.cache.heldCount(name);
    // Opens the messages held during the key change (offline: they are in the local cache).
    s.client.trust(name);
    io.out(`now trusting ${name}: ${fingerprint(name, c.pending)}`);
    const left = s.client.cache.heldCount(name);
    if (held > 0) io.out(`${held - left} held message(s) from ${name} are shown now`);
  } finally {
    await s.close();
  }
}

/** The passphrase: ZMQCHAT_PASSPHRASE, else the first line of stdin (not echoed on a terminal). */
async function readPassphrase(io: Io, prompt: string): Promise<string> {
  const fromEnv = process.env.ZMQCHAT_PASSPHRASE;
  if (fromEnv) return fromEnv;
  if (process.stdin.isTTY) return readHidden(prompt);
  const text = await io.readStdin();
  const line = text.split(/\r?\n/)[0] ?? "";
  if (!line) throw new ZmqchatError("usage", "no passphrase: set ZMQCHAT_PASSPHRASE or give it on stdin");
  return line;
}

function readHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    process.stderr.write(prompt);
    const stdin = process.stdin;
    stdin.setRawMode(true);
    stdin.resume();
    let value = "";
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          done();
          resolve(value);
          return;
        }
        if (ch === "\u0003") {
          done();
          reject(new ZmqchatError("usage", "cancelled"));
          return;
        }
        if (ch === "\u007f") value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = () => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
    };
    stdin.on("data", onData);
  });
}

/** New keys for this name, signed by the old ones; contacts see the change and must trust it. */
export async function keysRotateCommand(cmd: Command, io: Io): Promise<void> {
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const paths = profilePaths(settings.home, user);
  const s = openClient(settings);
  const pending = `${paths.identity}.next`;
  try {
    const next = await s.client.rotateKeys();
    // Saved only once the service took the new keys; the old ones stay in it to open old messages.
    saveIdentity(paths, next, pending, isProtected(paths) ? unlockOptions() : {});
    renameSync(pending, paths.identity);
    io.out(`new keys for ${user}: ${fingerprint(user, next.identity.publicKeys)}`);
    io.out("your contacts will be warned that your keys changed, and must trust them before writing to you");
  } finally {
    rmSync(pending, { force: true });
    await s.close();
  }
}

export async function keysBackupCommand(cmd: Command, io: Io, opts: { force?: boolean } = {}): Promise<void> {
  const settings = settingsOf(cmd);
  const passphrase = await readPassphrase(io, "passphrase for the backup: ");
  // The server hands the backup to whoever shows the passphrase proof, so the passphrase is
  // all that guards it against online and (after a store leak) offline guessing.
  const strength = passphraseStrength(passphrase, [requireUser(settings)]);
  if (strength.score < 3 && !opts.force) {
    throw new ZmqchatError(
      "usage",
      `the passphrase is too weak for a key backup (strength ${strength.score} of 4, zxcvbn)${strength.warning ? `: ${strength.warning}` : ""}`,
      { hint: "use a longer passphrase, e.g. four or five random words, or pass --force to use it anyway" },
    );
  }
  const s = openClient(settings);
  try {
    await s.client.backup(passphrase);
    io.out(`uploaded ${s.client.name}'s keys, encrypted under your passphrase`);
  } finally {
    await s.close();
  }
}

/** Restores an identity from its passphrase backup into an empty profile, as a new device. */
export async function keysRestoreCommand(cmd: Command, io: Io): Promise<void> {
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const paths = profilePaths(settings.home, user);
  if (hasIdentity(paths)) {
    throw new ZmqchatError("conflict", `there is already a profile for ${user} in ${paths.dir}`, {
      hint: "restore into an empty home (--home DIR)",
    });
  }
  const passphrase = await readPassphrase(io, "passphrase of the backup: ");
  const throwaway: LoadedIdentity = { identity: generateIdentity(user), device: newDeviceId() };
  const cache = new Cache(":memory:");
  const transport = clientTransport(settings, paths.dir);
  const client = new ChatClient({
    connect: (e) => transport.connect(e),
    endpoints: settings.endpoints,
    identity: throwaway,
    cache,
    requestTimeoutMs: settings.requestTimeoutMs,
  });
  try {
    const contents = await client.restoreBackup(user, passphrase);
    const restored: LoadedIdentity = {
      identity: identityFromSecrets(user, contents.secrets),
      device: newDeviceId(),
      previous: contents.previous.map((p) => identityFromSecrets(user, p)),
    };
    saveIdentity(paths, restored);
    io.out(`restored ${user}: ${fingerprint(user, restored.identity.publicKeys)}`);
    io.out("run `zmqchat sync` to recover your history");
  } finally {
    await client.close();
    await cache.close();
  }
}

/** Encrypts this profile's keys on disk under a passphrase (ZMQCHAT_PASSPHRASE, or stdin / a prompt). */
export async function keysProtectCommand(cmd: Command, io: Io): Promise<void> {
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const paths = profilePaths(settings.home, user);
  if (isProtected(paths))
    throw new ZmqchatError("conflict", `${user}'s keys are already protected by a passphrase`);
  const loaded = loadIdentity(paths, user);
  const passphrase = await readPassphrase(io, "new passphrase for your keys: ");
  saveIdentity(paths, loaded, paths.identity, { passphrase });
  io.out(
    `${user}'s keys are now encrypted under your passphrase; commands need ZMQCHAT_PASSPHRASE from now on`,
  );
}

/** Stores this profile's keys in clear again (mode 0600), after checking the passphrase. */
export async function keysUnprotectCommand(cmd: Command, io: Io): Promise<void> {
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const paths = profilePaths(settings.home, user);
  if (!isProtected(paths)) throw new ZmqchatError("conflict", `${user}'s keys are not protected`);
  const passphrase = await readPassphrase(io, "passphrase of your keys: ");
  const loaded = loadIdentity(paths, user, { passphrase });
  saveIdentity(paths, loaded);
  io.out(`${user}'s keys are stored without a passphrase again (file mode 0600)`);
}

/** Ends this device's sessions (or every session of the user) on the service. */
export async function logoutCommand(cmd: Command, io: Io, opts: { all?: boolean }): Promise<void> {
  const s = openClient(settingsOf(cmd));
  try {
    await s.client.logout({ all: opts.all });
    io.out(
      opts.all
        ? `ended every session of ${s.client.name}`
        : `ended ${s.client.name}'s sessions on this device`,
    );
  } finally {
    await s.close();
  }
}
