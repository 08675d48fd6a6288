/** `/file PATH` and `/save [ID]` in the TUI (issue 18): attachments through core/client/files.ts. */

import { readdir } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { targetOfConv } from "../../core/client/conv.js";
import { downloadFile, forgetUpload, safeFileName, uploadFile } from "../../core/client/files.js";
import {
  completeSegment,
  type DirEntry,
  type FileKeyAction,
  fileToSave,
  pathToComplete,
} from "../file-keys.js";
import type { State } from "../state.js";
import { sanitize } from "../text.js";
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

/** The entries of the directory `typed` (a path being typed) lives in; [] when it cannot be read. */
export async function listFor(typed: string): Promise<DirEntry[]> {
  const cut = typed.lastIndexOf("/");
  const dir = cut === -1 ? "." : typed.slice(0, cut + 1);
  try {
    const entries = await readdir(expandPath(dir), { withFileTypes: true });
    return entries.map((e) => ({ name: e.name, dir: e.isDirectory() }));
  } catch {
    return [];
  }
}

/** Tab on `/file PATH`: completes PATH in the composer, or says in the status bar why it cannot. */
export async function completeFilePath(ctx: WorkerContext): Promise<void> {
  const before = ctx.state().composer.text;
  const typed = pathToComplete(ctx.state());
  if (typed === null) return;
  if (typed === "~") {
    ctx.dispatch({ type: "edit", op: { kind: "insert", text: "/" } });
    return;
  }
  const { add, matches } = completeSegment(typed, await listFor(typed));
  // The user typed on meanwhile: this completion is for text that is gone.
  if (ctx.state().composer.text !== before) return;
  if (matches.length === 0) ctx.notice(`no file matches ${typed || "./"}`, "warn");
  else if (add !== "") ctx.dispatch({ type: "edit", op: { kind: "insert", text: add } });
  else if (matches.length > 1)
    ctx.notice(
      sanitize(
        `${matches.length} matches: ${matches.slice(0, 12).join("  ")}${matches.length > 12 ? " …" : ""}`,
      ),
    );
}

/** What `s` (save the selected file) and Tab on `/file` do once the reducer let them through. */
export function fileKeyEffect(
  ctx: WorkerContext,
  a: FileKeyAction,
  prev: State,
  save: typeof saveFileOf = saveFileOf,
): void {
  if (a.type === "completePath") ctx.track(completeFilePath(ctx));
  else {
    const f = fileToSave(prev);
    if (f) ctx.track(save(ctx, f.conv, f.id));
  }
}
