import { ZmqchatError } from "../errors.js";
import { MAX_FRAME_BYTES } from "./limits.js";

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const SUSPICIOUS = /"(__proto__|constructor|prototype)"\s*:/;

/**
 * Parses one JSON frame. Refuses frames over the limit, invalid UTF-8 / JSON, and keys that
 * could pollute prototypes further down the line.
 */
export function decodeJson(frame: Uint8Array | string): unknown {
  const size = typeof frame === "string" ? Buffer.byteLength(frame) : frame.byteLength;
  if (size > MAX_FRAME_BYTES)
    throw new ZmqchatError("too_large", `frame of ${size} bytes is over ${MAX_FRAME_BYTES}`);
  let text: string;
  try {
    text = typeof frame === "string" ? frame : utf8.decode(frame);
  } catch (cause) {
    throw new ZmqchatError("bad_request", "frame is not valid UTF-8", { cause });
  }
  try {
    if (!SUSPICIOUS.test(text)) return JSON.parse(text);
    return JSON.parse(text, (key, value) => {
      if (FORBIDDEN_KEYS.has(key)) throw new ZmqchatError("bad_request", `key "${key}" is not allowed`);
      return value;
    });
  } catch (cause) {
    if (cause instanceof ZmqchatError) throw cause;
    throw new ZmqchatError("bad_request", "frame is not valid JSON", { cause });
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
