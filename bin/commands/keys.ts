import type { Command } from "commander";
import { Cache } from "../../core/client/cache.js";
import { loadIdentity, profilePaths } from "../../core/client/profile.js";
import { fingerprint } from "../../core/crypto/keys.js";
import { ZmqchatError } from "../../core/errors.js";
import { requireUser, settingsOf } from "../context.js";
import type { Io } from "../io.js";
import { checkName } from "./chat.js";

export async function keysShowCommand(cmd: Command, io: Io, opts: { json?: boolean }): Promise<void> {
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const { identity } = loadIdentity(profilePaths(settings.home, user), user);
  const fp = fingerprint(user, identity.publicKeys);
  io.out(opts.json ? JSON.stringify({ user, fingerprint: fp, keys: identity.publicKeys }) : `${user}: ${fp}`);
}

/** Another user's fingerprint as pinned here (and the new one, if their keys changed). */
export async function keysFingerprintCommand(
  cmd: Command,
  io: Io,
  name: string,
  opts: { json?: boolean },
): Promise<void> {
  checkName("user", name);
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const cache = new Cache(profilePaths(settings.home, user).cache);
  try {
    const c = cache.contact(name);
    if (!c)
      throw new ZmqchatError("not_found", `no keys pinned for ${name} yet`, {
        hint: `send to or sync with ${name} first`,
      });
    const pinned = fingerprint(name, c.keys);
    const pending = c.pending ? fingerprint(name, c.pending) : null;
    if (opts.json) io.out(JSON.stringify({ user: name, fingerprint: pinned, changedTo: pending }));
    else {
      io.out(`${name}: ${pinned}`);
      if (pending) io.out(`WARNING: the server now presents other keys for ${name}: ${pending}`);
    }
  } finally {
    cache.close();
  }
}

export async function keysTrustCommand(cmd: Command, io: Io, name: string): Promise<void> {
  checkName("user", name);
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const cache = new Cache(profilePaths(settings.home, user).cache);
  try {
    const c = cache.contact(name);
    if (!c) throw new ZmqchatError("not_found", `no keys pinned for ${name}`);
    if (!c.pending) {
      io.out(`${name}'s keys have not changed; nothing to trust`);
      return;
    }
    cache.trust(name);
    io.out(`now trusting ${name}: ${fingerprint(name, c.pending)}`);
  } finally {
    cache.close();
  }
}
