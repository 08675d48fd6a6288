import { ZmqchatError } from "../errors.js";
import { type GroupEvent, groupEventSchema } from "../protocol/schema.js";
import type { Cache } from "./cache.js";
import type { ChatClient } from "./client.js";
import { groupEvents } from "./groups.js";
import type { ChatMessage } from "./message.js";

/**
 * System lines of a group (issue 17): "alice added dave", "bob left", "alice renamed the group
 * to …". They are drawn from the server's record of the group's changes (`group.events`,
 * server/groups.ts), never from anything a member sends: the service records a change only
 * when it made it, with the authenticated user who asked, after its own authorization check.
 * A member therefore cannot forge "alice removed bob" (a message saying so is just a message),
 * and the record claims nothing the client does not already take from the server: which
 * members a group message is sealed for.
 *
 * Kept in the profile's cache (state `group_events:NAME`), so a member who was offline sees the
 * lines after a sync, and one who was removed keeps those seen before.
 */

/** A system line as `--json` gives it (`system`), null on ordinary messages. */
export interface SystemLine {
  kind: GroupEvent["kind"];
  /** Who made the change (for joined, declined and left: the member themself). */
  actor: string;
  /** Whom it concerns, or null (created, renamed). */
  target: string | null;
  /** The new title (renamed), or null. */
  title: string | null;
}

/** A system line placed in a group's history, beside its messages. */
export interface SystemEntry {
  id: string;
  group: string;
  at: string;
  system: SystemLine;
  /** The line as a sentence ("alice added dave"). */
  text: string;
}

/** The sentence for a change (the caller sanitizes it for a terminal: the title is free text). */
export function renderSystemLine(s: SystemLine): string {
  const target = s.target ?? "?";
  switch (s.kind) {
    case "created":
      return `${s.actor} created the group`;
    case "added":
      return `${s.actor} added ${target}`;
    case "joined":
      return `${s.actor} joined`;
    case "declined":
      return `${s.actor} declined the invitation`;
    case "removed":
      return `${s.actor} removed ${target}`;
    case "left":
      return `${s.actor} left`;
    case "renamed":
      return `${s.actor} renamed the group to "${s.title ?? ""}"`;
    case "owner":
      return `${s.actor} made ${target} the owner`;
    case "admin":
      return `${s.actor} made ${target} an admin`;
    case "unadmin":
      return `${s.actor} removed ${target} as an admin`;
  }
}

const stateKey = (group: string) => `group_events:${group}`;

/** Most changes kept per group in the cache (the newest). */
const MAX_CACHED = 4000;

/** The group's system lines this profile has, oldest first. */
export function cachedSystemLines(cache: Cache, group: string): SystemEntry[] {
  const raw = cache.getState(stateKey(group));
  if (raw === null) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const out: SystemEntry[] = [];
  for (const item of parsed) {
    const e = groupEventSchema.safeParse(item);
    if (e.success) out.push(entryOf(group, e.data));
  }
  return out;
}

function entryOf(group: string, e: GroupEvent): SystemEntry {
  const system = { kind: e.kind, actor: e.actor, target: e.target, title: e.title };
  return { id: e.id, group, at: e.at, system, text: renderSystemLine(system) };
}

/**
 * Reads the group's record from the service into the cache. A user no longer in the group
 * (forbidden, not_found) keeps the lines it had; an older service without the record
 * (bad_request) has none. Other failures are thrown.
 */
export async function refreshSystemLines(client: ChatClient, group: string): Promise<SystemEntry[]> {
  let events: GroupEvent[];
  try {
    events = await groupEvents(client, group);
  } catch (err) {
    if (err instanceof ZmqchatError && ["forbidden", "not_found", "bad_request"].includes(err.code))
      return cachedSystemLines(client.cache, group);
    throw err;
  }
  // The server's record is whole: what it returns replaces the cached copy, kept lines of a
  // time this user could read it included (by id).
  const byId = new Map<string, GroupEvent>();
  const old = client.cache.getState(stateKey(group));
  if (old !== null) {
    try {
      for (const item of JSON.parse(old) as unknown[]) {
        const e = groupEventSchema.safeParse(item);
        if (e.success) byId.set(e.data.id, e.data);
      }
    } catch {
      // An unreadable cached copy is replaced.
    }
  }
  for (const e of events) byId.set(e.id, e);
  const kept = [...byId.values()].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0)).slice(-MAX_CACHED);
  client.cache.setState(stateKey(group), JSON.stringify(kept));
  return kept.map((e) => entryOf(group, e));
}

/** When a message or a line happened, for merging the two by time. */
const timeOf = (x: ChatMessage | SystemEntry) => ("at" in x ? x.at : x.serverTime || x.sentAt);

/**
 * The newest `limit` entries of a group's history: its newest messages (`messages`, oldest
 * first, as the cache gives them) and its system lines, merged by time.
 */
export function mergeSystemLines(
  messages: ChatMessage[],
  lines: SystemEntry[],
  limit: number,
): Array<ChatMessage | SystemEntry> {
  // With a full page of messages, lines older than its first message belong to older pages.
  const from = messages.length >= limit && messages[0] ? timeOf(messages[0]) : "";
  const pending = lines.filter((l) => l.at >= from);
  // Each line goes before the first message after it; messages keep the cache's order.
  const merged: Array<ChatMessage | SystemEntry> = [];
  let i = 0;
  for (const m of messages) {
    while (i < pending.length && pending[i]!.at < timeOf(m)) merged.push(pending[i++]!);
    merged.push(m);
  }
  merged.push(...pending.slice(i));
  return merged.slice(-limit);
}

export function isSystemEntry(x: ChatMessage | SystemEntry): x is SystemEntry {
  return "system" in x && "at" in x && !("from" in x);
}
