import { pino } from "pino";
import type { Logger } from "../core/logger.js";
import { sanitizeLine } from "../core/text/sanitize.js";

/** pino behind the core's Logger seam; servers log JSON lines to stdout, headless commands to stderr. */
export function makeLogger(
  name: string,
  level: string,
  stream: NodeJS.WritableStream = process.stdout,
): Logger {
  return pino({ name, level, base: { pid: process.pid, name } }, stream as pino.DestinationStream);
}

/**
 * The logger of a headless command: warnings and errors as one sentence each on stderr
 * (`zmqchat: warning: …`). JSON lines are for servers and for asking: `--debug`, or a log
 * level set in the environment (`ZMQCHAT_LOG_LEVEL`) or the config file.
 */
export function makeCliLogger(
  name: string,
  opts: { debug: boolean; level?: string },
  stream: NodeJS.WritableStream = process.stderr,
): Logger {
  if (opts.debug || opts.level) return makeLogger(name, opts.level ?? "debug", stream);
  const say = (kind: string) => (obj: object, msg?: string) => {
    stream.write(`zmqchat: ${kind}: ${sentence(obj, msg)}\n`);
  };
  return { debug() {}, info() {}, warn: say("warning"), error: say("error") };
}

function sentence(obj: object, msg: string | undefined): string {
  const err = (obj as { err?: unknown }).err;
  const why = err instanceof Error ? err.message : typeof err === "string" ? err : undefined;
  const text = msg ?? why ?? "something went wrong";
  return sanitizeLine(why && why !== text ? `${text}: ${why}` : text);
}

/** What a headless command says when a contact's keys changed. */
export function keyChangedSentence(name: string): string {
  return (
    `zmqchat: warning: ${name}'s keys changed since you pinned them; messages to ${name} wait until you ` +
    `compare safety numbers (zmqchat keys fingerprint ${name}) and accept them (zmqchat keys trust ${name})`
  );
}
