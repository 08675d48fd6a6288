import { Box, Text, useApp, useInput, useStdout } from "ink";
import { useEffect, useState } from "react";
import { editorRows } from "../editor.js";
import { globalKey } from "../keymap.js";
import { composerWidthFor, geometry, MIN_COLUMNS, MIN_ROWS, type Size, tooSmall } from "../layout.js";
import { useAppState, useDispatch, useOnExit } from "../store.js";
import { Composer } from "./composer.js";
import { HelpOverlay } from "./help-overlay.js";
import { HistoryPane } from "./history-pane.js";
import { ListPane } from "./list-pane.js";
import { Prompt } from "./prompt.js";
import { SignupScreen } from "./signup-screen.js";
import { StatusBar } from "./status-bar.js";

/** Reads the terminal size (and follows resizes) at the root, and passes it down. */
export function Root() {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState<Size>(read);
  useEffect(() => {
    const onResize = () => setSize({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
    stdout.on("resize", onResize);
    return () => {
      stdout.off("resize", onResize);
    };
  }, [stdout]);
  return <App size={size} />;
}

/** The whole UI for one terminal size: the sign-up screen or the main screen. */
export function App({ size }: { size: Size }) {
  const { exit } = useApp();
  const onExit = useOnExit();
  const phase = useAppState((s) => s.phase);
  useEffect(() => onExit(() => exit()), [onExit, exit]);
  if (tooSmall(size)) return <TooSmall size={size} />;
  return phase === "signup" ? <SignupScreen size={size} /> : <MainScreen size={size} />;
}

function TooSmall({ size }: { size: Size }) {
  const dispatch = useDispatch();
  useInput((input, key) => {
    if (key.ctrl && input === "c") dispatch({ type: "quit" });
  });
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
  const focus = useAppState((s) => s.focus);
  const overlay = useAppState((s) => s.overlay);
  const composer = useAppState((s) => s.composer);
  const composerLines = editorRows(composer, composerWidthFor(size)).length;
  const g = geometry(size, composerLines);
  useEffect(() => {
    dispatch({ type: "layout", width: g.history.width, height: g.history.height });
  }, [dispatch, g.history.width, g.history.height]);
  useInput((input, key) => {
    const a = globalKey({ focus, overlay: overlay?.kind ?? null }, input, key);
    if (a) dispatch(a);
  });
  const free = overlay === null;
  return (
    <Box flexDirection="column" width={size.columns} height={size.rows}>
      <Box flexDirection="row" height={size.rows - g.statusRows}>
        <Box flexDirection="column" width={g.left.width}>
          <ListPane
            pane="contacts"
            width={g.left.width}
            height={g.left.contactsRows}
            active={free && focus === "contacts"}
          />
          <ListPane
            pane="groups"
            width={g.left.width}
            height={g.left.groupsRows}
            active={free && focus === "groups"}
          />
        </Box>
        <Box flexDirection="column" width={g.right.width}>
          {overlay?.kind === "help" ? (
            <HelpOverlay width={g.right.width} height={g.right.historyRows} />
          ) : (
            <HistoryPane
              width={g.right.width}
              height={g.right.historyRows}
              active={free && focus === "history"}
            />
          )}
          {overlay?.kind === "prompt" ? (
            <Prompt width={g.right.width} height={g.right.composerRows} />
          ) : (
            <Composer
              width={g.right.width}
              height={g.right.composerRows}
              active={free && focus === "composer"}
            />
          )}
        </Box>
      </Box>
      <StatusBar width={size.columns} />
    </Box>
  );
}
