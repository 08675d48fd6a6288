import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Z85_KEY } from "./curve.js";

/**
 * Where balancers on this machine publish their CURVE public key for clients of the same user:
 * `$XDG_RUNTIME_DIR/zmqchat` or, without it, `TMPDIR/zmqchat-UID`; a directory of mode 0700
 * owned by this user, so nobody else can plant a key in it. One file per client endpoint.
 */
export function publishedKeysDir(env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.() ?? 0;
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, "zmqchat") : join(tmpdir(), `zmqchat-${uid}`);
}

function fileFor(dir: string, endpoint: string): string {
  return join(dir, `${endpoint.toLowerCase().replace(/[^a-z0-9.]+/g, "_")}.key`);
}

/** The directory, made 0700 if absent; null when it exists but is not ours alone (refused). */
function ownDir(dir: string, create: boolean): string | null {
  if (create) mkdirSync(dir, { recursive: true, mode: 0o700 });
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch {
    return null;
  }
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) return null;
  if ((st.mode & 0o077) !== 0) {
    if (!create) return null;
    chmodSync(dir, 0o700);
  }
  return dir;
}

/** Publishes the balancer's public key for `endpoint` (atomically, mode 0600). */
export function publishBalancerKey(endpoint: string, publicKey: string, env?: NodeJS.ProcessEnv): string {
  const dir = ownDir(publishedKeysDir(env), true);
  if (!dir) throw new Error(`${publishedKeysDir(env)} is not a directory of this user's alone`);
  const path = fileFor(dir, endpoint);
  writeFileSync(`${path}.tmp`, `${publicKey}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return path;
}

/** Removes what was published for `endpoint` (when `publicKey` is given, only if it is still that key). */
export function unpublishBalancerKey(endpoint: string, publicKey?: string, env?: NodeJS.ProcessEnv): void {
  const dir = ownDir(publishedKeysDir(env), false);
  if (!dir) return;
  const path = fileFor(dir, endpoint);
  if (publicKey !== undefined && readKey(path) !== publicKey) return;
  rmSync(path, { force: true });
}

/** The key a balancer on this machine published for `endpoint`, or null. */
export function findBalancerKey(endpoint: string, env?: NodeJS.ProcessEnv): string | null {
  const dir = ownDir(publishedKeysDir(env), false);
  return dir ? readKey(fileFor(dir, endpoint)) : null;
}

function readKey(path: string): string | null {
  try {
    const st = lstatSync(path);
    if (!st.isFile()) return null;
    const key = readFileSync(path, "utf8").trim();
    return Z85_KEY.test(key) ? key : null;
  } catch {
    return null;
  }
}
