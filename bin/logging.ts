import { pino } from "pino";
import type { Logger } from "../core/logger.js";

/** pino behind the core's Logger seam; servers log JSON lines to stdout, headless commands to stderr. */
export function makeLogger(
  name: string,
  level: string,
  stream: NodeJS.WritableStream = process.stdout,
): Logger {
  return pino({ name, level, base: { pid: process.pid, name } }, stream as pino.DestinationStream);
}
