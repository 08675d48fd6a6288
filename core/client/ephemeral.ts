import type Database from "better-sqlite3";
import { z } from "zod";
import type { Logger } from "../logger.js";
import {
  type Envelope,
  envelopeSchema,
  type MailboxItem,
  type RequestBody,
  type SignalFrame,
  signalFrameSchema,
} from "../protocol/schema.js";
import { groupConv, userConv } from "./conv.js";
import type { ChatMessage } from "./message.js";

/**
 * Typing and presence (issue 17): ephemeral signals on the live path only, never stored
 * (server/ephemeral.ts relays them). Each signal's content is sealed for its recipients and signed
 * by its sender exactly like a message (an envelope that is never stored), so neither the service
 * nor anyone else can read or forge one; a signal older than SIGNAL_MAX_AGE_MS by its signed time
 * is dropped, so a replay says nothing new.
 *
 * - Typing: `typing(target)` sends at most one signal per conversation every TYPING_EVERY_MS;
 *   receivers emit `{type: "typing", from, conv, until}` and show it until `until` (or until a
 *   message from `from` arrives).
 * - Presence: long-lived clients (TUI, `listen`, the daemon) call `startPresence`: "online" to
 *   every 1:1 contact and group of the cache (at most PRESENCE_PEERS / PRESENCE_GROUPS), again
 *   every PRESENCE_EVERY_MS, valid for PRESENCE_TTL_MS (so a client that dies — heartbeat
 *   expiry — is offline once its last "online" runs out), and "offline" on close. A client that
 *   sees someone come online answers them once with its own presence, so the newcomer learns who
 *   is already there. What arrives is kept in the cache's `presence` table, so `contacts --json`
 *   (another process) shows it: "online", "offline", or null for someone who shares none.
 * - Config `typing: false` / `presence: false`: none sent, none shown.
 */

export const TYPING_EVERY_MS = 3000;
export const TYPING_SHOWN_MS = 6000;
export const PRESENCE_EVERY_MS = 25_000;
export const PRESENCE_TTL_MS = 60_000;
export const PRESENCE_PEERS = 64;
export const PRESENCE_GROUPS = 16;
/** A signal signed longer ago than this is stale (or replayed): dropped. */
export const SIGNAL_MAX_AGE_MS = 30_000;

const payloadSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("typing") }).strict(),
  z
    .object({
      kind: z.literal("presence"),
      state: z.enum(["online", "offline"]),
      ttlMs: z.number().int().min(1000).max(3_600_000),
    })
    .strict(),
]);
type Payload = z.infer<typeof payloadSchema>;

export type PresenceState = "online" | "offline";

export type EphemeralEvent =
  | { type: "typing"; from: string; conv: string; until: string }
  | { type: "presence"; name: string; state: PresenceState };

type Target = { user: string } | { group: string };

/** What the signals need of the client (core/client/client.ts wires them). */
export interface EphemeralHooks {
  me: string;
  online(): boolean;
  /** Seals a never-stored envelope for the target's recipients. */
  seal(target: Target, text: string): Promise<Envelope>;
  /** Verifies and opens an envelope (null: unknown sender, bad signature, not for us). */
  open(item: MailboxItem): ChatMessage | null;
  /** Fetches and pins a user's keys (a group member who never wrote to us yet). */
  learn(name: string): Promise<void>;
  /** True when the user's keys are pinned here. */
  known(name: string): boolean;
  request(body: RequestBody<"signal">, timeoutMs: number): Promise<unknown>;
  emit(e: EphemeralEvent): void;
  /** The cache's conversations, newest first. */
  conversations(): string[];
  log: Logger;
}

/** The cache's record of who shared which presence, until when (see the file header). */
export class PresenceBook {
  private readonly stmts;

