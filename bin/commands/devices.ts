import { renameSync, rmSync } from "node:fs";
import type { Command } from "commander";
import { Cache } from "../../core/client/cache.js";
import { ChatClient } from "../../core/client/client.js";
import {
  fetchPushedKeys,
  helloDevice,
  listDevices,
  offerLink,
  renameDevice,
  revokeDevice,
  takeLink,
} from "../../core/client/devices.js";
import {
  hasIdentity,
  isProtected,
  type LoadedIdentity,
  loadIdentity,
  newDeviceId,
  profilePaths,
  saveIdentity,
} from "../../core/client/profile.js";
import type { Settings } from "../../core/config/config.js";
import { fingerprint, generateIdentity } from "../../core/crypto/keys.js";
import { ZmqchatError } from "../../core/errors.js";
import { type DeviceInfo, deviceIdSchema, deviceNameSchema } from "../../core/protocol/devices.js";
import {
  clientTransport,
  curveSecretOf,
  openClient,
  requireUser,
  settingsOf,
  unlockOptions,
} from "../context.js";
import type { Io } from "../io.js";

type Run = <A extends unknown[]>(
  fn: (cmd: Command, ...args: A) => Promise<void>,
) => (...args: unknown[]) => Promise<void>;

/** `zmqchat devices …` (issue #19): list, add (a link code), link (on the new machine), revoke, fetch-keys. */
export function registerDevicesCommands(program: Command, run: Run, io: Io): void {
  const devices = program
    .command("devices")
    .description("your devices: list them, link a new one, revoke one")
    .option("--json", "one JSON object per line: id, name, added, lastSeen, current, revoked")
    .addHelpText(
      "after",
      "\nExamples:\n  zmqchat --user alice devices add --name laptop   # prints a one-time link code\n  zmqchat --home /new --user alice devices link 7K2M-Q9XD-4RTB-0HNA\n  zmqchat --user alice devices revoke 0123456789abcdef",
    )
    .action(run((cmd, opts: { json?: boolean }) => devicesListCommand(cmd, io, opts)));
  // `--json` belongs to `devices`: commander gives it to the parent wherever it is written.
  const json = (cmd: Command) => Boolean((cmd.optsWithGlobals() as { json?: boolean }).json);
  devices
    .command("list")
    .description("your devices (this one marked); --json as for devices")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice devices list --json")
    .action(run((cmd) => devicesListCommand(cmd, io, { json: json(cmd) })));
  devices
    .command("add")
    .description("print a one-time link code (10 minutes) to link a new device")
    .option("--name <name>", "the new device's name")
    .option("--ttl <seconds>", "how long the code is good for, at most 600", "600")
    .addHelpText(
      "after",
      "\nWith --json: {code, expires, device, fingerprint}\n\nExample:\n  zmqchat --user alice devices add --name laptop",
    )
    .action(
      run((cmd, opts: { name?: string; ttl: string }) =>
        devicesAddCommand(cmd, io, { ...opts, json: json(cmd) }),
      ),
    );
  devices
    .command("link")
    .argument("<code>", "the code `devices add` printed on a device of yours")
    .description("on a new machine (empty home): become a device of the user and recover the history")
    .addHelpText(
      "after",
      "\nExample:\n  zmqchat --home /new/home --user alice devices link 7K2M-Q9XD-4RTB-0HNA",
    )
    .action(run((cmd, code: string) => devicesLinkCommand(cmd, io, code)));
  devices
    .command("revoke")
    .argument("<id>", "the device id (zmqchat devices)")
    .description("cut a device off: its sessions end, it cannot log in again, and your keys rotate")
    .addHelpText(
      "after",
      "\nExample:\n  zmqchat --user alice devices && zmqchat --user alice devices revoke 0123456789abcdef",
    )
    .action(run((cmd, id: string) => devicesRevokeCommand(cmd, io, id)));
  devices
    .command("rename")
    .argument("<id>", "the device id (zmqchat devices)")
    .argument("<name>", "its new name (1 to 64 characters, no control characters)")
    .description("rename one of your devices (this one or another)")
    .addHelpText("after", "\nExample:\n  zmqchat --user alice devices rename 0123456789abcdef laptop")
    .action(run((cmd, id: string, name: string) => devicesRenameCommand(cmd, io, id, name)));
  devices
    .command("fetch-keys")
    .description("after another device of yours revoked one: take the new keys it pushed to this device")
    .addHelpText(
      "after",
      "\nExample:\n  zmqchat --user alice devices fetch-keys && zmqchat --user alice sync",
    )
    .action(run((cmd) => devicesFetchKeysCommand(cmd, io)));
}

function when(iso: string | null): string {
  return iso === null ? "never" : iso.replace(/\.\d+Z$/, "Z");
}

