/** Runs the slash commands (`/msg`, `/group`, `/trust`…) parsed by tui/commands.ts. */

import type { ChatClient } from "../../core/client/client.js";
import { groupConv, groupOf, userConv } from "../../core/client/conv.js";
import { listDevices } from "../../core/client/devices.js";
import { searchMessages } from "../../core/client/search.js";
import { fingerprint } from "../../core/crypto/keys.js";
import type { Command } from "../commands.js";
import type { WorkerContext } from "./context.js";
import { saveFileOf, sendFileTo } from "./files.js";

/** How many of the newest matches `/search` steps through. */
const SEARCH_LIMIT = 100;

/** What commands need from the other parts of the worker. */
export interface CommandDeps {
  send(conv: string, text: string): void;
  refreshLists(c: ChatClient): Promise<void>;
}

/** Commands that run locally: they do not wait for the name to be registered. */
const LOCAL = new Set<Command["kind"]>(["help", "quit", "invalid", "search", "unread", "mute"]);

export async function runCommand(ctx: WorkerContext, deps: CommandDeps, cmd: Command): Promise<void> {
  const c = ctx.client();
  if (!c) return;
  if (!LOCAL.has(cmd.kind)) await ctx.registered();
  const { dispatch, notice } = ctx;
  switch (cmd.kind) {
    case "invalid":
      notice(cmd.message, "error");
      return;
    case "help":
      dispatch({ type: "help" });
      return;
    case "unread":
      dispatch({ type: "jumpUnread" });
      return;
    case "mute": {
      const conv = ctx.state().open;
      if (!conv) {
        notice(`open a conversation first: /${cmd.on ? "mute" : "unmute"} acts on the open one`, "error");
        return;
      }
      const name = groupOf(conv) !== null ? `#${groupOf(conv)}` : conv.slice(2);
      const changed = c.cache.mutes.set(conv, cmd.on);
      notice(
        cmd.on
          ? `${changed ? "muted" : "already muted:"} ${name}: its messages still show, without bell or notification (/unmute)`
          : `${changed ? "unmuted" : "not muted:"} ${name}`,
      );
      return;
    }
    case "devices": {
      // `/devices revoke ID` shows the list with ID selected and asks first, as `r` in the list does.
      const r = await listDevices(c);
      dispatch({
        type: "devices",
        devices: r.devices,
        current: r.current,
        ...(cmd.revoke !== null ? { revoke: cmd.revoke } : {}),
      });
      return;
    }
    case "quit":
      dispatch({ type: "quit" });
      return;
    case "msg": {
      if (cmd.user !== c.name && !ctx.state().users.includes(cmd.user)) {
        const found = await c.users([cmd.user]);
        if (found.length === 0) {
          notice(`no user named ${cmd.user}`, "error");
          return;
        }
      }
      dispatch({ type: "open", conv: userConv(cmd.user) });
      if (cmd.text) deps.send(userConv(cmd.user), cmd.text);
      return;
    }
    case "group": {
      if (cmd.op === "create") {
        const r = await c.groupCreate(cmd.name, cmd.members);
        const invited = r.group.invited ?? [];
        const members = `${r.group.members.map((m) => m.name).join(", ")}${invited.length ? `; invited ${invited.join(", ")}` : ""}`;
        notice(r.created ? `created #${cmd.name}: ${members}` : `#${cmd.name} already exists: ${members}`);
        dispatch({ type: "groups", names: [...new Set([...ctx.state().groups, cmd.name])] });
        dispatch({ type: "open", conv: groupConv(cmd.name) });
      } else {
        const g = await c.groupChange(cmd.op, cmd.name, cmd.members);
        const invited = g.invited ?? [];
        notice(
          `#${cmd.name} ${cmd.op === "add" ? "now has" : "is left with"}: ${g.members.map((m) => m.name).join(", ")}${invited.length ? `; invited ${invited.join(", ")}` : ""}`,
        );
      }
      return;
    }
    case "invite": {
      const name = cmd.name ?? groupOf(ctx.state().open);
      if (!name) {
        notice(`which group? /${cmd.answer} GROUP`, "error");
        return;
      }
      if (cmd.answer === "leave") await c.groupLeave(name);
      else await c.groupAnswer(name, cmd.answer);
      notice(
        { accept: `you joined #${name}`, decline: `you declined #${name}`, leave: `you left #${name}` }[
          cmd.answer
        ],
      );
      await deps.refreshLists(c);
      return;
    }
    case "members": {
      const name = cmd.name ?? groupOf(ctx.state().open);
      if (!name) {
        notice("which group? /members GROUP", "error");
        return;
      }
      const g = await c.groupInfo(name);
      const admins = g.admins ?? [];
      const list = g.members
        .map((m) =>
          m.name === g.owner ? `${m.name} (owner)` : admins.includes(m.name) ? `${m.name} (admin)` : m.name,
        )
        .join(", ");
      notice(`#${name}${g.title ? ` "${g.title}"` : ""}: ${list}`);
      return;
    }
    case "trust": {
      if (!c.cache.contact(cmd.user)) await c.users([cmd.user]);
      const contact = c.cache.contact(cmd.user);
      if (!contact) {
        notice(`no user named ${cmd.user}`, "error");
        return;
      }
      if (c.trust(cmd.user)) {
        const now = c.cache.contact(cmd.user)!;
        dispatch({ type: "trusted", name: cmd.user });
        dispatch({ type: "verified", name: cmd.user, verified: now.verified });
        notice(`trusted ${cmd.user}'s new keys; fingerprint ${fingerprint(cmd.user, now.keys)}`);
      } else {
        dispatch({ type: "trusted", name: cmd.user });
        notice(`${cmd.user}'s keys have not changed; nothing to trust`);
      }
      return;
    }
    case "file": {
      const conv = ctx.state().open;
      if (conv === null) notice("open a conversation first, then /file PATH", "error");
      else ctx.track(sendFileTo(ctx, conv, cmd.path));
      return;
    }
    case "save":
      ctx.track(saveFileOf(ctx, ctx.state().open, cmd.id));
      return;
    case "verify": {
      try {
        const r = await c.verifyContact(cmd.user);
        dispatch({ type: "verified", name: cmd.user, verified: true });
        notice(
          `${r.already ? "already verified" : "verified"} ${cmd.user}: ${fingerprint(cmd.user, r.keys)}`,
        );
      } catch (err) {
        notice(err instanceof Error ? err.message : String(err), "error");
      }
      return;
    }
    case "search": {
      const last = ctx.state().search;
      if (last && last.query === cmd.query) {
        dispatch({ type: "searchStep", by: "older" });
        return;
      }
      // The local cache only: it holds every decrypted message, kept current by the live sync.
      const hits = searchMessages(c.cache, cmd.query, { limit: SEARCH_LIMIT });
      if (hits.length === 0) {
        dispatch({ type: "found", query: cmd.query, hits: [] });
        notice(`no messages match "${cmd.query}"`, "warn");
        return;
      }
      dispatch({
        type: "found",
        query: cmd.query,
        hits: hits.map((h) => ({ conv: h.message.conv, id: h.message.id })),
      });
      return;
    }
    case "fingerprint": {
      if (cmd.user === null || cmd.user === c.name) {
        notice(`your fingerprint: ${fingerprint(c.name, c.publicKeys)}`);
        return;
      }
      if (!c.cache.contact(cmd.user)) await c.users([cmd.user]);
      const contact = c.cache.contact(cmd.user);
      if (!contact) {
        notice(`no user named ${cmd.user}`, "error");
        return;
      }
      const pinned = fingerprint(cmd.user, contact.keys);
      notice(
        contact.pending
          ? `${cmd.user}'s new keys (untrusted): ${fingerprint(cmd.user, contact.pending)}; pinned: ${pinned}`
          : `${cmd.user}: ${pinned}`,
        contact.pending ? "warn" : "info",
      );
      return;
    }
  }
}
