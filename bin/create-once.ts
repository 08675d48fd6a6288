import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";

/**
 * The content of `path`, made from `make()` if the file does not exist yet, safely when several
 * processes do this at once (two commands started together on a new profile): the content is
 * written whole to a private temporary file beside `path` and then hard-linked into place, which
 * fails with EEXIST if another process got there first. So no reader ever sees a half-written
 * file, and every process ends up with the same content, the first writer's.
 */
export function readOrCreateOnce(path: string, make: () => string, mode = 0o600): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const content = make();
  const temp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(temp, content, { mode, flag: "wx" });
  try {
    linkSync(temp, path);
    return content;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return readFileSync(path, "utf8");
  } finally {
    unlinkSync(temp);
  }
}
