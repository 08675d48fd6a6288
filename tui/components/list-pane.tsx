import { Box, Text } from "ink";
import { useMemo } from "react";
import { type Presence, presenceDot } from "../presence.js";
import { convOf, listOf, type State, type ListPane as Which } from "../state.js";
import { useAppState } from "../store.js";
import { fit, textWidth, truncate } from "../text.js";

interface Props {
  pane: Which;
  width: number;
  height: number;
}

interface Entry {
  name: string;
  unread: number;
  open: boolean;
  warn: boolean;
  /** An invitation not yet answered (Groups only). */
  invited: boolean;
  /** A contact whose keys came only from the server: not compared yet (`/verify USER`). */
  unverified: boolean;
  /** Contacts only: online, offline, or undefined when the contact shares no presence. */
  presence: Presence | undefined;
}

function entriesOf(
  s: Pick<State, "users" | "groups" | "invites" | "convs" | "keyChanged" | "verified" | "open" | "presence">,
  pane: Which,
): Entry[] {
  return listOf(s, pane).map((name) => {
    const conv = convOf(pane, name);
    return {
      name,
      unread: s.convs[conv]?.unread ?? 0,
      open: s.open === conv,
      warn: pane === "contacts" && s.keyChanged.includes(name),
      invited: pane === "groups" && s.invites.includes(name),
      unverified: pane === "contacts" && !s.verified.includes(name),
      presence: pane === "contacts" ? s.presence[name] : undefined,
    };
  });
}

/** Contacts or Groups: names with unread counts and key warnings; the selection follows j/k and arrows. */
export function ListPane({ pane, width, height }: Props) {
  const users = useAppState((s) => s.users);
  const groups = useAppState((s) => s.groups);
  const invites = useAppState((s) => s.invites);
  const convs = useAppState((s) => s.convs);
  const keyChanged = useAppState((s) => s.keyChanged);
  const verified = useAppState((s) => s.verified);
  const open = useAppState((s) => s.open);
  const presence = useAppState((s) => s.presence);
  const list = useMemo(
    () => entriesOf({ users, groups, invites, convs, keyChanged, verified, open, presence }, pane),
    [users, groups, invites, convs, keyChanged, verified, open, presence, pane],
  );
  const selected = useAppState((s) => s.selected[pane]);
  const focused = useAppState((s) => s.focus === pane);
  const inner = width - 2;
  // The dot column shows once someone shares presence.
  const anyPresence = Object.keys(presence).length > 0;
  const rows = Math.max(1, height - 3);
  const sel = selected === null ? -1 : list.findIndex((e) => e.name === selected);
  const start = Math.max(0, Math.min(sel - Math.floor(rows / 2), list.length - rows));
  const shown = list.slice(start, start + rows);
  const unread = list.reduce((n, e) => n + e.unread, 0);
  const pending = list.filter((e) => e.invited).length;
  const title = pane === "contacts" ? "Contacts" : "Groups";
  return (
    <Box
      flexDirection="column"
      width={width}
      height={height}
      borderStyle={focused ? "double" : "round"}
      borderColor={focused ? "cyan" : "gray"}
      overflow="hidden"
    >
      <Text bold color={focused ? "cyan" : undefined} wrap="truncate-end">
        {focused ? `▶ ${title}` : title}
        {unread > 0 ? <Text color="yellow">{` (${unread} new)`}</Text> : null}
        {pending > 0 ? <Text color="magenta">{` ✉ ${pending} invited: a accept, x decline`}</Text> : null}
      </Text>
      {shown.length === 0 ? (
        <Text dimColor wrap="truncate-end">
          {pane === "contacts" ? " no one yet (Ctrl-N)" : " none yet (Ctrl-G)"}
        </Text>
      ) : null}
      {shown.map((e) => {
        const isSel = e.name === selected;
        const badge = e.unread > 0 ? ` ${e.unread > 99 ? "99+" : e.unread}` : "";
        const warn = e.warn ? " ⚠" : e.unverified ? " ?" : e.invited ? " ✉" : "";
        const label = `${e.open ? "▸" : " "}${pane === "groups" ? "#" : ""}${e.name}`;
        const dot = pane === "contacts" && anyPresence ? `${presenceDot(e.presence)} ` : "";
        const room = inner - textWidth(badge) - textWidth(warn) - textWidth(dot);
        return (
          <Text key={e.name} wrap="truncate-end" inverse={isSel && focused} bold={e.open || e.unread > 0}>
            {dot ? <Text color={e.presence === "online" ? "green" : "gray"}>{dot}</Text> : null}
            {fit(truncate(label, room), room)}
            <Text color={e.warn ? "red" : e.invited ? "magenta" : "yellow"}>{warn}</Text>
            <Text color="yellow" bold>
              {badge}
            </Text>
          </Text>
        );
      })}
    </Box>
  );
}
