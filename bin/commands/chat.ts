import type { Command } from "commander";
import { inMailboxOrder } from "../../core/client/actions.js";
import type { ChatClient } from "../../core/client/client.js";
import { convKind, convName, groupConv, userConv } from "../../core/client/conv.js";
import { mentionAlert, notifies } from "../../core/client/mentions.js";
import { withUnread } from "../../core/client/read-state.js";
import { verifyHistory } from "../../core/client/verify.js";
import type { Settings } from "../../core/config/config.js";
import { parseDuration } from "../../core/config/duration.js";
import { fingerprint } from "../../core/crypto/keys.js";
import { ZmqchatError } from "../../core/errors.js";
import { NAME_PATTERN, NAME_RULE } from "../../core/protocol/limits.js";
import { sanitizeLine } from "../../core/text/sanitize.js";
import { openClient, settingsOf } from "../context.js";
import { viaDaemon } from "../daemon-client.js";
import { messageJson, messageLine } from "../format.js";
import type { Io } from "../io.js";
import {
  contactsOp,
  type GroupRow,
  groupChangeOp,
  groupCreateOp,
  groupsOp,
  historyOp,
  type SendResult,
  type SyncResult,
  sendOp,
  syncOp,
} from "./headless.js";
import { checkConversation } from "./target.js";

export function checkName(kind: string, name: string): string {
  if (!NAME_PATTERN.test(name))
    throw new ZmqchatError("usage", `"${name}" is not a valid ${kind} name: ${NAME_RULE}`);
  return name;
}

export function timeoutOf(opts: { timeout?: string }): number | undefined {
  return opts.timeout === undefined ? undefined : parseDuration(opts.timeout);
}

/**
 * Runs a headless command's work in this profile's daemon when one runs (the same method the
 * daemon offers scripts), else here with a client of its own: the result, and so the output, is the same.
 */
export async function work<T>(
  settings: Settings,
  io: Io,
  rpc: [method: string, params: Record<string, unknown>],
  direct: (client: ChatClient) => Promise<T>,
): Promise<T> {
  const viaD = await viaDaemon<T>(settings, io, rpc[0], rpc[1]);
  if (viaD) return viaD.result;
  const s = openClient(settings);
  try {
    return await direct(s.client);
  } finally {
    await s.close();
  }
}

export async function registerCommand(cmd: Command, io: Io): Promise<void> {
  const settings = settingsOf(cmd);
  const s = openClient(settings, { create: true });
  try {
    const r = await s.client.register({ timeoutMs: timeoutOf(cmd.opts()) });
    io.out(
      r.created ? `registered ${s.client.name}` : `${s.client.name} is already registered with these keys`,
    );
    io.out(`fingerprint: ${fingerprint(s.client.name, s.client.publicKeys)}`);
  } finally {
    await s.close();
  }
}

export async function sendCommand(
  cmd: Command,
  io: Io,
  user: string | undefined,
  textArg: string | undefined,
  opts: { group?: string; timeout?: string; queue?: boolean; replyTo?: string },
): Promise<void> {
  let target: { user: string } | { group: string };
  let text = textArg;
  if (opts.group !== undefined) {
    checkName("group", opts.group);
    // With --group, a single positional is the text.
    if (user !== undefined && text === undefined) text = user;
    else if (user !== undefined) throw new ZmqchatError("usage", "give either a user or --group, not both");
    target = { group: opts.group };
  } else {
    if (user === undefined)
      throw new ZmqchatError("usage", "send to whom? zmqchat send USER [TEXT] or --group GROUP");
    target = { user: checkName("user", user) };
  }
  if (text === undefined || text === "-") text = (await io.readStdin()).replace(/\r?\n$/, "");
  const body = text;
  const timeoutMs = timeoutOf(opts) ?? 10_000;
  const queue = Boolean(opts.queue);
  const replyTo = opts.replyTo;
  const r = await work<SendResult>(
    settingsOf(cmd),
    io,
    [
      "send",
      {
        ...("user" in target ? { to: target.user } : target),
        text: body,
        queue,
        timeoutMs,
        ...(replyTo !== undefined ? { replyTo } : {}),
      },
    ],
    (client) => sendOp(client, { target, text: body, queue, timeoutMs, replyTo }),
  );
  if (r.queued)
    io.err(
      "zmqchat: the service is unreachable; the message waits in the outbox and is sent when the link returns",
    );
  io.out(r.id);
}

