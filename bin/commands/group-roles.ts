import type { Command } from "commander";
import { groupAdmin, groupHandOver, groupRename } from "../../core/client/groups.js";
import { ZmqchatError } from "../../core/errors.js";
import { type GroupInfo, groupTitleSchema } from "../../core/protocol/schema.js";
import { sanitizeLine } from "../../core/text/sanitize.js";
import { openClient, settingsOf } from "../context.js";
import type { Io } from "../io.js";
import { checkName } from "./chat.js";

/**
 * `group rename`, `group owner`, `group admin` (issue 17). The service decides who may
 * (server/groups.ts); these ask and print the group as it is now.
 */

/** A group's `group info --json` object: the first four keys as before, then admins and title. */
export function groupInfoRow(g: GroupInfo): {
  name: string;
  owner: string;
  members: string[];
  invited: string[];
  admins: string[];
  title: string | null;
} {
  return {
    name: g.name,
    owner: g.owner,
    members: g.members.map((m) => m.name),
    invited: g.invited ?? [],
    admins: g.admins ?? [],
    title: g.title ?? null,
  };
}

/** `team: owner alice; members: alice, bob; invited: …; admins: bob; title: "…"` (the older prefix first). */
export function groupInfoLine(g: GroupInfo): string {
  const r = groupInfoRow(g);
  return sanitizeLine(
    `${r.name}: owner ${r.owner}; members: ${r.members.join(", ")}${r.invited.length ? `; invited: ${r.invited.join(", ")}` : ""}${
      r.admins.length ? `; admins: ${r.admins.join(", ")}` : ""
    }${r.title !== null ? `; title: "${r.title}"` : ""}`,
  );
}

async function withClient(cmd: Command, fn: (s: ReturnType<typeof openClient>) => Promise<GroupInfo>) {
  const s = openClient(settingsOf(cmd));
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

export async function groupRenameCommand(cmd: Command, io: Io, group: string, title: string): Promise<void> {
  checkName("group", group);
  const t = groupTitleSchema.safeParse(title);
  if (!t.success)
    throw new ZmqchatError(
      "usage",
      `"${sanitizeLine(title)}" is not a valid title: 1 to 64 characters, no control characters, no spaces at either end`,
    );
  const g = await withClient(cmd, (s) => groupRename(s.client, group, t.data));
  io.out(groupInfoLine(g));
}

export async function groupOwnerCommand(cmd: Command, io: Io, group: string, user: string): Promise<void> {
  checkName("group", group);
  checkName("user", user);
  const g = await withClient(cmd, (s) => groupHandOver(s.client, group, user));
  io.out(groupInfoLine(g));
}

export async function groupAdminCommand(
  cmd: Command,
  io: Io,
  group: string,
  user: string,
  opts: { remove?: boolean },
): Promise<void> {
  checkName("group", group);
  checkName("user", user);
  const g = await withClient(cmd, (s) => groupAdmin(s.client, group, user, opts.remove === true));
  io.out(groupInfoLine(g));
}

/** One group's owner, members, invitations, admins and title (`group info GROUP [--json]`); members and invitees may look. */
export async function groupInfoCommand(
  cmd: Command,
  io: Io,
  group: string,
  opts: { json?: boolean },
): Promise<void> {
  checkName("group", group);
  const s = openClient(settingsOf(cmd));
  try {
    const g = await s.client.groupInfo(group);
    // Issue 17 appended admins and title after the first four keys.
    io.out(opts.json ? JSON.stringify(groupInfoRow(g)) : groupInfoLine(g));
  } finally {
    await s.close();
  }
}
