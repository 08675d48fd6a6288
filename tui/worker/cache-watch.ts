/**
 * Tells when a profile's cache file changed on disk, whoever wrote it: the one thing another
 * process of the profile can change that no event of this TUI's client reports is the shared
 * on-disk outbox (`zmqchat send --queue` while the service is away). A file-system
 * notification (inotify on Linux), not a timer.
 */

import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";

/** Calls `onChange` at most once per turn after the SQLite file at `path` (or its WAL) changed; returns the stop function. */
export function watchCacheFile(path: string, onChange: () => void): () => void {
  const name = basename(path);
  let pending = false;
  let watcher: FSWatcher;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file !== null && !String(file).startsWith(name)) return;
      if (pending) return;
      pending = true;
      setImmediate(() => {
        pending = false;
        onChange();
      });
    });
  } catch {
    // No notifications here (an odd file system): the outbox shows what this TUI sees itself.
    return () => {};
  }
  watcher.on("error", () => {});
  return () => watcher.close();
}
