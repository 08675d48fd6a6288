import type { Command } from "commander";
import { Cache } from "../../core/client/cache.js";
import { convName, groupConv, userConv } from "../../core/client/conv.js";
import { profilePaths } from "../../core/client/profile.js";
import { ZmqchatError } from "../../core/errors.js";
import { requireUser, settingsOf } from "../context.js";
import type { Io } from "../io.js";
import { checkName } from "./chat.js";

/**
 * `zmqchat mute USER | --group GROUP [--off]` (issue 17): this profile's own choice, kept in its
 * cache (core/client/mentions.ts): a muted conversation rings no bell and raises no notification
 * (`listen`, the TUI); its messages are still fetched, stored and shown. Without a target it lists
 * what is muted. Works offline: nothing is asked of the service.
 */
export async function muteCommand(
  cmd: Command,
  io: Io,
  user: string | undefined,
  opts: { group?: string; off?: boolean; json?: boolean },
): Promise<void> {
  if (user !== undefined && opts.group !== undefined)
    throw new ZmqchatError("usage", "mute a user or --group GROUP, not both");
  const settings = settingsOf(cmd);
  const me = requireUser(settings);
  const cache = new Cache(profilePaths(settings.home, me).cache);
  try {
    if (user === undefined && opts.group === undefined) {
      if (opts.off)
        throw new ZmqchatError("usage", "unmute whom? zmqchat mute USER --off or --group GROUP --off");
      for (const conv of cache.mutes.list()) {
        const kind = conv.startsWith("g:") ? "group" : "user";
        io.out(
          opts.json
            ? JSON.stringify({ [kind]: convName(conv) })
            : `${kind === "group" ? "--group " : ""}${convName(conv)}`,
        );
      }
      return;
    }
    const conv =
      opts.group !== undefined
        ? groupConv(checkName("group", opts.group))
        : userConv(checkName("user", user!));
    cache.mutes.set(conv, !opts.off);
    const what = opts.group !== undefined ? `group ${opts.group}` : user!;
    io.out(
      opts.off ? `unmuted ${what}` : `muted ${what}: its messages are kept and shown, without notifications`,
    );
  } finally {
    await cache.close();
  }
}
