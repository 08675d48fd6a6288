import type { Command } from "commander";
import { withUnread } from "../../core/client/read-state.js";
import { searchMessages, toMatchQuery } from "../../core/client/search.js";
import { ZmqchatError } from "../../core/errors.js";
import { openClient, settingsOf, syncOrWarn } from "../context.js";
import { messageJson, messageLine } from "../format.js";
import type { Io } from "../io.js";
import { checkName } from "./chat.js";
import { checkConversation } from "./target.js";

export interface SearchFlags {
  from?: string;
  group?: string;
  limit: string;
  json?: boolean;
}

/** Searches the local decrypted cache, after fetching what is new (offline: the cache as it is). */
export async function searchCommand(cmd: Command, io: Io, words: string[], opts: SearchFlags): Promise<void> {
  const text = words.join(" ");
  if (toMatchQuery(text) === null)
    throw new ZmqchatError("usage", "search for what? zmqchat search WORDS (letters or digits)");
  const limit = Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1)
    throw new ZmqchatError("usage", "--limit takes a whole number above 0");
  if (opts.from !== undefined) checkName("user", opts.from);
  if (opts.group !== undefined) checkName("group", opts.group);
  const s = openClient(settingsOf(cmd));
  try {
    const online = await syncOrWarn(
      s.client,
      (t) => io.err(`zmqchat: warning: ${t}`),
      "searching the local cache",
    );
    if (online && opts.from !== undefined) await checkConversation(s.client, io, { user: opts.from });
    if (online && opts.group !== undefined) await checkConversation(s.client, io, { group: opts.group });
    const hits = searchMessages(s.client.cache, text, { from: opts.from, group: opts.group, limit });
    // The same fields as history --json, `unread` included (a search marks nothing read).
    const found = withUnread(
      hits.map((h) => h.message),
      s.client.name,
      (conv) => s.client.cache.receipts.readMark(conv),
    );
    for (const m of found) io.out(opts.json ? messageJson(m) : messageLine(m));
    if (hits.length === 0 && !opts.json) io.err("zmqchat: no cached message matches");
  } finally {
    await s.close();
  }
}
