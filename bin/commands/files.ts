import { statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import type { ChatClient } from "../../core/client/client.js";
import type { FileRef } from "../../core/client/file-ref.js";
import { downloadFile, forgetUpload, safeFileName, uploadFile } from "../../core/client/files.js";
import { type Caller, method } from "../../core/daemon/rpc.js";
import { ZmqchatError } from "../../core/errors.js";
import { UUID_PATTERN } from "../../core/protocol/ids.js";
import { openClient, settingsOf, syncOrWarn } from "../context.js";
import type { Io } from "../io.js";
import { checkName, timeoutOf } from "./chat.js";
import { replyExtra } from "./headless.js";

/** Each chunk request's own deadline, retries included, unless --timeout says otherwise. */
const FILE_REQUEST_MS = 30_000;

/** Shows a transfer's progress in KiB on a terminal (silent when stderr is not one). */
function progressOf(io: Io, label: string) {
  const p = io.progress(label);
  return {
    onProgress: (done: number, total: number) => p.update(Math.round(done / 1024), Math.round(total / 1024)),
    done: () => p.done(),
  };
}

/**
 * `send USER|--group GROUP --file PATH [TEXT]`: encrypts and uploads the file (resuming an
 * upload of the same file to the same conversation that stopped), then sends the message that
 * carries its key and digest; prints the message id once both are stored durably.
 */
export async function sendFileCommand(
  cmd: Command,
  io: Io,
  user: string | undefined,
  textArg: string | undefined,
  opts: { group?: string; file: string; timeout?: string; replyTo?: string; queue?: boolean },
): Promise<void> {
  if (opts.queue)
    throw new ZmqchatError("usage", "--file goes without --queue (a file is uploaded while online)", {
      hint: "send the file when the service can be reached; a stopped upload continues when sent again",
    });
  let target: { user: string } | { group: string };
  let text = textArg;
  if (opts.group !== undefined) {
    if (user !== undefined && text === undefined) text = user;
    else if (user !== undefined) throw new ZmqchatError("usage", "give either a user or --group, not both");
    target = { group: checkName("group", opts.group) };
  } else {
    if (user === undefined)
      throw new ZmqchatError("usage", "send to whom? zmqchat send USER --file PATH or --group GROUP");
    target = { user: checkName("user", user) };
  }
  if (text === "-") text = (await io.readStdin()).replace(/\r?\n$/, "");
  const timeoutMs = timeoutOf(opts) ?? FILE_REQUEST_MS;
  const s = openClient(settingsOf(cmd));
  const progress = progressOf(io, "uploading (KiB)");
  try {
    const r = await sendFileOp(s.client, {
      target,
      path: opts.file,
      text,
      replyTo: opts.replyTo,
      timeoutMs,
      onProgress: progress.onProgress,
    });
    progress.done();
    io.out(r.id);
  } finally {
    progress.done();
    await s.close();
  }
}

/** Uploads a file and sends the message that carries its key (the CLI's `send --file` and the daemon's `sendFile`). */
export async function sendFileOp(
  client: ChatClient,
  p: {
    target: { user: string } | { group: string };
    path: string;
    text?: string;
    replyTo?: string;
    timeoutMs?: number;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<{ id: string; serverTime: string }> {
  const timeoutMs = p.timeoutMs ?? FILE_REQUEST_MS;
  await client.login({ timeoutMs });
  // Checked before the upload: a reply to a message not in this conversation uploads nothing.
  const reply = p.replyTo !== undefined ? await replyExtra(client, p.target, p.replyTo) : {};
  const ref = await uploadFile(client, p.path, p.target, client.cache, {
    timeoutMs,
    onProgress: p.onProgress,
  });
  const body = p.text !== undefined && p.text.trim() !== "" ? p.text : `[file] ${ref.name}`;
  // The message takes the upload's id: whoever has the message id asks for the file by it.
  const message = await client.send(p.target, body, { timeoutMs, id: ref.id }, { ...reply, file: ref });
  forgetUpload(client.cache, ref, p.target);
  return { id: message.id, serverTime: message.serverTime };
}

/**
 * The file a message carries, from the local cache after a sync. An id that is no file message
 * here is asked of the service as a file id, so that what the service refuses (not in the
 * file's audience: exit 4) or does not know (exit 5) is said plainly.
 */
async function fileOf(
  client: ChatClient,
  id: string,
  warn: (line: string) => void,
  timeoutMs: number,
): Promise<FileRef> {
  await client.login({ timeoutMs });
  await syncOrWarn(client, warn, "looking in the local cache");
  const ref = client.cache.actions.files.get(id);
  if (ref) return ref;
  const cached = client.cache.actions.message(id);
  if (cached && client.cache.actions.apply([cached])[0]!.deleted)
    throw new ZmqchatError("not_found", `the message ${id} was deleted by its author, with its file`);
  if (cached) throw new ZmqchatError("usage", `the message ${id} carries no file`);
  await client.request("file.get", { id, index: 0 }, { timeoutMs });
  throw new ZmqchatError(
    "not_found",
    `no message with the file ${id} is in your history, so its key is not here`,
  );
}

/**
 * `download ID [--out PATH] [--force]`: fetches, decrypts and checks the file of message ID.
 * Default: the sender's file name, made safe (safeFileName), in the current directory; never
 * replaces a file without --force; a stopped download continues when run again.
 */
export async function downloadCommand(
  cmd: Command,
  io: Io,
  id: string,
  opts: { out?: string; force?: boolean; timeout?: string },
): Promise<void> {
  const s = openClient(settingsOf(cmd));
  const progress = progressOf(io, "downloading (KiB)");
  try {
    const r = await downloadOp(s.client, {
      id,
      out: opts.out,
      force: opts.force,
      timeoutMs: timeoutOf(opts),
      onProgress: progress.onProgress,
      warn: (line) => io.err(`zmqchat: warning: ${line}`),
    });
    progress.done();
    io.out(r.path);
  } finally {
    progress.done();
    await s.close();
  }
}

/** Fetches, decrypts and checks the file of message `id` (the CLI's `download` and the daemon's). */
export async function downloadOp(
  client: ChatClient,
  p: {
    id: string;
    out?: string;
    force?: boolean;
    timeoutMs?: number;
    onProgress?: (done: number, total: number) => void;
    warn: (line: string) => void;
  },
): Promise<{ path: string; bytes: number }> {
  if (!UUID_PATTERN.test(p.id))
    throw new ZmqchatError("usage", `"${p.id}" is not a message id (history --json)`);
  const timeoutMs = p.timeoutMs ?? FILE_REQUEST_MS;
  const ref = await fileOf(client, p.id, p.warn, timeoutMs);
  const name = safeFileName(ref.name);
  let out = resolve(p.out ?? name);
  if (p.out !== undefined && statSync(out, { throwIfNoEntry: false })?.isDirectory()) out = join(out, name);
  return downloadFile(client, ref, out, { timeoutMs, force: p.force, onProgress: p.onProgress });
}

/**
 * The daemon's `sendFile` and `download` (README, "Daemon"): they read and write files by path
 * as the daemon's user, so only a caller on this machine's socket or stdio may use them, never
 * one over TCP (which --allow-remote opens to other machines), and only with absolute paths.
 */
export function fileMethods(client: ChatClient) {
  const name = z.string().min(1).max(64);
  const timeoutMs = z.number().int().min(1).max(600_000).optional();
  const absolute = z
    .string()
    .min(1)
    .max(4096)
    .refine((p) => isAbsolute(p), "must be an absolute path");
  const local = (caller: Caller) => {
    if (!caller.local)
      throw new ZmqchatError(
        "forbidden",
        "files are sent and saved by path only over the daemon's socket or stdio, not TCP",
      );
  };
  return {
    sendFile: method(
      z
        .object({
          to: name.optional(),
          group: name.optional(),
          path: absolute,
          text: z.string().optional(),
          replyTo: z.string().optional(),
          timeoutMs,
        })
        .strict()
        .refine((p) => (p.to === undefined) !== (p.group === undefined), "give exactly one of to or group"),
      (p, caller) => {
        local(caller);
        const target =
          p.to !== undefined ? { user: checkName("user", p.to) } : { group: checkName("group", p.group!) };
        return sendFileOp(client, {
          target,
          path: p.path,
          text: p.text,
          replyTo: p.replyTo,
          timeoutMs: p.timeoutMs,
        });
      },
    ),
    download: method(
      z
        .object({ id: z.string().min(1).max(64), out: absolute, force: z.boolean().optional(), timeoutMs })
        .strict(),
      (p, caller) => {
        local(caller);
        return downloadOp(client, { ...p, warn: (line) => caller.warn(line) });
      },
    ),
  };
}