  constructor(db: Database.Database) {
    db.exec(
      "CREATE TABLE IF NOT EXISTS presence (name TEXT PRIMARY KEY, state TEXT NOT NULL, at TEXT NOT NULL, until INTEGER NOT NULL)",
    );
    this.stmts = {
      get: db.prepare<[string], { state: PresenceState; at: string; until: number }>(
        "SELECT state, at, until FROM presence WHERE name = ?",
      ),
      put: db.prepare(
        "INSERT INTO presence (name, state, at, until) VALUES (@name, @state, @at, @until) ON CONFLICT(name) DO UPDATE SET state = excluded.state, at = excluded.at, until = excluded.until WHERE excluded.at >= presence.at",
      ),
    };
  }

  /** Records a presence signal signed at `at`; returns the state shown before it. */
  seen(name: string, state: PresenceState, at: string, until: number, now: number): PresenceState | null {
    const before = this.state(name, now);
    this.stmts.put.run({ name, state, at, until });
    return before;
  }

  /** "online" while the last "online" is valid, "offline" once it ran out or after "offline", null: never shared. */
  state(name: string, now: number): PresenceState | null {
    const r = this.stmts.get.get(name);
    if (!r) return null;
    return r.state === "online" && r.until > now ? "online" : "offline";
  }
}

export class EphemeralSignals {
  private readonly typingSent = new Map<string, number>();
  /** Senders whose keys were fetched for a signal: at most once each, so signals cannot make us fetch again and again. */
  private readonly learned = new Set<string>();
  private presenceTimer: NodeJS.Timeout | null = null;
  private announcing = false;

  constructor(
    private readonly hooks: EphemeralHooks,
    private readonly book: PresenceBook,
    private readonly settings: { typing: boolean; presence: boolean },
    private readonly now: () => number = Date.now,
  ) {}

  /** Tells the conversation this user is typing (throttled; nothing when typing signals are off). */
  async typing(target: Target): Promise<void> {
    if (!this.settings.typing || !this.hooks.online()) return;
    const conv = "user" in target ? userConv(target.user) : groupConv(target.group);
    const last = this.typingSent.get(conv) ?? 0;
    if (this.now() - last < TYPING_EVERY_MS) return;
    this.typingSent.set(conv, this.now());
    await this.send(target, { kind: "typing" });
  }

  /**
   * A message went to the conversation: the recipients stop showing "typing" when it lands, so
   * the next key typed there announces typing again at once, not up to TYPING_EVERY_MS later.
   */
  sent(target: Target): void {
    this.typingSent.delete("user" in target ? userConv(target.user) : groupConv(target.group));
  }

  /** Announces "online" now and every PRESENCE_EVERY_MS (long-lived clients only). */
  async startPresence(): Promise<void> {
    if (!this.settings.presence || this.announcing) return;
    this.announcing = true;
    await this.announce("online");
    this.presenceTimer = setInterval(() => {
      void this.announce("online").catch((err) => this.hooks.log.warn({ err }, "presence failed"));
    }, PRESENCE_EVERY_MS);
    this.presenceTimer.unref();
  }

  /** Announces "offline" (on close) when presence was announced. */
  async stopPresence(): Promise<void> {
    if (this.presenceTimer) clearInterval(this.presenceTimer);
    this.presenceTimer = null;
    if (!this.announcing) return;
    this.announcing = false;
    await this.announce("offline", 2000).catch(() => {});
  }

  presenceOf(name: string): PresenceState | null {
    return this.settings.presence ? this.book.state(name, this.now()) : null;
  }

  private targets(): Target[] {
    const convs = this.hooks.conversations();
    const users = convs
      .filter((c) => c.startsWith("u:") && c !== userConv(this.hooks.me))
      .slice(0, PRESENCE_PEERS)
      .map((c) => ({ user: c.slice(2) }));
    const groups = convs
      .filter((c) => c.startsWith("g:"))
      .slice(0, PRESENCE_GROUPS)
      .map((c) => ({ group: c.slice(2) }));
    return [...users, ...groups];
  }

