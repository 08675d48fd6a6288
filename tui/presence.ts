/**
 * Who is typing in which conversation, and who is online: ephemeral signals (issue 17) that the
 * client reports live and never stores. Pure helpers for the state and the panes.
 */

/** A typing signal counts for this long unless renewed (the sender renews it while typing). */
export const TYPING_TTL_MS = 6000;
/** The TUI says "typing" at most this often while the user types. */
export const TYPING_EVERY_MS = 3000;

export type Presence = "online" | "offline";

/** "bob is typing…", "bob and carol are typing…", "3 people are typing…". */
export function typingLine(names: readonly string[]): string {
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

/** `names` with `name` added (on) or taken out (off); the same array when nothing changed. */
export function withTyping(names: readonly string[] | undefined, name: string, on: boolean): string[] {
  const list = names ?? [];
  const has = list.includes(name);
  if (on === has) return list as string[];
  return on ? [...list, name].sort() : list.filter((n) => n !== name);
}

/** The dot in the Contacts pane: ● online, ○ offline, nothing when the contact shares none. */
export function presenceDot(p: Presence | undefined): string {
  return p === "online" ? "●" : p === "offline" ? "○" : " ";
}
