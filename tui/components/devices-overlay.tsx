import { Box, Text } from "ink";
import { type DevicesOverlay as Devices, deviceRows, devicesHint } from "../devices-view.js";
import { useAppState } from "../store.js";

/** `/devices`: the user's devices over the history pane; ↑↓ select, r revokes (asks first); Esc, q or Enter closes. */
export function DevicesOverlay({ width, height }: { width: number; height: number }) {
  const overlay = useAppState((s) => s.overlay);
  if (overlay?.kind !== "devices") return null;
  const o = overlay as Devices;
  const rows = deviceRows(o);
  const at = o.at ?? 0;
  const room = Math.max(0, height - 4);
  const first = Math.max(0, Math.min(at - room + 1, rows.length - room));
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
        Your devices (* this one)
      </Text>
      {rows.slice(first, first + room).map((r, k) => (
        <Text
          key={r}
          wrap="truncate-end"
          inverse={first + k === at}
          color={r.startsWith("*") ? "cyan" : undefined}
        >
          {r}
        </Text>
      ))}
      <Text dimColor={!o.confirm} color={o.confirm ? "red" : undefined} wrap="truncate-end">
        {devicesHint(o)}
      </Text>
    </Box>
  );
}
