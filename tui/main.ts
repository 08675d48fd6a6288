/** Placeholder until the full-screen UI lands (issue 6). */
export async function runTui(_flags: Record<string, unknown>): Promise<number> {
  process.stderr.write("zmqchat: the full-screen UI is not built yet; see zmqchat --help for the commands\n");
  return 2;
}
