import { Box, Text } from "ink";
import { REACTIONS } from "../message-actions.js";
import { useAppState } from "../store.js";
import { sanitize, truncate } from "../text.js";

/**
 * The emoji picker (+ on a selected message) and the delete question (d), drawn where the
 * composer is, as the Ctrl-N prompt is.
 */
export function ActionOverlay({ width, height }: { width: number; height: number }) {
  const overlay = useAppState((s) => s.overlay);
  if (overlay?.kind !== "react" && overlay?.kind !== "confirm") return null;
  return (
    <Box
      width={width}
      height={height}
      borderStyle="round"
      borderColor={overlay.kind === "confirm" ? "red" : "yellow"}
      paddingX={1}
      overflow="hidden"
    >
      {overlay.kind === "react" ? (
        <Text wrap="truncate-end">
          <Text color="yellow" bold>
            {"React: "}
          </Text>
          {REACTIONS.map((e, i) => (
            <Text key={e} inverse={i === overlay.at}>
              {`${i + 1} ${e} `}
            </Text>
          ))}
          <Text dimColor>{"  ←→ Enter · Esc"}</Text>
        </Text>
      ) : (
        <Text wrap="truncate-end">
          <Text color="red" bold>
            {"Delete for everyone? "}
          </Text>
          {`"${truncate(sanitize(overlay.preview), Math.max(8, width - 46))}"`}
          <Text bold>{"  y: delete · n: keep"}</Text>
        </Text>
      )}
    </Box>
  );
}
