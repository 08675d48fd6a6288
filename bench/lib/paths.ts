import { fileURLToPath } from "node:url";

/** The repository root (this file runs from dist/bench/lib). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** A compiled helper script under dist/bench/procs. */
export function procScript(name: string): string {
  return fileURLToPath(new URL(`../procs/${name}.js`, import.meta.url));
}
/** The built zmqchat command (the one path the tests use too). */
export { ZMQCHAT_BIN } from "../../test/helpers/paths.js";
