import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { Cache } from "../../core/client/cache.js";
import { parseConv } from "../../core/client/conv.js";
import { hasIdentity, profilePaths } from "../../core/client/profile.js";
import { ZmqchatError } from "../../core/errors.js";
import { NAME_PATTERN } from "../../core/protocol/limits.js";
import { settingsOf } from "../context.js";
import type { Io } from "../io.js";

export type NameKind = "users" | "groups" | "profiles";

/** The profiles under HOME/users. */
function profiles(home: string): string[] {
  const dir = join(home, "users");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => NAME_PATTERN.test(n) && hasIdentity(profilePaths(home, n)));
}

/**
 * Names for shell completion, from the local cache only (never the network): the contacts and
 * people of the user's conversations, or the groups of its conversations; without a user, of
 * every profile here. One name a line, sorted.
 */
export function localNames(home: string, user: string | undefined, kind: NameKind): string[] {
  if (kind === "profiles") return profiles(home).sort();
  const names = new Set<string>();
  for (const who of user ? [user] : profiles(home)) {
    if (!NAME_PATTERN.test(who)) continue;
    const path = profilePaths(home, who).cache;
    if (!existsSync(path)) continue;
    const cache = new Cache(path);
    try {
      if (kind === "users") for (const c of cache.contacts()) names.add(c.name);
      for (const { conv } of cache.conversations()) {
        const ref = parseConv(conv);
        if (ref && ref.kind === (kind === "users" ? "user" : "group")) names.add(ref.name);
      }
    } finally {
      void cache.close();
    }
    if (kind === "users") names.delete(who);
  }
  return [...names].filter((n) => NAME_PATTERN.test(n)).sort();
}

/** `zmqchat complete-names users|groups|profiles` (hidden): what the completion scripts call. */
export async function completeNamesCommand(cmd: Command, io: Io, kind: string): Promise<void> {
  if (kind !== "users" && kind !== "groups" && kind !== "profiles")
    throw new ZmqchatError("usage", `complete-names takes users, groups or profiles, not ${kind}`);
  const settings = settingsOf(cmd);
  for (const n of localNames(settings.home, settings.user, kind)) io.out(n);
}
