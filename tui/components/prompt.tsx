import { Box, Text } from "ink";
import { editorRows } from "../editor.js";
import { useAppState } from "../store.js";

const LABELS = {
  chat: "New chat with (user name):",
  group: "New group: NAME MEMBER… (e.g. team bob carol):",
} as const;

/** The one-line dialogs of Ctrl-N and Ctrl-G, drawn where the composer is. */
export function Prompt({ width, height }: { width: number; height: number }) {
  const overlay = useAppState((s) => s.overlay);
  if (overlay?.kind !== "prompt") return null;
  const label = LABELS[overlay.purpose];
  const row = editorRows(overlay.editor, Math.max(4, width - 6 - label.length))[0] ?? {
    text: "",
    cursorCol: 0,
  };
  const chars = [...row.text];
  return (
    <Box
      width={width}
      height={height}
      borderStyle="round"
      borderColor="yellow"
      paddingX={1}
      overflow="hidden"
    >
      <Text wrap="truncate-end">
        <Text color="yellow" bold>
          {label}{" "}
        </Text>
        {chars.slice(0, row.cursorCol).join("")}
        <Text inverse>{chars[row.cursorCol] ?? " "}</Text>
        {chars.slice(row.cursorCol + 1).join("")}
        <Text dimColor>{"   Enter: ok · Esc: cancel"}</Text>
      </Text>
    </Box>
  );
}