export async function devicesListCommand(cmd: Command, io: Io, opts: { json?: boolean }): Promise<void> {
  const settings = settingsOf(cmd);
  const s = openClient(settings);
  try {
    const loaded = loadIdentity(profilePaths(settings.home, s.client.name), s.client.name, unlockOptions());
    await helloDevice(s.client, loaded, curveSecretOf(profilePaths(settings.home, s.client.name).dir));
    const r = await listDevices(s.client);
    for (const d of r.devices) io.out(opts.json ? deviceJson(d, r.current) : deviceLine(d, r.current));
  } finally {
    await s.close();
  }
}

function deviceJson(d: DeviceInfo, current: string): string {
  return JSON.stringify({
    id: d.id,
    name: d.name,
    added: d.added,
    lastSeen: d.lastSeen,
    current: d.id === current,
    revoked: d.revoked,
  });
}

function deviceLine(d: DeviceInfo, current: string): string {
  const mark = d.id === current ? "*" : " ";
  const state = d.revoked ? `revoked ${when(d.revoked)}` : `last seen ${when(d.lastSeen)}`;
  return `${mark} ${d.id}  ${d.name}  added ${when(d.added)}  ${state}${d.id === current ? "  (this device)" : ""}`;
}

export async function devicesAddCommand(
  cmd: Command,
  io: Io,
  opts: { name?: string; ttl: string; json?: boolean },
): Promise<void> {
  const ttl = Number(opts.ttl);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 600)
    throw new ZmqchatError("usage", "--ttl is a whole number of seconds from 1 to 600");
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const paths = profilePaths(settings.home, user);
  const loaded = loadIdentity(paths, user, unlockOptions());
  const s = openClient(settings, { identity: loaded });
  try {
    const r = await offerLink(s.client, loaded, curveSecretOf(paths.dir), {
      deviceName: opts.name,
      ttlMs: ttl * 1000,
    });
    const fp = fingerprint(user, loaded.identity.publicKeys);
    if (opts.json) {
      io.out(JSON.stringify({ code: r.code, expires: r.expires, device: r.device, fingerprint: fp }));
      return;
    }
    io.out(`link code: ${r.code}`);
    io.out(`on the new machine: zmqchat --user ${user} devices link ${r.code}`);
    io.out(`good once, until ${when(r.expires)}; anyone with the code becomes you: do not share it`);
    io.out(`the new device must show this safety number: ${fp}`);
  } finally {
    await s.close();
  }
}

export async function devicesLinkCommand(cmd: Command, io: Io, code: string): Promise<void> {
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const paths = profilePaths(settings.home, user);
  if (hasIdentity(paths))
    throw new ZmqchatError("conflict", `there is already a profile for ${user} in ${paths.dir}`, {
      hint: "link into an empty home (--home DIR)",
    });
  // The code's request needs no keys: a throwaway identity only carries the link.
  const throwaway: LoadedIdentity = { identity: generateIdentity(user), device: newDeviceId() };
  const cache = new Cache(":memory:");
  const transport = clientTransport(settings, paths.dir);
  const taker = new ChatClient({
    connect: (e) => transport.connect(e),
    endpoints: settings.endpoints,
    identity: throwaway,
    cache,
    requestTimeoutMs: settings.requestTimeoutMs,
  });
  let linked: LoadedIdentity;
  try {
    linked = await takeLink(taker, user, code);
  } finally {
    await taker.close();
    await cache.close();
  }
  saveIdentity(paths, linked, paths.identity, unlockOptions());
  io.out(`linked ${user} as device ${linked.device}`);
  io.out(`safety number: ${fingerprint(user, linked.identity.publicKeys)} (compare with the other device)`);
  const s = openClient(settings, { identity: linked });
  try {
    await helloDevice(s.client, linked, curveSecretOf(paths.dir));
    const progress = io.progress("recovering history");
    const n = await s.client.sync((k) => progress.update(k));
    progress.done();
    io.out(`recovered ${n} message(s)`);
  } finally {
    await s.close();
  }
}

export async function devicesRenameCommand(cmd: Command, io: Io, id: string, name: string): Promise<void> {
  if (!deviceIdSchema.safeParse(id).success)
    throw new ZmqchatError("usage", "a device id is 16 hex characters");
  if (!deviceNameSchema.safeParse(name).success)
    throw new ZmqchatError("usage", "a device name is 1 to 64 characters, without control characters");
  const settings = settingsOf(cmd);
  const s = openClient(settings);
  try {
    // A service that predates renaming answers bad_request (an unknown request type).
    const r = await renameDevice(s.client, id, name);
    io.out(`renamed ${r.id} to ${r.name}`);
  } finally {
    await s.close();
  }
}

