import { Box, Text } from "ink";
import { COMMAND_HELP } from "../commands.js";
import { KEY_HELP } from "../keymap.js";

import { fit } from "../text.js";

/** Every key and command, over the history pane; Esc, q, Enter or ? closes it. */
export function HelpOverlay({ width, height }: { width: number; height: number }) {
  const keyWidth = Math.min(30, Math.floor((width - 4) * 0.45));
  const lines: Array<[string, string] | string> = ["Keys", ...KEY_HELP, "Commands", ...COMMAND_HELP];
  return (
    <Box
      flexDirection="column"
      width={width}
      height={height}
      borderStyle="double"
      borderColor="yellow"
      paddingX={1}
      overflow="hidden"
    >
      <Text bold color="yellow" wrap="truncate-end">
        Help — Esc, q or Enter closes
      </Text>
      {lines.slice(0, Math.max(0, height - 3)).map((l) =>
        typeof l === "string" ? (
          <Text key={l} bold underline wrap="truncate-end">
            {l}
          </Text>
        ) : (
          <Text key={l[0]} wrap="truncate-end">
            <Text color="cyan">{fit(l[0], keyWidth)}</Text> {l[1]}
          </Text>
        ),
      )}
    </Box>
  );
}
