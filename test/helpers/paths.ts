import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The repository root, found from this file whether it runs from source (test/helpers, as the
 * tests run) or compiled (dist/test/helpers, as the bench imports the launchers).
 */
function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
/** The built CLI; tests and the bench run it as a user would. */
export const ZMQCHAT_BIN = join(REPO_ROOT, "dist", "bin", "zmqchat.js");
