import { Box, Text } from "ink";
import { userOf } from "../../core/client/conv.js";
import { type HistoryItem, historyWindow, MARK_CHARS, type Row } from "../history-layout.js";
import { splitMentions } from "../mentions.js";
import { typingLine } from "../presence.js";
import { convTitle } from "../state.js";
import { useAppState } from "../store.js";
import { truncate } from "../text.js";

interface Props {
  width: number;
  height: number;
}

const NAME_COLORS = [
  "green",
  "magenta",
  "blue",
  "yellow",
  "cyan",
  "redBright",
  "greenBright",
  "magentaBright",
];

export function nameColor(name: string): string {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return NAME_COLORS[h % NAME_COLORS.length]!;
}

const MARK_COLORS = {
  pending: "yellow",
  stored: "green",
  delivered: "green",
  read: "cyan",
  failed: "red",
  unverified: "red",
  none: undefined,
} as const;

/**
 * The one-column gutter left of each row: "▶" on the first row of the message a search marked,
 * "›" on the rows of the message selected for an action.
 */
function Gutter({ row, mark, selected }: { row: Row; mark: string | null; selected: string | null }) {
  if (row.kind === "msg" && selected !== null && row.id === selected)
    return (
      <Text color="cyan" bold>
        {row.head ? "»" : "│"}
      </Text>
    );
  const marked = row.kind === "msg" && mark !== null && row.id === mark;
  if (!marked) return <Text> </Text>;
  return (
    <Text color="yellow" bold>
      {row.head ? "▶" : "┃"}
    </Text>
  );
}

/** Body text with `@me` stood out (inverse, bold): a mention of the reader. */
function Body({ text, me }: { text: string; me: string | null }) {
  const parts = me ? splitMentions(text, me) : [text];
  if (parts.length === 1) return <>{text}</>;
  return (
    <>
      {parts.map((p, i) =>
        i % 2 === 1 ? (
          // biome-ignore lint/suspicious/noArrayIndexKey: parts are positional
          <Text key={i} inverse bold color="yellow">
            {p}
          </Text>
        ) : (
          p
        ),
      )}
    </>
  );
}

function RowView({
  row,
  width,
  mark,
  selected,
  me,
}: {
  row: Row;
  width: number;
  mark: string | null;
  selected: string | null;
  me: string | null;
}) {
  if (row.kind === "divider") {
    const label = ` ${row.label} `;
    const side = Math.max(2, Math.floor((width - label.length) / 2));
    return (
      <Text color="redBright" bold wrap="truncate-end">
        {" "}
        {`${"─".repeat(side)}${label}${"─".repeat(side)}`}
      </Text>
    );
  }
  if (row.kind === "system") {
    return (
      <Text dimColor wrap="truncate-end">
        {"  "}
        {row.label}
      </Text>
    );
  }
  if (row.kind === "day") {
    const label = ` ${row.label} `;
    const side = Math.max(2, Math.floor((width - label.length) / 2));
    return (
      <Text dimColor wrap="truncate-end">
        {" "}
        {`${"─".repeat(side)}${label}${"─".repeat(side)}`}
      </Text>
    );
  }
  const toneColor = row.tone === "problem" || row.tone === "failed" ? "red" : undefined;
  const marked = mark !== null && row.id === mark;
  if (!row.head) {
    return (
      <Text wrap="truncate-end">
        <Gutter row={row} mark={mark} selected={selected} />
        {" ".repeat(row.indent)}
        <Text color={toneColor} dimColor={row.tone === "pending"} inverse={marked}>
          <Body text={row.text} me={me} />
        </Text>
      </Text>
    );
  }
  return (
    <Text wrap="truncate-end">
      <Gutter row={row} mark={mark} selected={selected} />
      <Text dimColor>{row.head.time} </Text>
      <Text color={MARK_COLORS[row.head.mark]}>{MARK_CHARS[row.head.mark]} </Text>
      <Text color={nameColor(row.head.from)} bold>
        {row.head.from}
      </Text>
      <Text color={toneColor} dimColor={row.tone === "pending"} inverse={marked}>
        {"  "}
        <Body text={row.text} me={me} />
      </Text>
    </Text>
  );
}

