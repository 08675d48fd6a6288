/** `/file PATH` and `/save [ID]` in the TUI (issue 18): attachments through core/client/files.ts. */

import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { targetOfConv } from "../../core/client/conv.js";
import { downloadFile, forgetUpload, safeFileName, uploadFile } from "../../core/client/files.js";
import type { WorkerContext } from "./context.js";

/** Progress in the status bar, at most every 10 % (a notice per step, not per chunk). */
function progressNotice(ctx: WorkerContext, label: string) {
  let shown = -1;
  return (done: number, total: number) => {
    const pct = total === 0 ? 100 : Math.floor((done / total) * 10) * 10;
    if (pct === shown) return;
    shown = pct;
    ctx.notice(`${label}: ${pct}% of ${total} bytes`);
  };
}

/** Expands a leading `~/` the way a shell would, since `/file` paths are typed by hand. */
export function expandPath(path: string): string {
  return path === "~" ? homedir() : path.startsWith("~/") ? join(homedir(), path.slice(2)) : resolve(path);
}

/** Encrypts, uploads and sends the file at `path` to the open conversation `conv`. */
export async function sendFileTo(ctx: WorkerContext, conv: string, path: string): Promise<void> {
  const c = ctx.client();
  if (!c) return;
  const target = targetOfConv(conv);
  if (!target) {
    ctx.notice("open a conversation first, then /file PATH", "error");
    return;
  }
  try {
    const ref = await uploadFile(c, expandPath(path), target, c.cache, {
      onProgress: progressNotice(ctx, `uploading ${path}`),
    });
    await c.send(target, `[file] ${ref.name}`, { id: ref.id }, { file: ref });
    forgetUpload(c.cache, ref, target);
    ctx.notice(`sent ${ref.name} (${ref.size} bytes, ${ref.type})`);
  } catch (err) {
    ctx.notice(`the file was not sent: ${err instanceof Error ? err.message : String(err)}`, "error");
  }
}

/** Saves the file of message `id` (default: the newest file message of `conv`) in the current directory. */
export async function saveFileOf(ctx: WorkerContext, conv: string | null, id: string | null): Promise<void> {
  const c = ctx.client();
  if (!c) return;
  let messageId = id;
  if (messageId === null && conv !== null) {
    const files = c.cache.actions.files.ofConv(conv);
    messageId = [...files.keys()].sort().at(-1) ?? null;
  }
  const ref = messageId === null ? null : c.cache.actions.files.get(messageId);
  if (!ref || messageId === null) {
    ctx.notice(id ? `no file message ${id} here` : "no file message in this conversation", "error");
    return;
  }
  try {
    const out = resolve(safeFileName(ref.name));
    await downloadFile(c, ref, out, { onProgress: progressNotice(ctx, `saving ${ref.name}`) });
    ctx.notice(`saved ${out}`);
  } catch (err) {
    ctx.notice(`not saved: ${err instanceof Error ? err.message : String(err)}`, "error");
  }
}
