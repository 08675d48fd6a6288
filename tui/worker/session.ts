/**
 * The session: picks or makes the profile (sign-up), signs in, keeps the link up (register,
 * go live, heartbeat, reconnect with back-off), and fetches the user and group lists.
 */

import type { ChatClient } from "../../core/client/client.js";
import { fingerprint } from "../../core/crypto/keys.js";
import { asZmqchatError } from "../../core/errors.js";
import { NAME_PATTERN, NAME_RULE } from "../../core/protocol/limits.js";
import type { WorkerContext } from "./context.js";
import type { Timers } from "./timers.js";

/** A signed-in profile: its client (built by bin/, with whatever transport) and how to close it. */
export interface TuiSession {
  client: ChatClient;
  close(): Promise<void>;
  /**
   * Calls `onChange` when another process may have written the profile's shared cache (see
   * worker/cache-watch.ts); returns the stop function. Without it, the outbox shows only this
   * TUI's own messages until the client next reports on it.
   */
  watchShared?(onChange: () => void): () => void;
}

/** A profile made just now: `discard` removes it again when its name cannot be registered. */
export interface NewSession extends TuiSession {
  discard(): Promise<void>;
}

/** The profiles on this machine, as bin/ provides them (the TUI never builds transports). */
export interface ProfileAccess {
  list(): string[];
  exists(name: string): boolean;
  open(name: string): TuiSession;
  create(name: string): NewSession;
  /**
   * Issue #19: revokes device `id` of the profile `name` with its running client, as
   * `zmqchat devices revoke ID` does (the keys rotate and are saved to the profile; the session
   * then signs in again with them). Returns the new safety number and the devices the keys went to.
   */
  revokeDevice?(
    name: string,
    client: ChatClient,
    id: string,
  ): Promise<{ fingerprint: string; pushed: string[]; unreachable: string[] }>;
  /**
   * Issue #19: takes the keys another device of the user pushed to this one after a revocation
   * (as the CLI's automatic pickup); the new safety number once saved, or null when none waits.
   */
  pickUpKeys?(name: string): Promise<string | null>;
}

export function safeList(p: ProfileAccess): string[] {
  try {
    return p.list();
  } catch {
    return [];
  }
}

export interface SessionOptions {
  profiles: ProfileAccess;
  bell: boolean;
  /** Runs before the first network call (e.g. starts the local stack); `note` goes to the status bar. */
  prepare?: (note: (text: string) => void) => Promise<void>;
  /** Called once a profile is signed in, before the first network call: the rest of the worker starts here. */
  onEnter(session: TuiSession): void;
  /** Called before a session's client closes to sign in again (new keys): what onEnter started stops. */
  onLeave?(session: TuiSession): void;
}

export class Session {
  private current: TuiSession | null = null;
  private ready: Promise<void> = Promise.resolve();
  private registeredP: Promise<void> = Promise.resolve();
  private markRegistered: () => void = () => {};

  constructor(
    private readonly ctx: WorkerContext,
    private readonly timers: Timers,
    private readonly opts: SessionOptions,
  ) {}

  get client(): ChatClient | null {
    return this.current?.client ?? null;
  }

  /** Resolves once the name is known to be registered. */
  registered(): Promise<void> {
    return this.registeredP;
  }

  /** Opens `user`'s profile, signs the user up, or shows the sign-up screen. */
  start(user?: string): void {
    const { prepare, profiles } = this.opts;
    this.ready = prepare
      ? prepare((note) => this.ctx.dispatch({ type: "stack", note })).catch((err) => {
          this.ctx.notice(`could not start the local stack: ${asZmqchatError(err).message}`, "error");
        })
      : Promise.resolve();
    const names = safeList(profiles);
    if (user) {
      if (profiles.exists(user)) this.enter(profiles.open(user));
      else {
        this.ctx.dispatch({ type: "signup/show", profiles: names, name: user });
        this.ctx.track(this.signUp(user));
      }
      return;
    }
    if (names.length === 1) {
      this.enter(profiles.open(names[0]!));
      return;
    }
    this.ctx.dispatch({ type: "signup/show", profiles: names });
  }

  async signUp(name: string): Promise<void> {
    const { dispatch } = this.ctx;
    if (name === "") {
      dispatch({ type: "signup/error", text: "type a name first" });
      return;
    }
    if (!NAME_PATTERN.test(name)) {
      dispatch({ type: "signup/error", text: `"${name}" is not a valid name: ${NAME_RULE}` });
      return;
    }
    if (this.opts.profiles.exists(name)) {
      this.enter(this.opts.profiles.open(name));
      return;
    }
    dispatch({ type: "signup/busy", text: `making keys for ${name} and registering the name…` });
    let s: NewSession;
    try {
      s = this.opts.profiles.create(name);
    } catch (err) {
      dispatch({ type: "signup/error", text: asZmqchatError(err).message });
      return;
    }
    await this.ready;
    try {
      const r = await s.client.register({ timeoutMs: 20_000 });
      if (this.ctx.stopped()) {
        await s.close();
        return;
      }
      this.enter(
        s,
        r.created ? `welcome, ${name}! you are registered` : `${name} was already registered with these keys`,
      );
    } catch (err) {
      await s.discard().catch(() => {});
      const e = asZmqchatError(err);
      const text =
        e.code === "conflict"
          ? `the name ${name} is taken; pick another`
          : e.code === "timeout" || e.code === "unavailable"
            ? `cannot reach the service: ${e.message}`
            : e.message;
      dispatch({ type: "signup/error", text });
    }
  }

