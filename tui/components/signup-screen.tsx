import { Box, Text } from "ink";
import type { Size } from "../layout.js";
import { useAppState } from "../store.js";

/** First run: pick a user name (or one of the profiles already here), registered on Enter. */
export function SignupScreen({ size }: { size: Size }) {
  const signup = useAppState((s) => s.signup);
  const stackNote = useAppState((s) => s.stackNote);
  const width = Math.min(size.columns, 72);
  const chars = [...signup.editor.text];
  const cursor = [...signup.editor.text.slice(0, signup.editor.cursor)].length;
  return (
    <Box width={size.columns} height={size.rows} alignItems="center" justifyContent="center">
      <Box
        flexDirection="column"
        width={width}
        borderStyle="round"
        borderColor="cyan"
        paddingX={2}
        paddingY={1}
      >
        <Text bold color="cyan">
          Welcome to zmqchat
        </Text>
        <Text dimColor>End-to-end encrypted chat for the terminal.</Text>
        <Text> </Text>
        <Text>Choose your user name (a-z, 0-9, '.', '_', '-'):</Text>
        <Text>
          <Text color="cyan">{"› "}</Text>
          {chars.slice(0, cursor).join("")}
          <Text inverse>{chars[cursor] ?? " "}</Text>
          {chars.slice(cursor + 1).join("")}
        </Text>
        {signup.profiles.length > 0 ? (
          <Text dimColor wrap="wrap">
            Profiles on this machine: {signup.profiles.join(", ")} (type one to use it)
          </Text>
        ) : null}
        <Text> </Text>
        {signup.busy ? <Text color="yellow">{signup.busy}</Text> : null}
        {signup.error ? <Text color="red">{signup.error}</Text> : null}
        {stackNote ? <Text dimColor>{stackNote}</Text> : null}
        <Text dimColor>Enter: continue · Ctrl-C: leave</Text>
      </Box>
    </Box>
  );
}
