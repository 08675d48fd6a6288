import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ZmqchatError } from "../core/errors.js";
import { type CurveKeys, makeCurveKeys, Z85_KEY } from "../transports/zeromq/index.js";
import { readOrCreateOnce } from "./create-once.js";

/** Reads a CURVE key pair file (`{"publicKey","secretKey"}`, Z85), as `zmqchat curve keygen` writes it. */
export function readCurveKeys(path: string): CurveKeys {
  let keys: Partial<CurveKeys>;
  try {
    keys = JSON.parse(readFileSync(path, "utf8")) as Partial<CurveKeys>;
  } catch (cause) {
    throw new ZmqchatError("usage", `cannot read the CURVE key file ${path}`, { cause });
  }
  if (!keys.publicKey || !keys.secretKey || !Z85_KEY.test(keys.publicKey) || !Z85_KEY.test(keys.secretKey)) {
    throw new ZmqchatError("usage", `${path} is not a CURVE key pair file`, {
      hint: "make one with: zmqchat curve keygen FILE",
    });
  }
  return { publicKey: keys.publicKey, secretKey: keys.secretKey };
}

export function writeCurveKeys(path: string, keys: CurveKeys): void {
  writeFileSync(path, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** An allow-list: one Z85 public key per line; a line starting with `#` is a comment (Z85 itself uses `#`). */
export function readAllowList(path: string): Set<string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ZmqchatError("usage", `cannot read the allow-list ${path}`, { cause });
  }
  const keys = new Set<string>();
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || (line.startsWith("#") && !Z85_KEY.test(line))) continue;
    if (!Z85_KEY.test(line))
      throw new ZmqchatError("usage", `${path}:${i + 1}: not a 40-character Z85 public key`);
    keys.add(line);
  }
  return keys;
}

/**
 * This device's CURVE key pair, made on first use in the profile directory (mode 0600). Several
 * commands started at once on a new profile all get the same pair: the file is made whole and
 * linked into place once (`readOrCreateOnce`), never truncated and rewritten.
 */
export function deviceCurveKeys(profileDir: string): CurveKeys {
  const path = join(profileDir, "curve.json");
  mkdirSync(profileDir, { recursive: true, mode: 0o700 });
  readOrCreateOnce(path, () => `${JSON.stringify(makeCurveKeys(), null, 2)}\n`);
  return readCurveKeys(path);
}
