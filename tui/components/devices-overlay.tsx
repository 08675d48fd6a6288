import { Box, Text } from "ink";
import { type DevicesOverlay as Devices, deviceRows } from "../devices-view.js";
import { useAppState } from "../store.js";

/** `/devices`: the user's devices over the history pane; Esc, q or Enter closes it. */
export function DevicesOverlay({ width, height }: { width: number; height: number }) {
  const overlay = useAppState((s) => s.overlay);
  if (overlay?.kind !== "devices") return null;
  const rows = deviceRows(overlay as Devices);
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
        Your devices (* this one) — Esc, q or Enter closes
      </Text>
      {rows.slice(0, Math.max(0, height - 4)).map((r) => (
        <Text key={r} wrap="truncate-end" color={r.startsWith("*") ? "cyan" : undefined}>
          {r}
        </Text>
      ))}
      <Text dimColor wrap="truncate-end">
        revoke one: /devices revoke ID
      </Text>
    </Box>
  );
}
