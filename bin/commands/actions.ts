import type { Command } from "commander";
import { z } from "zod";
import { checkActionTarget, emojiProblem } from "../../core/client/actions.js";
import type { ChatClient } from "../../core/client/client.js";
import { targetOfConv } from "../../core/client/conv.js";
import { removeFromService } from "../../core/client/files.js";
import type { ChatMessage, MessageAction } from "../../core/client/message.js";
import { method } from "../../core/daemon/rpc.js";
import { asZmqchatError, ZmqchatError } from "../../core/errors.js";
import { settingsOf } from "../context.js";
import type { Io } from "../io.js";
import { timeoutOf, work } from "./chat.js";
import { type SendResult, sendOp } from "./headless.js";

/**
 * `edit`, `delete` and `react` (issue 17): each sends a sealed, signed action event to the
 * conversation of the message it acts on (core/client/actions.ts). The daemon offers the same ops.
 */

/** The cached message an action targets (synced first when it is not here yet); refused when the user may not. */
async function targetOf(client: ChatClient, id: string, kind: MessageAction["kind"]): Promise<ChatMessage> {
  try {
    return checkActionTarget(client.cache.actions, client.name, id, kind);
  } catch (err) {
    if (!(err instanceof ZmqchatError) || err.code !== "not_found") throw err;
  }
  await client.sync();
  return checkActionTarget(client.cache.actions, client.name, id, kind);
}

async function act(
  client: ChatClient,
  id: string,
  text: string,
  action: MessageAction,
  timeoutMs: number | undefined,
): Promise<SendResult> {
  const m = await targetOf(client, id, action.kind);
  const target = targetOfConv(m.conv);
  if (!target) throw new ZmqchatError("internal", `message ${id} has no conversation`);
  return sendOp(client, { target, text, timeoutMs, extra: { action } });
}

export function editOp(client: ChatClient, p: { id: string; text: string; timeoutMs?: number }) {
  return act(client, p.id, p.text, { kind: "edit", target: p.id }, p.timeoutMs);
}

export async function deleteOp(client: ChatClient, p: { id: string; timeoutMs?: number }) {
  await targetOf(client, p.id, "delete");
  // Read before the delete: once recorded, the cache forgets the file's reference.
  const file = client.cache.actions.files.get(p.id);
  // The text is what clients that predate actions show.
  const r = await act(client, p.id, "(deleted a message)", { kind: "delete", target: p.id }, p.timeoutMs);
  if (file) {
    try {
      await removeFromService(client, file, { timeoutMs: p.timeoutMs });
    } catch (err) {
      throw new ZmqchatError(
        asZmqchatError(err).code,
        `the message is deleted, but its file is still on the service: ${asZmqchatError(err).message}`,
        {
          hint: `run zmqchat delete ${p.id} again to remove the file`,
        },
      );
    }
  }
  return r;
}

export function reactOp(
  client: ChatClient,
  p: { id: string; emoji: string; remove?: boolean; timeoutMs?: number },
) {
  const problem = emojiProblem(p.emoji);
  if (problem) throw new ZmqchatError("usage", problem);
  const remove = p.remove === true;
  return act(
    client,
    p.id,
    remove ? `(took back ${p.emoji})` : p.emoji,
    { kind: "react", target: p.id, emoji: p.emoji, remove },
    p.timeoutMs,
  );
}

export async function editCommand(
  cmd: Command,
  io: Io,
  id: string,
  textArg: string | undefined,
  opts: { timeout?: string },
): Promise<void> {
  const text =
    textArg === undefined || textArg === "-" ? (await io.readStdin()).replace(/\r?\n$/, "") : textArg;
  const timeoutMs = timeoutOf(opts) ?? 10_000;
  const r = await work<SendResult>(settingsOf(cmd), io, ["edit", { id, text, timeoutMs }], (client) =>
    editOp(client, { id, text, timeoutMs }),
  );
  io.out(r.id);
}

export async function deleteCommand(
  cmd: Command,
  io: Io,
  id: string,
  opts: { timeout?: string },
): Promise<void> {
  const timeoutMs = timeoutOf(opts) ?? 10_000;
  const r = await work<SendResult>(settingsOf(cmd), io, ["delete", { id, timeoutMs }], (client) =>
    deleteOp(client, { id, timeoutMs }),
  );
  io.out(r.id);
}

export async function reactCommand(
  cmd: Command,
  io: Io,
  id: string,
  emoji: string,
  opts: { remove?: boolean; timeout?: string },
): Promise<void> {
  const problem = emojiProblem(emoji);
  if (problem) throw new ZmqchatError("usage", problem);
  const timeoutMs = timeoutOf(opts) ?? 10_000;
  const remove = opts.remove === true;
  const r = await work<SendResult>(
    settingsOf(cmd),
    io,
    ["react", { id, emoji, remove, timeoutMs }],
    (client) => reactOp(client, { id, emoji, remove, timeoutMs }),
  );
  io.out(r.id);
}

/** The daemon's `edit`, `delete` and `react` methods (README, "Daemon"). */
export function actionMethods(client: ChatClient) {
  const id = z.string().min(1).max(64);
  const timeoutMs = z.number().int().min(1).max(600_000).optional();
  return {
    edit: method(z.object({ id, text: z.string(), timeoutMs }).strict(), (p) => editOp(client, p)),
    delete: method(z.object({ id, timeoutMs }).strict(), (p) => deleteOp(client, p)),
    react: method(
      z.object({ id, emoji: z.string().max(64), remove: z.boolean().optional(), timeoutMs }).strict(),
      (p) => reactOp(client, p),
    ),
  };
}