  private enter(s: TuiSession, greeting?: string): void {
    this.current = s;
    const c = s.client;
    this.ctx.dispatch({
      type: "session",
      me: c.name,
      fingerprint: fingerprint(c.name, c.publicKeys),
      endpoint: c.endpoint,
      bell: this.opts.bell,
    });
    this.registeredP = new Promise((resolve) => {
      this.markRegistered = resolve;
    });
    this.opts.onEnter(s);
    if (greeting) this.ctx.notice(greeting);
    this.ctx.track(this.connect(c));
  }

  /** Registers (harmless when registered), goes live and keeps the link up; retries while the service is away. */
  private async connect(c: ChatClient): Promise<void> {
    await this.ready;
    for (let attempt = 0; !this.ctx.stopped(); attempt++) {
      try {
        // Harmless when registered; makes a profile whose stack was reset usable again.
        await c.register();
        this.markRegistered();
        await c.goLive();
        c.keepAlive();
        // Contacts see this user online while the TUI runs (none sent when presence is off).
        c.startPresence().catch((err) => this.ctx.log.warn({ err }, "sharing presence failed"));
        await this.refreshLists(c);
        return;
      } catch (err) {
        const e = asZmqchatError(err);
        if (this.ctx.stopped()) return;
        if (e.code !== "timeout" && e.code !== "unavailable") {
          // Keys another device rotated (it revoked one): take those it pushed here and sign in again.
          if ((e.code === "conflict" || e.code === "unauthorized") && (await this.pickUp(c))) return;
          this.ctx.notice(
            e.code === "conflict"
              ? `the name ${c.name} is registered with other keys on ${c.endpoint}`
              : e.message,
            "error",
          );
          return;
        }
        this.ctx.notice(`cannot reach ${c.endpoint}; trying again`, "warn");
        await this.timers.sleep(Math.min(5000, 500 * 2 ** attempt));
      }
    }
  }

  /** Takes keys pushed to this device and signs in again with them; false when none wait. */
  private async pickUp(c: ChatClient): Promise<boolean> {
    const pick = this.opts.profiles.pickUpKeys;
    if (!pick || this.current?.client !== c) return false;
    let fp: string | null;
    try {
      fp = await pick(c.name);
    } catch (err) {
      this.ctx.log.warn({ err }, "taking pushed keys failed");
      return false;
    }
    if (fp === null || this.ctx.stopped()) return false;
    await this.restart(`took the new keys another device of yours pushed here: ${fp}`);
    return true;
  }

  /**
   * Issue #19: revokes another device of this user (the reducer refused this one and asked first),
   * then signs in again with the rotated keys.
   */
  async revokeDevice(id: string): Promise<void> {
    const c = this.client;
    const revoke = this.opts.profiles.revokeDevice;
    if (!c) return;
    if (!revoke) {
      this.ctx.notice(`to revoke ${id}, quit and run: zmqchat devices revoke ${id}`, "warn");
      return;
    }
    await this.ctx.registered();
    const r = await revoke(c.name, c, id);
    const pushed = r.pushed.length > 0 ? `; sent them, sealed, to ${r.pushed.join(", ")}` : "";
    const unreachable =
      r.unreachable.length > 0 ? `; ${r.unreachable.join(", ")} registered no key: link it again` : "";
    await this.restart(`revoked ${id}; your keys rotated (${r.fingerprint})${pushed}${unreachable}`);
  }

  /** Closes the session's client and opens the profile again (its keys as now saved), with `greeting`. */
  private async restart(greeting: string): Promise<void> {
    const s = this.current;
    if (!s || this.ctx.stopped()) return;
    const name = s.client.name;
    this.current = null;
    this.opts.onLeave?.(s);
    await s.close().catch((err) => this.ctx.log.warn({ err }, "closing the old session failed"));
    if (this.ctx.stopped()) return;
    this.enter(this.opts.profiles.open(name), greeting);
  }

  /** Fetches the user and group lists (with invitations) from the service. */
  async refreshLists(c: ChatClient): Promise<void> {
    const [users, groups] = await Promise.all([c.users(), c.groups()]);
    if (this.ctx.stopped()) return;
    const contacts = c.cache.contacts();
    this.ctx.dispatch({
      type: "users",
      names: users.map((u) => u.name),
      keyChanged: contacts.filter((x) => x.pending).map((x) => x.name),
      verified: contacts.filter((x) => x.verified).map((x) => x.name),
    });
    // Muted conversations (`zmqchat mute`, any process of the profile): no bell, no notification.
    this.ctx.dispatch({ type: "muted", convs: c.cache.mutes.list() });
    // Presence as last signalled; an "online" that ran out (its client died) reads as offline now.
    for (const u of users)
      if (u.name !== c.name)
        this.ctx.dispatch({ type: "presence", name: u.name, state: c.presenceOf(u.name) });
    const member = (g: (typeof groups)[number]) => g.members.some((m) => m.name === c.name);
    this.ctx.dispatch({
      type: "groups",
      names: groups.filter(member).map((g) => g.name),
      invites: groups.filter((g) => !member(g)).map((g) => g.name),
    });
  }

  /** Closes the session's client (after `beforeClose` saved what needs the cache). */
  async close(beforeClose: (c: ChatClient) => void): Promise<void> {
    const s = this.current;
    this.current = null;
    if (!s) return;
    beforeClose(s.client);
    await s.close();
  }
}