/** Reports gaps (by the senders' own numbering) and unverifiable messages; exits 0 only when complete. */
export async function verifyHistoryCommand(
  cmd: Command,
  io: Io,
  user: string | undefined,
  opts: { group?: string; json?: boolean },
): Promise<void> {
  if (user !== undefined && opts.group !== undefined)
    throw new ZmqchatError("usage", "give a user or --group, not both");
  const s = openClient(settingsOf(cmd));
  try {
    await s.client.sync();
    if (opts.group !== undefined) await checkConversation(s.client, io, { group: opts.group });
    else if (user !== undefined) await checkConversation(s.client, io, { user });
    const convs =
      opts.group !== undefined
        ? [groupConv(checkName("group", opts.group))]
        : user !== undefined
          ? [userConv(checkName("user", user))]
          : s.client.cache.conversations().map((c) => c.conv);
    let complete = true;
    const held = s.client.cache.heldAll().map((i) => ({
      conv: i.envelope.group !== null ? groupConv(i.envelope.group) : userConv(i.envelope.from),
      id: i.envelope.id,
      from: i.envelope.from,
    }));
    for (const conv of convs) {
      const report = verifyHistory(
        conv,
        // Edits, deletes and reactions are numbered with the messages; one that does not count is flagged.
        inMailboxOrder(s.client.cache.history(conv, 1_000_000), s.client.cache.actions.asMessages(conv)),
        s.client.cache.replays(conv),
        held.filter((h) => h.conv === conv).map(({ id, from }) => ({ id, from })),
      );
      complete &&= report.complete;
      if (opts.json) {
        io.out(JSON.stringify(report));
        continue;
      }
      io.out(
        `${convName(conv) ?? conv}${convKind(conv) === "group" ? " (group)" : ""}: ${report.messages} messages, ${report.complete ? "complete" : "INCOMPLETE"}`,
      );
      for (const g of report.gaps)
        io.out(`  missing from ${g.from} (device ${g.device}): #${g.missing.join(", #")}`);
      for (const o of report.outOfOrder)
        io.out(
          `  out of order from ${o.from} (device ${o.device}): ${o.id} #${o.seq} placed after ${o.after.id} #${o.after.seq}`,
        );
      for (const r of report.replayed)
        io.out(`  replayed ${r.id} from ${r.from}: at cursors ${r.cursors.join(", ")}`);
      for (const h of report.held)
        io.out(
          `  held ${h.id} from ${h.from}: signed by new keys you have not trusted (zmqchat keys trust ${h.from})`,
        );
      for (const u of report.unverified)
        io.out(`  unverifiable ${u.id} from ${u.from}: ${sanitizeLine(u.problem)}`);
    }
    if (!complete)
      throw new ZmqchatError(
        "internal",
        "the history has gaps, messages out of order, replays or unverifiable messages",
      );
  } finally {
    await s.close();
  }
}

export async function historyCommand(
  cmd: Command,
  io: Io,
  user: string | undefined,
  opts: { group?: string; limit: string; json?: boolean; timeout?: string; markRead?: boolean },
): Promise<void> {
  if ((user === undefined) === (opts.group === undefined)) {
    throw new ZmqchatError("usage", "history of whom? zmqchat history USER or --group GROUP");
  }
  const limit = Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1)
    throw new ZmqchatError("usage", "--limit takes a whole number above 0");
  const target =
    opts.group !== undefined ? { group: checkName("group", opts.group) } : { user: checkName("user", user!) };
  // Printed to a terminal, a person reads it; a script reading a pipe is not reading (receipts.ts).
  const markRead = opts.markRead ?? Boolean(process.stdout.isTTY);
  const messages = await work(
    settingsOf(cmd),
    io,
    ["history", { ...("user" in target ? { with: target.user } : target), limit, markRead }],
    (client) => historyOp(client, { target, limit, markRead }, (text) => io.err(`zmqchat: warning: ${text}`)),
  );
  for (const m of messages) io.out(opts.json ? messageJson(m) : messageLine(m));
}

export async function syncCommand(
  cmd: Command,
  io: Io,
  opts: { timeout?: string; json?: boolean },
): Promise<void> {
  const r = await work<SyncResult>(settingsOf(cmd), io, ["sync", {}], async (client) => {
    const progress = io.progress("syncing");
    try {
      return await syncOp(client, (received) => progress.update(received));
    } finally {
      progress.done();
    }
  });
  if (r.sent > 0) io.err(`zmqchat: sent ${r.sent} queued message(s)`);
  io.out(
    opts.json
      ? JSON.stringify({ recovered: r.received, total: r.total })
      : `recovered ${r.received} messages`,
  );
}

