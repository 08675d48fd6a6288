/** Slash commands typed in the composer, parsed into values (no network here). */

import { toMatchQuery } from "../core/client/search.js";
import { NAME_PATTERN } from "../core/protocol/limits.js";

export type Command =
  | { kind: "msg"; user: string; text: string | null }
  | { kind: "group"; op: "create" | "add" | "remove"; name: string; members: string[] }
  | { kind: "members"; name: string | null }
  /** Answers an invitation, or leaves a group; `name` null: the open (or selected) group. */
  | { kind: "invite"; answer: "accept" | "decline" | "leave"; name: string | null }
  | { kind: "trust"; user: string }
  | { kind: "verify"; user: string }
  | { kind: "fingerprint"; user: string | null }
  | { kind: "search"; query: string }
  | { kind: "unread" }
  /** `/mute`, `/unmute`: the open conversation, in this profile's mute list (as `zmqchat mute`). */
  | { kind: "mute"; on: boolean }
  /** `/devices`: the list; `/devices revoke ID`: says how (the keys rotate: see worker/commands.ts). */
  | { kind: "devices"; revoke: string | null }
  /** Attachments (tui/worker/files.ts): send a file to the open conversation; save one. */
  | { kind: "file"; path: string }
  | { kind: "save"; id: string | null }
  | { kind: "help" }
  | { kind: "quit" }
  | { kind: "invalid"; message: string };

export const COMMAND_HELP: ReadonlyArray<[string, string]> = [
  ["/msg USER [TEXT]", "open the conversation with USER (and send TEXT)"],
  ["/group create NAME MEMBER…", "create a group you own"],
  ["/group add|remove NAME MEMBER…", "change a group's members (owner only)"],
  ["/members [GROUP]", "list a group's members"],
  ["/accept GROUP, /decline GROUP", "answer an invitation to a group (a / x on it in Groups)"],
  ["/leave [GROUP]", "leave a group (the open one); nothing more from it reaches you"],
  ["/trust USER", "accept USER's changed keys (compare fingerprints first)"],
  ["/verify USER", "mark USER's keys verified after comparing safety numbers with them"],
  ["/fingerprint [USER]", "show your or USER's fingerprint (safety number)"],
  ["/search WORDS…", "find messages; jumps to the newest match (n/N or /search again: older/newer)"],
  ["/devices [revoke ID]", "your devices: id, name, added, last seen, this one marked"],
  ["/file PATH", "send a file to the open conversation (encrypted; resumable; Tab completes PATH)"],
  ["/save [ID]", "save the newest file of the open conversation (or message ID's) here"],
  ["/unread", "jump to the first unread message of the open conversation (Shift-PgUp)"],
  ["/mute, /unmute", "no bell or notification for the open conversation (its messages still show), or again"],
  ["/help", "keys and commands"],
  ["/quit", "leave zmqchat"],
  ["//text", "send a message that starts with /"],
];

/** True when the composer text is a command rather than a message ("//" escapes a leading slash). */
export function isCommand(text: string): boolean {
  return text.startsWith("/") && !text.startsWith("//");
}

function badName(kind: string, name: string | undefined): string | null {
  if (name === undefined || name === "") return `which ${kind}?`;
  return NAME_PATTERN.test(name) ? null : `"${name}" is not a valid ${kind} name`;
}

export function parseCommand(input: string): Command {
  const line = input.trim();
  const [head = "", ...rest] = line.split(/\s+/);
  const word = head.slice(1).toLowerCase();
  switch (word) {
    case "msg":
    case "query":
    case "chat": {
      const user = rest[0];
      const bad = badName("user", user);
      if (bad) return { kind: "invalid", message: `${bad} usage: /msg USER [TEXT]` };
      const after = line.slice(line.indexOf(user!, head.length) + user!.length).trim();
      return { kind: "msg", user: user!, text: after === "" ? null : after };
    }
    case "group": {
      const op = rest[0];
      if (op !== "create" && op !== "add" && op !== "remove") {
        return { kind: "invalid", message: "usage: /group create|add|remove NAME MEMBER…" };
      }
      const name = rest[1];
      const bad = badName("group", name);
      if (bad) return { kind: "invalid", message: `${bad} usage: /group ${op} NAME MEMBER…` };
      const members = rest.slice(2);
      for (const m of members) {
        const b = badName("user", m);
        if (b) return { kind: "invalid", message: b };
      }
      if (op !== "create" && members.length === 0) {
        return { kind: "invalid", message: `/group ${op} needs at least one member` };
      }
      return { kind: "group", op, name: name!, members };
    }
    case "members": {
      const name = rest[0];
      if (name === undefined) return { kind: "members", name: null };
      const bad = badName("group", name);
      return bad ? { kind: "invalid", message: bad } : { kind: "members", name };
    }
    case "accept":
    case "decline":
    case "leave": {
      const name = rest[0];
      if (name === undefined) return { kind: "invite", answer: word, name: null };
      const bad = badName("group", name);
      return bad
        ? { kind: "invalid", message: `${bad} usage: /${word} GROUP` }
        : { kind: "invite", answer: word, name };
    }
    case "trust": {
      const bad = badName("user", rest[0]);
      return bad
        ? { kind: "invalid", message: `${bad} usage: /trust USER` }
        : { kind: "trust", user: rest[0]! };
    }
    case "verify": {
      const bad = badName("user", rest[0]);
      return bad
        ? { kind: "invalid", message: `${bad} usage: /verify USER` }
        : { kind: "verify", user: rest[0]! };
    }
    case "fingerprint":
    case "fp":
    case "whois": {
      const user = rest[0];
      if (user === undefined) return { kind: "fingerprint", user: null };
      const bad = badName("user", user);
      return bad ? { kind: "invalid", message: bad } : { kind: "fingerprint", user };
    }
    case "search":
    case "find": {
      const query = line.slice(head.length).trim();
      if (query === "") return { kind: "invalid", message: "what should I look for? usage: /search WORDS…" };
      if (toMatchQuery(query) === null)
        return { kind: "invalid", message: `nothing to search for in "${query}": type a word` };
      return { kind: "search", query };
    }
    case "unread":
      return { kind: "unread" };
    case "mute":
    case "unmute":
      if (rest.length > 0)
        return {
          kind: "invalid",
          message: `usage: /${word} (the open conversation; zmqchat mute for others)`,
        };
      return { kind: "mute", on: word === "mute" };
    case "devices": {
      if (rest.length === 0) return { kind: "devices", revoke: null };
      if (rest[0] === "revoke" && /^[0-9a-f]{16}$/.test(rest[1] ?? ""))
        return { kind: "devices", revoke: rest[1]! };
      return { kind: "invalid", message: "usage: /devices, or /devices revoke ID (16 hex characters)" };
    }
    case "file":
    case "attach": {
      const path = line.slice(head.length).trim();
      return path === ""
        ? { kind: "invalid", message: "which file? usage: /file PATH" }
        : { kind: "file", path };
    }
    case "save":
      return { kind: "save", id: rest[0] ?? null };
    case "help":
    case "?":
      return { kind: "help" };
    case "quit":
    case "exit":
    case "q":
      return { kind: "quit" };
    default:
      return { kind: "invalid", message: `unknown command ${head}; /help lists them` };
  }
}

/** Parses the new-group prompt: "NAME MEMBER…". */
export function parseGroupPrompt(text: string): Command {
  return parseCommand(`/group create ${text}`);
}
