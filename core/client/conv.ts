/**
 * Conversation ids, the one place that knows their shape: `u:NAME` for a 1:1 conversation with
 * NAME, `g:NAME` for the group NAME (as in `ChatMessage.conv` and the cache's `conv` column).
 */

export type ConvKind = "user" | "group";

/** A conversation id taken apart. */
export interface ConvRef {
  kind: ConvKind;
  name: string;
}

const PREFIX: Record<ConvKind, string> = { user: "u:", group: "g:" };

/** The id of the conversation of `kind` with `name`. */
export function formatConv(kind: ConvKind, name: string): string {
  return `${PREFIX[kind]}${name}`;
}

/** The 1:1 conversation with `name`. */
export function userConv(name: string): string {
  return formatConv("user", name);
}

/** The conversation of the group `name`. */
export function groupConv(name: string): string {
  return formatConv("group", name);
}

/** Takes a conversation id apart; null when it is not one (no `u:` / `g:` prefix, or no name). */
export function parseConv(conv: string): ConvRef | null {
  if (conv.length < 3) return null;
  if (conv.startsWith(PREFIX.user)) return { kind: "user", name: conv.slice(PREFIX.user.length) };
  if (conv.startsWith(PREFIX.group)) return { kind: "group", name: conv.slice(PREFIX.group.length) };
  return null;
}

/** Whether `conv` is a 1:1 or a group conversation (null when it is neither). */
export function convKind(conv: string): ConvKind | null {
  return parseConv(conv)?.kind ?? null;
}

/** The other person's name (1:1) or the group's name; null when `conv` is not a conversation id. */
export function convName(conv: string): string | null {
  return parseConv(conv)?.name ?? null;
}

/** The group's name when `conv` is a group conversation, else null. */
export function groupOf(conv: string | null | undefined): string | null {
  const ref = conv ? parseConv(conv) : null;
  return ref?.kind === "group" ? ref.name : null;
}

/** The other person's name when `conv` is a 1:1 conversation, else null. */
export function userOf(conv: string | null | undefined): string | null {
  const ref = conv ? parseConv(conv) : null;
  return ref?.kind === "user" ? ref.name : null;
}

/** Whom a message to `conv` goes to, in `ChatClient.send`'s terms; null when `conv` is not a conversation id. */
export function targetOfConv(conv: string): { user: string } | { group: string } | null {
  const ref = parseConv(conv);
  if (!ref) return null;
  return ref.kind === "group" ? { group: ref.name } : { user: ref.name };
}

/** The conversation a message to `target` belongs to. */
export function convOfTarget(target: { user: string } | { group: string }): string {
  return "user" in target ? userConv(target.user) : groupConv(target.group);
}