/** Prints what arrived since the last listen, then live messages until interrupted. */
export async function listenCommand(cmd: Command, io: Io, opts: { json?: boolean }): Promise<void> {
  const s = openClient(settingsOf(cmd));
  const cache = s.client.cache;
  const me = s.client.name;
  let mark = cache.getState("listen_mark");
  const alerts = settingsOf(cmd).bell && Boolean(process.stderr.isTTY);
  const drain = () => {
    for (;;) {
      const batch = cache.after(mark, 1000);
      if (batch.length === 0) return;
      // `unread` as history --json has it: not shown on any of the user's devices yet.
      for (const m of withUnread(batch, me, (conv) => cache.receipts.readMark(conv))) {
        if (m.from !== me) io.out(opts.json ? messageJson(m) : messageLine(m));
        // A mention rings the bell and raises a desktop notification on a terminal (mentions.ts).
        if (alerts && notifies(m, (c) => cache.mutes.muted(c))) process.stderr.write(mentionAlert(m));
      }
      mark = batch.at(-1)!.cursor;
      cache.setState("listen_mark", mark);
    }
  };
  let draining = false;
  // Fed by the client's events: `message` for what this client stored, `already_stored` for what
  // another process of this profile (the TUI, a second listen) stored first — no cache polling.
  s.client.on((e) => {
    if ((e.type === "message" || e.type === "already_stored") && !draining) {
      draining = true;
      queueMicrotask(() => {
        draining = false;
        drain();
      });
    }
    if (e.type === "state") io.err(`zmqchat: ${e.state} (${e.endpoint})`);
    // An edit, delete or reaction that landed: the message it changed, again, as it is now.
    if (e.type === "action") {
      const [changed] = cache.messages([e.target]);
      if (changed && e.from !== me) io.out(opts.json ? messageJson(changed) : messageLine(changed));
    }
  });
  try {
    await s.client.goLive();
    drain();
    s.client.keepAlive();
    // Listening is being around: share presence while it runs (issue 17; config `presence`).
    await s.client
      .startPresence()
      .catch((err) => io.err(`zmqchat: warning: presence: ${(err as Error).message}`));
    await io.untilInterrupted();
    drain();
  } finally {
    await s.close();
  }
}

export async function contactsCommand(cmd: Command, io: Io, opts: { json?: boolean }): Promise<void> {
  for (const c of await work(settingsOf(cmd), io, ["contacts", {}], contactsOp)) {
    if (opts.json) io.out(JSON.stringify(c));
    else
      io.out(
        sanitizeLine(
          `${c.name}${c.status === "pinned" ? "" : ` (${c.status})`}${c.verified || c.status === "you" ? "" : " (unverified)"}`,
        ),
      );
  }
}

export async function groupsCommand(cmd: Command, io: Io, opts: { json?: boolean }): Promise<void> {
  for (const g of await work(settingsOf(cmd), io, ["groups", {}], groupsOp)) {
    if (opts.json) io.out(JSON.stringify(g));
    else
      io.out(
        sanitizeLine(
          `${g.name} (owner ${g.owner}): ${g.members.join(", ")}${g.invited.length ? `; invited: ${g.invited.join(", ")}` : ""}${
            g.state === "invited" ? ` — you are invited: zmqchat group accept ${g.name}` : ""
          }`,
        ),
      );
  }
}

function describeMembers(g: GroupRow): string {
  return `${g.members.join(", ")}${g.invited.length ? `; invited: ${g.invited.join(", ")}` : ""}`;
}

/** Answers an invitation, or leaves a group. */
export async function groupAnswerCommand(
  cmd: Command,
  io: Io,
  op: "accept" | "decline" | "leave",
  group: string,
): Promise<void> {
  checkName("group", group);
  const s = openClient(settingsOf(cmd));
  try {
    if (op === "leave") await s.client.groupLeave(group);
    else await s.client.groupAnswer(group, op);
    io.out(`${{ accept: "joined", decline: "declined", leave: "left" }[op]} ${group}`);
  } finally {
    await s.close();
  }
}

export async function groupCommand(
  cmd: Command,
  io: Io,
  op: "create" | "add" | "remove",
  group: string,
  members: string[],
): Promise<void> {
  checkName("group", group);
  for (const m of members) checkName("user", m);
  if (op !== "create" && members.length === 0)
    throw new ZmqchatError("usage", `group ${op} needs at least one member`);
  const settings = settingsOf(cmd);
  if (op === "create") {
    const r = await work(settings, io, ["group.create", { name: group, members }], (client) =>
      groupCreateOp(client, group, members),
    );
    io.out(`${r.created ? "created" : "already exists:"} ${group}: ${describeMembers(r.group)}`);
  } else {
    const g = await work(settings, io, [`group.${op}`, { name: group, members }], (client) =>
      groupChangeOp(client, op, group, members),
    );
    io.out(`${group}: ${describeMembers(g)}`);
  }
}
