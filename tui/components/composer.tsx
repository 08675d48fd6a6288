import { Box, Text } from "ink";
import { editorRows } from "../editor.js";
import { convTitle } from "../state.js";
import { useAppState } from "../store.js";
import { sanitize } from "../text.js";

interface Props {
  width: number;
  height: number;
}

/** Draws editor rows with an inverse-video cursor; shows the rows around the cursor when there are more than fit. */
export function EditorView({
  rows,
  lines,
  focused,
}: {
  rows: ReturnType<typeof editorRows>;
  lines: number;
  focused: boolean;
}) {
  const at = Math.max(
    0,
    rows.findIndex((r) => r.cursorCol >= 0),
  );
  const start = Math.max(0, Math.min(at - lines + 1, rows.length - lines));
  return (
    <>
      {rows.slice(start, start + lines).map((r, i) => {
        if (!focused || r.cursorCol < 0) {
          return (
            // biome-ignore lint/suspicious/noArrayIndexKey: rows are positional
            <Text key={i} wrap="truncate-end">
              {r.text === "" ? " " : r.text}
            </Text>
          );
        }
        const chars = [...r.text];
        let col = 0;
        let idx = 0;
        while (idx < chars.length && col < r.cursorCol) {
          col += chars[idx]!.length > 0 ? 1 : 0;
          idx++;
        }
        const before = chars.slice(0, idx).join("");
        const under = chars[idx] ?? " ";
        const after = chars.slice(idx + 1).join("");
        return (
          // biome-ignore lint/suspicious/noArrayIndexKey: rows are positional
          <Text key={i} wrap="truncate-end">
            {before}
            <Text inverse>{under}</Text>
            {after}
          </Text>
        );
      })}
    </>
  );
}

/** Where messages are written: Enter sends, Alt-Enter or Ctrl-J adds a line, pastes keep their lines. */
export function Composer({ width, height }: Props) {
  const editor = useAppState((s) => s.composer);
  const open = useAppState((s) => s.open);
  const focused = useAppState((s) => s.focus === "composer");
  const compose = useAppState((s) => s.compose);
  const lines = Math.max(1, height - 2 - (compose ? 1 : 0));
  const rows = editorRows(editor, width - 4);
  return (
    <Box
      flexDirection="column"
      width={width}
      height={height}
      borderStyle={focused ? "double" : "round"}
      borderColor={focused ? "cyan" : "gray"}
      paddingX={1}
      overflow="hidden"
    >
      {compose ? (
        <Text wrap="truncate-end" color="cyan">
          {compose.kind === "reply"
            ? `↪ Replying to ${compose.from}: ${sanitize(compose.text)}`
            : "✎ Editing your message"}
          <Text dimColor>
            {compose.kind === "reply" ? "  (Esc: cancel)" : "  (Enter: save · Esc: cancel)"}
          </Text>
        </Text>
      ) : null}
      {editor.text === "" ? (
        <Text wrap="truncate-end">
          {focused ? <Text inverse> </Text> : null}
          <Text dimColor>
            {open
              ? `Message ${convTitle(open)} (Enter sends, Alt-Enter or Ctrl-J: new line, / commands)`
              : "Type /msg USER, or /help (Ctrl-N: new chat)"}
          </Text>
        </Text>
      ) : (
        <EditorView rows={rows} lines={lines} focused={focused} />
      )}
    </Box>
  );
}