const EMPTY: HistoryItem[] = [];

/** "3 new above": how many messages of others start at the divider. */
function unreadNote(items: readonly HistoryItem[], from: number, me: string | null): string {
  let n = 0;
  for (let k = from; k < items.length; k++) if (items[k]!.from !== me) n++;
  return `${n} new above`;
}

/** The open conversation, newest at the bottom; only the rows in view are laid out and drawn. */
export function HistoryPane({ width, height }: Props) {
  const history = useAppState((s) => s.history);
  const open = useAppState((s) => s.open);
  const focused = useAppState((s) => s.focus === "history");
  const keyChanged = useAppState((s) => s.keyChanged);
  const me = useAppState((s) => s.me);
  const typing = useAppState((s) => (s.open ? s.typing[s.open] : undefined));
  const innerWidth = width - 4;
  const rowsAvail = Math.max(1, height - 3);
  const items = history?.items ?? EMPTY;
  const mark = history?.mark?.id ?? null;
  const selected = history?.selected ?? null;
  const win = historyWindow(items, innerWidth, rowsAvail, history?.scroll ?? 0);
  const other = userOf(open);
  const warn = other !== null && keyChanged.includes(other);
  const notes: string[] = [];
  if (typing && typing.length > 0) notes.push(typingLine(typing));
  if (history?.loading) notes.push("loading…");
  const unreadAt = items.findIndex((i) => i.unreadStart);
  if (unreadAt !== -1 && !win.rows.some((r) => r.kind === "divider"))
    notes.push(`↑ ${unreadNote(items, unreadAt, me)} (Shift-PgUp)`);
  if (win.atTop && history?.complete && items.length > 0) notes.push("(start of conversation)");
  if (win.scroll > 0)
    notes.push(history?.newBelow ? `↓ ${history.newBelow} new below (End)` : "↓ more below (End)");
  const info = notes.length > 0 ? `  ${notes.join("  ")}` : "";
  return (
    <Box
      flexDirection="column"
      width={width}
      height={height}
      borderStyle={focused ? "double" : "round"}
      borderColor={focused ? "cyan" : "gray"}
      paddingRight={1}
      overflow="hidden"
    >
      {/* No left padding: its column is the gutter where a search's "▶" mark goes. */}
      <Text wrap="truncate-end">
        {" "}
        <Text bold color={focused ? "cyan" : undefined}>
          {focused ? "▶ " : ""}
          {open ? convTitle(open) : "zmqchat"}
        </Text>
        {warn ? (
          <Text
            color="red"
            bold
          >{`  ⚠ ${other}'s keys changed: /fingerprint ${other}, then /trust ${other}`}</Text>
        ) : null}
        <Text dimColor>{info}</Text>
      </Text>
      {open === null ? (
        <Box flexDirection="column" paddingLeft={1}>
          <Text dimColor wrap="truncate-end">
            No conversation open.
          </Text>
          <Text dimColor wrap="truncate-end">
            Ctrl-N or /msg USER starts a chat; Enter on a contact or group opens it.
          </Text>
          <Text dimColor wrap="truncate-end">
            ? (outside the composer) or /help shows every key.
          </Text>
        </Box>
      ) : items.length === 0 && !history?.loading ? (
        <Text dimColor wrap="truncate-end">
          {" "}
          {truncate(`No messages with ${convTitle(open)} yet. Say hello!`, innerWidth)}
        </Text>
      ) : (
        win.rows.map((r, i) => (
          // Rows have no stable identity across scrolls; the index within the window is what Ink needs.
          // biome-ignore lint/suspicious/noArrayIndexKey: see above
          <RowView key={i} row={r} width={innerWidth} mark={mark} selected={selected} me={me} />
        ))
      )}
    </Box>
  );
}