export async function devicesRevokeCommand(cmd: Command, io: Io, id: string): Promise<void> {
  if (!/^[0-9a-f]{16}$/.test(id)) throw new ZmqchatError("usage", "a device id is 16 hex characters");
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const paths = profilePaths(settings.home, user);
  const loaded = loadIdentity(paths, user, unlockOptions());
  const s = openClient(settings, { identity: loaded });
  try {
    const r = await revokeFromProfile(settings, user, s.client, loaded, id);
    io.out(`revoked ${id}: its sessions ended and it cannot log in again`);
    io.out(`new keys for ${user}: ${fingerprint(user, r.next.identity.publicKeys)}`);
    if (r.pushed.length > 0)
      io.out(`pushed the new keys, sealed, to ${r.pushed.join(", ")} (there: zmqchat devices fetch-keys)`);
    if (r.unreachable.length > 0)
      io.err(
        `zmqchat: warning: ${r.unreachable.join(", ")} registered no key of its own; link it again (zmqchat devices add)`,
      );
  } finally {
    await s.close();
  }
}

/**
 * Revokes device `id` of `user` with a client of the profile (the command's, or the running TUI's):
 * the keys rotate and are saved to the profile, then pushed to the remaining devices.
 */
export async function revokeFromProfile(
  settings: Settings,
  user: string,
  client: ChatClient,
  loaded: LoadedIdentity,
  id: string,
): Promise<{ next: LoadedIdentity; pushed: string[]; unreachable: string[] }> {
  const paths = profilePaths(settings.home, user);
  const unlock = isProtected(paths) ? unlockOptions() : {};
  const pending = `${paths.identity}.next`;
  try {
    return await revokeDevice(
      client,
      loaded,
      id,
      (next) => openClient({ ...settings, user }, { identity: next }),
      (next) => {
        // Saved only once the service took the new keys; the old ones stay in it to open old messages.
        saveIdentity(paths, next, pending, unlock);
        renameSync(pending, paths.identity);
      },
    );
  } finally {
    rmSync(pending, { force: true });
  }
}

export async function devicesFetchKeysCommand(cmd: Command, io: Io): Promise<void> {
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const paths = profilePaths(settings.home, user);
  const unlock = isProtected(paths) ? unlockOptions() : {};
  const loaded = loadIdentity(paths, user, unlockOptions());
  const s = openClient(settings, { identity: loaded });
  try {
    const next = await fetchPushedKeys(s.client, loaded, curveSecretOf(paths.dir));
    if (next.identity.publicKeys.sign === loaded.identity.publicKeys.sign) {
      io.out("this device already has your newest keys");
      return;
    }
    saveIdentity(paths, next, paths.identity, unlock);
    io.out(`new keys for ${user}: ${fingerprint(user, next.identity.publicKeys)}`);
  } finally {
    await s.close();
  }
}

/**
 * After a command failed: when the service refused this device's login signature and keys that
 * another device rotated wait for it, installs them (signed by the old keys, sealed to this
 * device, as `devices fetch-keys`) and returns true so that the command runs once more.
 */
export async function adoptPushedKeys(cmd: Command, io: Io, err: unknown): Promise<boolean> {
  if (!(err instanceof ZmqchatError && err.code === "unauthorized" && /login signature/.test(err.message)))
    return false;
  const settings = settingsOf(cmd);
  if (!settings.user) return false;
  const next = await takePushedKeys(settings, settings.user);
  if (!next) return false;
  io.err(
    `zmqchat: took the new keys another device of yours pushed here: ${fingerprint(settings.user, next.identity.publicKeys)}`,
  );
  return true;
}

/**
 * Installs the keys another device of `user` pushed to this one after a revocation (signed by the
 * old keys, sealed to this device): the new identity once saved, or null when none (or none newer)
 * waits. The CLI runs a refused command again after it; the TUI signs in again.
 */
export async function takePushedKeys(settings: Settings, user: string): Promise<LoadedIdentity | null> {
  const paths = profilePaths(settings.home, user);
  if (!hasIdentity(paths)) return null;
  const unlock = isProtected(paths) ? unlockOptions() : {};
  const loaded = loadIdentity(paths, user, unlockOptions());
  const s = openClient({ ...settings, user }, { identity: loaded });
  try {
    const next = await fetchPushedKeys(s.client, loaded, curveSecretOf(paths.dir)).catch((e: unknown) => {
      if (e instanceof ZmqchatError && e.code === "not_found") return null;
      throw e;
    });
    if (!next || next.identity.publicKeys.sign === loaded.identity.publicKeys.sign) return null;
    saveIdentity(paths, next, paths.identity, unlock);
    return next;
  } finally {
    await s.close();
  }
}
