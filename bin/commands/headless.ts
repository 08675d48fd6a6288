import { checkActionTarget, type MessageExtra } from "../../core/client/actions.js";
import type { ChatClient, Target } from "../../core/client/client.js";
import { convOfTarget } from "../../core/client/conv.js";
import { withUnread } from "../../core/client/read-state.js";
import {
  cachedSystemLines,
  isSystemEntry,
  mergeSystemLines,
  refreshSystemLines,
} from "../../core/client/system-lines.js";
import { fingerprint } from "../../core/crypto/keys.js";
import { ZmqchatError } from "../../core/errors.js";
import { syncOrWarn } from "../context.js";
import { type MessageFields, messageFields, systemFields } from "../format.js";
import { checkConversation } from "./target.js";

/**
 * The headless commands' work as functions that return plain values: the CLI prints them, the
 * daemon answers them. One implementation, so a command prints the same whether it ran itself or
 * asked a running daemon.
 */

/** Says a warning; the CLI prints `zmqchat: warning: TEXT`, the daemon sends a `warning` notification. */
export type Warn = (text: string) => void;

const WARNING = /^zmqchat: warning: /;

export interface SendResult {
  id: string;
  serverTime: string | null;
  /** Only with `queue`: the service was unreachable and the message waits in the outbox. */
  queued?: true;
}

export async function sendOp(
  client: ChatClient,
  p: {
    target: Target;
    text: string;
    queue?: boolean;
    timeoutMs?: number;
    replyTo?: string;
    extra?: MessageExtra;
  },
): Promise<SendResult> {
  const timeoutMs = p.timeoutMs ?? 10_000;
  const extra =
    p.extra ?? (p.replyTo !== undefined ? await replyExtra(client, p.target, p.replyTo) : undefined);
  // Messages queued earlier go first, so the conversation keeps the order they were written in.
  if (client.cache.outbox().length > 0) await client.flushOutbox({ timeoutMs });
  if (p.queue) {
    const r = await client.sendOrQueue(p.target, p.text, { timeoutMs }, extra);
    return r.queued
      ? { id: r.id, serverTime: null, queued: true }
      : { id: r.id, serverTime: r.message!.serverTime };
  }
  const m = await client.send(p.target, p.text, { timeoutMs }, extra);
  return { id: m.id, serverTime: m.serverTime };
}

/** A reply's sealed reference, once the message replied to is known in this conversation (synced first when not). */
export async function replyExtra(client: ChatClient, target: Target, replyTo: string): Promise<MessageExtra> {
  const conv = convOfTarget(target);
  const known = () => checkActionTarget(client.cache.actions, client.name, replyTo, "reply", conv);
  try {
    known();
  } catch (err) {
    if (!(err instanceof ZmqchatError) || err.code !== "not_found") throw err;
    await client.sync();
    known();
  }
  return { replyTo };
}

/** A conversation's newest `limit` messages, oldest first, after fetching what is new (offline: the cache). */
export async function historyOp(
  client: ChatClient,
  p: { target: Target; limit: number; markRead?: boolean },
  warn: Warn,
): Promise<MessageFields[]> {
  const online = await syncOrWarn(client, warn, "showing the local cache");
  if (online) await checkConversation(client, { err: (line) => warn(line.replace(WARNING, "")) }, p.target);
  // Unread as it was before this command showed anything (the "new messages" divider's view).
  const shown = withUnread(client.cache.history(convOfTarget(p.target), p.limit), client.name, (conv) =>
    client.cache.receipts.readMark(conv),
  );
  // Shown to a person: read receipts follow (core/client/receipts.ts says when a message is read).
  if (p.markRead) client.markRead(shown);
  if (!("group" in p.target)) return shown.map(messageFields);
  const group = p.target.group;
  // A group's history carries its system lines (issue 17): the server's record, kept in the cache.
  const lines = online
    ? await refreshSystemLines(client, group).catch((err: Error) => {
        warn(`system lines: ${err.message}; showing the cached ones`);
        return cachedSystemLines(client.cache, group);
      })
    : cachedSystemLines(client.cache, group);
  return mergeSystemLines(shown, lines, p.limit).map((m) =>
    isSystemEntry(m) ? systemFields(m) : messageFields(m),
  );
}

export interface SyncResult {
  received: number;
  total: number;
  /** Messages that waited in the outbox and went out. */
  sent: number;
}

export async function syncOp(
  client: ChatClient,
  onProgress?: (received: number) => void,
): Promise<SyncResult> {
  const received = await client.sync(onProgress);
  const sent = client.cache.outbox().length > 0 ? (await client.flushOutbox()).sent : 0;
  return { received, total: client.cache.messageCount(), sent };
}

export interface ContactRow {
  name: string;
  status: "you" | "key changed" | "pinned";
  verified: boolean;
  fingerprint: string;
  /** Issue 17: "online", "offline", or null when the contact shares none (or presence is off here). */
  presence: "online" | "offline" | null;
}

export async function contactsOp(client: ChatClient): Promise<ContactRow[]> {
  return (await client.users()).map((u) => {
    const c = client.cache.contact(u.name);
    const status = u.name === client.name ? "you" : c?.pending ? "key changed" : "pinned";
    // Keys that came only from the server are unverified until `keys verify` (you are always verified).
    const verified = u.name === client.name || (c?.verified ?? false);
    return {
      name: u.name,
      status,
      verified,
      fingerprint: fingerprint(u.name, c?.keys ?? u.keys),
      presence: u.name === client.name ? null : client.presenceOf(u.name),
    };
  });
}

export interface GroupRow {
  name: string;
  owner: string;
  members: string[];
  invited: string[];
}

function groupRow(g: {
  name: string;
  owner: string;
  members: Array<{ name: string }>;
  invited?: string[];
}): GroupRow {
  return { name: g.name, owner: g.owner, members: g.members.map((m) => m.name), invited: g.invited ?? [] };
}

export async function groupsOp(
  client: ChatClient,
): Promise<Array<Omit<GroupRow, "invited"> & { state: "member" | "invited"; invited: string[] }>> {
  return (await client.groups()).map((g) => {
    const { name, owner, members, invited } = groupRow(g);
    // Groups you are invited to are listed too, marked, until you accept or decline.
    return { name, owner, members, state: members.includes(client.name) ? "member" : "invited", invited };
  });
}

export async function groupCreateOp(
  client: ChatClient,
  name: string,
  members: string[],
): Promise<{ created: boolean; group: GroupRow }> {
  const r = await client.groupCreate(name, members);
  return { created: r.created, group: groupRow(r.group) };
}

export async function groupChangeOp(
  client: ChatClient,
  op: "add" | "remove",
  name: string,
  members: string[],
): Promise<GroupRow> {
  return groupRow(await client.groupChange(op, name, members));
}
