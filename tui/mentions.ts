/**
 * Mentions (issue 17): `@name` in a message names that user. The reader's own name stands out
 * in the history, and a mention of the reader rings the bell and raises a desktop notification
 * through the terminal (OSC 9), unless the conversation is muted. Pure.
 */

/** What may follow a name without being part of it (names are [a-z0-9][a-z0-9_.-]*). */
const AFTER_NAME = "(?![a-z0-9_-]|\\.[a-z0-9_-])";

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function mentionRe(me: string): RegExp {
  return new RegExp(`(?<![a-z0-9_.@-])(@${escapeRe(me)})${AFTER_NAME}`, "gi");
}

/** True when `text` mentions `me` as `@me` (a whole name: @bob is not in @bobby or a@bob.com). */
export function mentions(text: string, me: string): boolean {
  return mentionRe(me).test(text);
}

/** `text` cut around each `@me`: odd indexes are the mentions. */
export function splitMentions(text: string, me: string): string[] {
  return text.split(mentionRe(me));
}

/** Most characters of a notification's text. */
const NOTIFY_MAX = 120;

/**
 * The OSC 9 desktop notification for `text`. The text is someone else's message: every control
 * character (ESC, BEL, C1 such as ST) is dropped so it cannot end the sequence early and send
 * the terminal commands of its own, and it is cut short.
 */
export function osc9(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
  const clean = [...text.replace(CONTROL, " ")].slice(0, NOTIFY_MAX).join("");
  return `\x1b]9;${clean}\x07`;
}
