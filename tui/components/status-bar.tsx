import { Box, Text } from "ink";
import { sanitizeBody } from "../../core/text/sanitize.js";
import { keyHint } from "../keymap.js";
import { unreadTotal } from "../state.js";
import { useAppState } from "../store.js";
import { textWidth, truncate } from "../text.js";

const STATE_LOOK = {
  online: { dot: "●", color: "greenBright" },
  connecting: { dot: "◌", color: "yellowBright" },
  offline: { dot: "○", color: "redBright" },
  closed: { dot: "○", color: "redBright" },
} as const;

interface Segment {
  text: string;
  color?: string;
  bold?: boolean;
}

/** Cuts segments to `width` columns and pads the last, so a background colour fills the row. */
function fitSegments(segments: Segment[], width: number): Segment[] {
  const out: Segment[] = [];
  let used = 0;
  for (const s of segments) {
    if (used >= width) break;
    const t = truncate(s.text, width - used);
    out.push({ ...s, text: t });
    used += textWidth(t);
  }
  if (used < width) out.push({ text: " ".repeat(width - used) });
  return out;
}

/** Two rows: notices (or key hints), then who you are, the connection, your fingerprint and counts. */
export function StatusBar({ width }: { width: number }) {
  const notice = useAppState((s) => s.notice);
  const focus = useAppState((s) => s.focus);
  const selected = useAppState((s) => Boolean(s.history?.selected));
  const outbox = useAppState((s) => s.outbox.length);
  const me = useAppState((s) => s.me);
  const connection = useAppState((s) => s.connection);
  const endpoint = useAppState((s) => s.endpoint);
  const fp = useAppState((s) => s.fingerprint);
  const syncing = useAppState((s) => s.syncing);
  const stackNote = useAppState((s) => s.stackNote);
  const keyChanged = useAppState((s) => s.keyChanged);
  const unread = useAppState(unreadTotal);
  const look = STATE_LOOK[connection];
  const shortFp = fp ? fp.split(" ").slice(0, 4).join(" ") : "";
  const segments: Segment[] = [
    { text: ` ${me ?? "?"} `, color: "whiteBright", bold: true },
    { text: `${look.dot} ${connection}`, color: look.color, bold: true },
    // Before the endpoint: what waits to be sent matters more than where it goes.
    ...(outbox > 0 ? [{ text: ` · ${outbox} in the outbox ·`, color: "yellowBright", bold: true }] : []),
    { text: ` ${endpoint}`, color: "white" },
  ];
  if (shortFp) segments.push({ text: ` · fp ${shortFp} …`, color: "white" });
  if (keyChanged.length > 0)
    segments.push({ text: ` · ⚠ keys changed: ${keyChanged.join(", ")}`, color: "redBright", bold: true });
  if (syncing !== null) segments.push({ text: ` · syncing ${syncing}…`, color: "yellowBright" });
  if (unread > 0) segments.push({ text: ` · ${unread} unread`, color: "yellowBright", bold: true });
  if (stackNote) segments.push({ text: ` · ${stackNote}`, color: "white" });
  const noticeColor = notice?.level === "error" ? "red" : notice?.level === "warn" ? "yellow" : "green";
  return (
    <Box flexDirection="column" width={width} height={2}>
      {notice ? (
        <Text color={noticeColor} bold wrap="truncate-end">
          {sanitizeBody(notice.text)}
        </Text>
      ) : (
        <Text dimColor wrap="truncate-end">
          {keyHint(focus, selected)}
        </Text>
      )}
      <Text wrap="truncate-end" backgroundColor="gray">
        {fitSegments(segments, width).map((s, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: segments are positional
          <Text key={i} color={s.color} bold={s.bold}>
            {s.text}
          </Text>
        ))}
      </Text>
    </Box>
  );
}
