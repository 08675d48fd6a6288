import { statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import type { ChatClient } from "../../core/client/client.js";
import type { FileRef } from "../../core/client/file-ref.js";
import { downloadFile, forgetUpload, safeFileName, uploadFile } from "../../core/client/files.js";
import { ZmqchatError } from "../../core/errors.js";
import { UUID_PATTERN } from "../../core/protocol/ids.js";
import { openClient, settingsOf, syncOrWarn } from "../context.js";
import type { Io } from "../io.js";
import { checkName, timeoutOf } from "./chat.js";

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
  if (opts.replyTo !== undefined || opts.queue)
    throw new ZmqchatError("usage", "--file goes without --reply-to and --queue");
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
    await s.client.login({ timeoutMs });
    const ref = await uploadFile(s.client, opts.file, target, s.client.cache, {
      timeoutMs,
      onProgress: progress.onProgress,
    });
    progress.done();
    const body = text !== undefined && text.trim() !== "" ? text : `[file] ${ref.name}`;
    // The message takes the upload's id: whoever has the message id asks for the file by it.
    const message = await s.client.send(target, body, { timeoutMs, id: ref.id }, { file: ref });
    forgetUpload(s.client.cache, ref, target);
    io.out(message.id);
  } finally {
    progress.done();
    await s.close();
  }
}

/**
 * The file a message carries, from the local cache after a sync. An id that is no file message
 * here is asked of the service as a file id, so that what the service refuses (not in the
 * file's audience: exit 4) or does not know (exit 5) is said plainly.
 */
async function fileOf(client: ChatClient, id: string, io: Io, timeoutMs: number): Promise<FileRef> {
  await client.login({ timeoutMs });
  await syncOrWarn(client, (line) => io.err(`zmqchat: warning: ${line}`), "looking in the local cache");
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
  if (!UUID_PATTERN.test(id)) throw new ZmqchatError("usage", `"${id}" is not a message id (history --json)`);
  const timeoutMs = timeoutOf(opts) ?? FILE_REQUEST_MS;
  const s = openClient(settingsOf(cmd));
  const progress = progressOf(io, "downloading (KiB)");
  try {
    const ref = await fileOf(s.client, id, io, timeoutMs);
    const name = safeFileName(ref.name);
    let out = resolve(opts.out ?? name);
    if (opts.out !== undefined && statSync(out, { throwIfNoEntry: false })?.isDirectory())
      out = join(out, name);
    const r = await downloadFile(s.client, ref, out, {
      timeoutMs,
      force: opts.force,
      onProgress: progress.onProgress,
    });
    progress.done();
    io.out(r.path);
  } finally {
    progress.done();
    await s.close();
  }
}
