import { Box, Text, useApp, useInput, useStdout } from "ink";
import { useEffect, useState } from "react";
import { editorRows } from "../editor.js";
import { routeKey, splitKeys } from "../keymap.js";
import { composerWidthFor, geometry, MIN_COLUMNS, MIN_ROWS, type Size, tooSmall } from "../layout.js";
import { useAppState, useDispatch, useOnExit, useStore } from "../store.js";
import { ActionOverlay } from "./action-overlay.js";
import { Composer } from "./composer.js";
import { DevicesOverlay } from "./devices-overlay.js";
import { HelpOverlay } from "./help-overlay.js";
import { HistoryPane } from "./history-pane.js";
import { ListPane } from "./list-pane.js";
import { Prompt } from "./prompt.js";
import { SignupScreen } from "./signup-screen.js";
import { StatusBar } from "./status-bar.js";

/** Reads the terminal size (and follows resizes) at the root, and passes it down. */
export function Root() {
  const { stdout } = useStdout();
  const [size, setSize] = useState<Size>(() => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 }));
  useEffect(() => {
    const onResize = () => setSize({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
    stdout.on("resize", onResize);
    return () => {
      stdout.off("resize", onResize);
    };
  }, [stdout]);
  return <App size={size} />;
}

/**
 * The whole UI for one terminal size: the sign-up screen or the main screen. Keys arrive here
 * and go, through the pure keymap, to whatever has focus when they arrive.
 */
export function App({ size }: { size: Size }) {
  const { exit } = useApp();
  const onExit = useOnExit();
  const store = useStore();
  const dispatch = useDispatch();
  const phase = useAppState((s) => s.phase);
  const small = tooSmall(size);
  useEffect(() => onExit(() => exit()), [onExit, exit]);
  useInput((input, key) => {
    for (const k of splitKeys(input, key, store.getState().pasting)) {
      for (const a of routeKey(store.getState(), k.input, k.key, { tooSmall: small })) dispatch(a);
    }
  });
  if (small) return <TooSmall size={size} />;
  return phase === "signup" ? <SignupScreen size={size} /> : <MainScreen size={size} />;
}

function TooSmall({ size }: { size: Size }) {
  return (
    <Box flexDirection="column" width={size.columns} height={size.rows}>
      <Text color="yellow" wrap="wrap">
        The terminal is too small ({size.columns}×{size.rows}).
      </Text>
      <Text wrap="wrap">
        zmqchat needs at least {MIN_COLUMNS}×{MIN_ROWS}. Enlarge the window, or press Ctrl-C to leave.
      </Text>
    </Box>
  );
}

function MainScreen({ size }: { size: Size }) {
  const dispatch = useDispatch();
  const overlay = useAppState((s) => s.overlay);
  const composer = useAppState((s) => s.composer);
  const composing = useAppState((s) => s.compose !== null);
  // A reply or an edit shows what it is about on a line of its own above the text.
  const composerLines = editorRows(composer, composerWidthFor(size)).length + (composing ? 1 : 0);
  const g = geometry(size, composerLines);
  useEffect(() => {
    dispatch({ type: "layout", width: g.history.width, height: g.history.height });
  }, [dispatch, g.history.width, g.history.height]);
  return (
    <Box flexDirection="column" width={size.columns} height={size.rows}>
      <Box flexDirection="row" height={size.rows - g.statusRows}>
        <Box flexDirection="column" width={g.left.width}>
          <ListPane pane="contacts" width={g.left.width} height={g.left.contactsRows} />
          <ListPane pane="groups" width={g.left.width} height={g.left.groupsRows} />
        </Box>
        <Box flexDirection="column" width={g.right.width}>
          {overlay?.kind === "help" ? (
            <HelpOverlay width={g.right.width} height={g.right.historyRows} />
          ) : overlay?.kind === "devices" ? (
            <DevicesOverlay width={g.right.width} height={g.right.historyRows} />
          ) : (
            <HistoryPane width={g.right.width} height={g.right.historyRows} />
          )}
          {overlay?.kind === "prompt" ? (
            <Prompt width={g.right.width} height={g.right.composerRows} />
          ) : overlay?.kind === "react" || overlay?.kind === "confirm" ? (
            <ActionOverlay width={g.right.width} height={g.right.composerRows} />
          ) : (
            <Composer width={g.right.width} height={g.right.composerRows} />
          )}
        </Box>
      </Box>
      <StatusBar width={size.columns} />
    </Box>
  );
}
