import type { ChatClient } from "../../core/client/client.js";
import { groupConv } from "../../core/client/conv.js";
import { ZmqchatError } from "../../core/errors.js";
import type { Io } from "../io.js";

/**
 * Checks that a conversation a command reads exists and is yours, so that a typo is an error
 * (exit 5 for an unknown user or group, 4 when you are not a member) instead of an empty,
 * successful answer. A group you have left (or were removed from) still shows what your cache
 * holds of it, with a warning. Offline, nothing can be checked: the caller shows the cache.
 */
export async function checkConversation(
  client: ChatClient,
  io: Pick<Io, "err">,
  target: { user: string } | { group: string },
): Promise<void> {
  try {
    if ("user" in target) {
      if (target.user === client.name) return;
      const found = await client.users([target.user]);
      if (found.length === 0)
        throw new ZmqchatError("not_found", `no user named ${target.user}`, {
          hint: "zmqchat contacts lists the registered users",
        });
      return;
    }
    await client.groupInfo(target.group);
  } catch (err) {
    if (!(err instanceof ZmqchatError)) throw err;
    if (err.code === "timeout" || err.code === "unavailable") return;
    if ("group" in target && err.code === "not_found")
      throw new ZmqchatError("not_found", `no group named ${target.group}`, {
        hint: "zmqchat groups lists your groups",
      });
    if ("group" in target && err.code === "forbidden") {
      if (client.cache.history(groupConv(target.group), 1).length > 0) {
        io.err(`zmqchat: warning: you are not a member of ${target.group} now; showing what you kept`);
        return;
      }
      throw new ZmqchatError("forbidden", `you are not a member of ${target.group}`);
    }
    throw err;
  }
}