  private async announce(state: PresenceState, timeoutMs = 5000): Promise<void> {
    if (!this.hooks.online()) return;
    for (const t of this.targets()) {
      await this.send(t, { kind: "presence", state, ttlMs: PRESENCE_TTL_MS }, timeoutMs).catch((err) =>
        this.hooks.log.debug({ err }, "a presence signal was not sent"),
      );
    }
  }

  private async send(target: Target, payload: Payload, timeoutMs = 5000): Promise<void> {
    const env = await this.hooks.seal(target, JSON.stringify(payload));
    const sealed = Buffer.from(JSON.stringify(env)).toString("base64url");
    await this.hooks.request(
      { to: "user" in target ? target.user : null, group: "group" in target ? target.group : null, sealed },
      timeoutMs,
    );
  }

  /** A signal frame from the live path: checked, opened, turned into an event (or dropped). */
  receive(raw: unknown): void {
    const f = signalFrameSchema.safeParse(raw);
    if (!f.success || f.data.from === this.hooks.me) return;
    const from = f.data.from;
    // A group member we never heard from: their keys once (a stranger's 1:1 signal is just dropped).
    if (
      !this.hooks.known(from) &&
      f.data.group !== null &&
      !this.learned.has(from) &&
      this.learned.size < 1000
    ) {
      this.learned.add(from);
      this.hooks
        .learn(from)
        .then(() => this.handle(f.data))
        .catch((err) => this.hooks.log.debug({ err }, "a signal's sender could not be looked up"));
      return;
    }
    this.handle(f.data);
  }

  private handle(frame: SignalFrame): void {
    const f = { data: frame };
    const payload = this.openSignal(f.data);
    if (!payload) return;
    const { from, at } = payload;
    const p = payload.payload;
    if (p.kind === "typing") {
      if (!this.settings.typing) return;
      const conv = f.data.group !== null ? groupConv(f.data.group) : userConv(from);
      const until = new Date(Math.min(Date.parse(at), this.now()) + TYPING_SHOWN_MS).toISOString();
      this.hooks.emit({ type: "typing", from, conv, until });
      return;
    }
    if (!this.settings.presence) return;
    const until = p.state === "online" ? Date.parse(at) + p.ttlMs : 0;
    const before = this.book.seen(from, p.state, at, until, this.now());
    if (before !== p.state) this.hooks.emit({ type: "presence", name: from, state: p.state });
    // Someone came online: tell them we are here too (once; they already know when they were online for us).
    if (p.state === "online" && before !== "online" && this.announcing)
      void this.send({ user: from }, { kind: "presence", state: "online", ttlMs: PRESENCE_TTL_MS }).catch(
        (err) => this.hooks.log.debug({ err }, "a presence answer was not sent"),
      );
  }

  private openSignal(f: SignalFrame): { from: string; at: string; payload: Payload } | null {
    let env: Envelope;
    try {
      const parsed = envelopeSchema.safeParse(
        JSON.parse(Buffer.from(f.sealed, "base64url").toString("utf8")),
      );
      if (!parsed.success) return null;
      env = parsed.data;
    } catch {
      return null;
    }
    // The relay's routing must be what the sender signed: no moving a signal to another conversation.
    if (env.from !== f.from || env.to !== f.to || env.group !== f.group) return null;
    const m = this.hooks.open({ cursor: "0", serverTime: new Date(this.now()).toISOString(), envelope: env });
    if (!m?.verified) return null;
    const age = this.now() - Date.parse(m.sentAt);
    if (!(age < SIGNAL_MAX_AGE_MS && age > -SIGNAL_MAX_AGE_MS)) return null;
    try {
      const p = payloadSchema.safeParse(JSON.parse(m.text));
      return p.success ? { from: m.from, at: m.sentAt, payload: p.data } : null;
    } catch {
      return null;
    }
  }
}
