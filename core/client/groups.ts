import type { GroupEvent, GroupInfo } from "../protocol/schema.js";
import type { ChatClient } from "./client.js";

/**
 * Group roles and the group's record of changes (issue 17), as requests of the service, which
 * makes the real checks (server/groups.ts): only the owner renames, hands over and names
 * admins; the owner and admins add and remove members.
 */

/** Sets the group's display title; its name, which `--group` and scripts use, stays. */
export async function groupRename(client: ChatClient, name: string, title: string): Promise<GroupInfo> {
  await client.login();
  return (await client.request("group.rename", { name, title })).group;
}

/** Hands the group over to a member: they become its owner, the caller a plain member. */
export async function groupHandOver(client: ChatClient, name: string, user: string): Promise<GroupInfo> {
  await client.login();
  return (await client.request("group.owner", { name, user })).group;
}

/** Makes a member an admin, or (with `remove`) no longer one. */
export async function groupAdmin(
  client: ChatClient,
  name: string,
  user: string,
  remove: boolean,
): Promise<GroupInfo> {
  await client.login();
  return (await client.request("group.admin", { name, user, ...(remove ? { remove: true } : {}) })).group;
}

/** Most pages of a group's record read at once (200 changes each). */
const MAX_EVENT_PAGES = 20;

/** Every recorded change of a group, oldest first (as many as MAX_EVENT_PAGES pages hold). */
export async function groupEvents(client: ChatClient, name: string): Promise<GroupEvent[]> {
  await client.login();
  const all: GroupEvent[] = [];
  let after: string | undefined;
  for (let page = 0; page < MAX_EVENT_PAGES; page++) {
    const r = await client.request("group.events", after === undefined ? { name } : { name, after });
    all.push(...r.events);
    const last = r.events.at(-1)?.cursor;
    // A page that did not move on would loop for ever: stop instead.
    if (!r.more || last === undefined || last === after) break;
    after = last;
  }
  return all;
}
