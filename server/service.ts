import { verify } from "node:crypto";
import { PublicKeyCache } from "../core/crypto/keys.js";
import { rotationBytes } from "../core/crypto/login.js";
import { type ErrorCode, ZmqchatError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { decodeJson } from "../core/protocol/codec.js";
import { fastSendBody } from "../core/protocol/envelope-check.js";
import { errorFrame, okFrameJson } from "../core/protocol/frames.js";
import { MAX_LIST_PAGE, MAX_REPLY_BYTES, MAX_SYNC_PAGE } from "../core/protocol/limits.js";
import {
  type GroupInfo,
  type GroupNotice,
  type RequestBody,
  type RequestType,
  requestBodies,
  requestFrameSchema,
} from "../core/protocol/schema.js";
import type { Authority, SessionClaims } from "./auth.js";
import { Backups } from "./backups.js";
import { FileService } from "./blobs/files.js";
import { DeviceRegistry } from "./devices.js";
import { EphemeralRelay } from "./ephemeral.js";
import {
  checkGroupSize,
  checkGroupsOwned,
  checkPublicFrame,
  DEFAULT_SERVER_QUOTAS,
  MailboxQuota,
  SenderQuota,
  type ServerQuotas,
} from "./limits.js";
import { namesAfter, takePage } from "./paging.js";
import { SendPath } from "./send.js";
import { SessionManager } from "./sessions.js";
import { sameSet, unique } from "./sets.js";
import type { GroupRecord, Store } from "./store/store.js";
import { toWireError } from "./wire-error.js";

/** The requests anyone may make without a session. */
const PUBLIC_TYPES = new Set([
  "register",
  "challenge",
  "login",
  "ping",
  "backup.get",
  "backup.params",
  "link.get",
  "devices.rekey.get",
]);

/** Public requests that still look at a session when one comes with them. */
const OPTIONAL_SESSION = new Set(["backup.get"]);

export interface Publisher {
  publish(topic: string, frame: Uint8Array): void;
}

export interface ServiceMetrics {
  request(type: string, outcome: string, seconds: number): void;
  stored(count: number): void;
  published(count: number): void;
  /** A request refused by a quota of server/limits.ts. */
  limited?(limit: string): void;
}

const noMetrics: ServiceMetrics = { request() {}, stored() {}, published() {} };

type Handler<T extends RequestType> = (
  body: RequestBody<T>,
  user: string | null,
  session: SessionClaims | null,
) => Promise<string>;

/**
 * The chat service: one request frame in, one reply frame out. Stateless apart from the
 * store: any server can answer any request. Never throws; every failure becomes an error reply.
 */
export class ChatService {
  private readonly handlers: { [T in RequestType]: Handler<T> };
  private readonly sessions: SessionManager;
  /** Typing and presence signals: relayed live, never stored (ephemeral.ts). */
  private readonly ephemeral: EphemeralRelay;
  private readonly backups: Backups;
  private readonly sendPath: SendPath;
  private readonly devices: DeviceRegistry;

  constructor(
    private readonly store: Store,
    private readonly auth: Authority,
    private readonly publisher: Publisher,
    private readonly log: Logger,
    private readonly metrics: ServiceMetrics = noMetrics,
    private readonly quotas: ServerQuotas = DEFAULT_SERVER_QUOTAS,
    /** Attachments (server/blobs/files.ts); without a blob store, file requests are refused. */
    files: FileService = new FileService(null, store),
  ) {
    this.senderQuota = new SenderQuota(quotas);
    this.mailboxQuota = new MailboxQuota(quotas, (owner) => this.store.mailboxSize(owner));
    this.sessions = new SessionManager(auth, store);
    this.backups = new Backups(store);
    this.devices = new DeviceRegistry(store, auth, this.sessions);
    this.ephemeral = new EphemeralRelay(store, (name) => this.devices.topics(name), publisher);
    this.sendPath = new SendPath({
      store,
      deliveryTopics: (owner) => this.devices.topics(owner),
      publish: (topic, frame) => publisher.publish(topic, frame),
      senderQuota: this.senderQuota,
      mailboxQuota: this.mailboxQuota,
      limit: (name, check) => this.limit(name, check),
      limited: (name) => this.metrics.limited?.(name),
      stored: (n) => metrics.stored(n),
      published: (n) => metrics.published(n),
    });
    this.handlers = {
      hello: async () => this.refuse("bad_request", "hello is answered by the balancer"),
      ping: async () => ok({ time: new Date().toISOString() }),
      register: (b) => this.register(b),
      challenge: (b) => this.challenge(b),
      login: (b) => this.login(b),
      users: (b, u) => this.users(b, needUser(u)),
      "group.create": (b, u) => this.groupCreate(b, needUser(u)),
      "group.add": (b, u) => this.groupChange(b.name, b.members, "add", needUser(u)),
      "group.remove": (b, u) => this.groupChange(b.name, b.members, "remove", needUser(u)),
      "group.info": (b, u) => this.groupInfo(b, needUser(u)),
      "group.accept": (b, u) => this.groupAnswer(b.name, needUser(u), "accept"),
      "group.decline": (b, u) => this.groupAnswer(b.name, needUser(u), "decline"),
      "group.leave": (b, u) => this.groupLeave(b.name, needUser(u)),
      groups: (b, u) => this.groups(b, needUser(u)),
      send: (b, u) => this.sendPath.send(b.envelope, needUser(u)),
      "send.many": (b, u) => this.sendPath.sendMany(b.envelopes, needUser(u)),
      sync: (b, u) => this.sync(b, needUser(u)),
      "keys.rotate": (b, u) => this.rotate(b, needUser(u)),
      "keys.history": async (b, u) => {
        needUser(u);
        const chain = await this.store.keyHistory(b.name);
        if (chain.length === 0) this.refuse("not_found", `no user named ${b.name}`);
        return ok({ name: b.name, chain });
      },
      "backup.put": async (b, u) => {
        await this.backups.put(needUser(u), b.blob, b.verifier);
        return ok({ stored: true });
      },
      "backup.get": async (b, u) => ok({ blob: await this.backups.get(b.name, u, b.proof) }),
      "backup.params": async (b) => ok(await this.backups.params(b.name)),
      "session.renew": async (_b, _u, c) => ok(this.sessions.renew(needSession(c))),
      logout: async (b, _u, c) => {
        await this.sessions.logout(needSession(c), b.all ?? false);
        return ok({ ended: true });
      },
      signal: async (b, u) => ok(await this.ephemeral.relay(b, needUser(u))),
      "devices.list": async (_b, _u, c) => ok(await this.devices.list(needSession(c))),
      "devices.hello": async (b, _u, c) => ok(await this.devices.hello(needSession(c), b)),
      "devices.revoke": async (b, _u, c) => ok(await this.devices.revoke(needSession(c), b.id)),
      "devices.rekey.put": async (b, _u, c) => ok(await this.devices.rekeyPut(needSession(c), b)),
      "devices.rekey.get": async (b) => ok(await this.devices.rekeyGet(b)),
      "link.put": async (b, _u, c) => ok(await this.devices.linkPut(needSession(c), b)),
      "link.get": async (b) => ok(await this.devices.linkGet(b)),
      "file.init": async (b, u) => ok(await files.init(b, needUser(u))),
      "file.put": async (b, u) => ok(await files.put(b, needUser(u))),
      "file.done": async (b, u) => ok(await files.done(b, needUser(u))),
      "file.get": async (b, u) => ok(await files.get(b, needUser(u))),
      "file.delete": async (b, u) => ok(await files.delete(b, needUser(u))),
    };
  }

  private readonly senderQuota: SenderQuota;
  private readonly mailboxQuota: MailboxQuota;

  /** Handles one raw frame and returns the raw reply. */
  async handle(frame: Buffer): Promise<Buffer> {
    const started = performance.now();
    let id: string | null = null;
    let type = "invalid";
    try {
      const raw = decodeJson(frame);
      if (raw && typeof raw === "object" && typeof (raw as { id?: unknown }).id === "string") {
        id = (raw as { id: string }).id.slice(0, 64);
      }
      const parsed = requestFrameSchema.safeParse(raw);
      if (!parsed.success) throw new ZmqchatError("bad_request", describeZod(parsed.error));
      type = parsed.data.type;
      // The send path's bodies are checked by hand (envelope-check.ts); anything in doubt goes to the schema.
      const fast = fastSendBody(type, parsed.data.body);
      const body = fast
        ? { success: true as const, data: fast }
        : requestBodies[parsed.data.type].safeParse(parsed.data.body);
      if (!body.success) throw new ZmqchatError("bad_request", `${type}: ${describeZod(body.error)}`);
      const request = { id: parsed.data.id, type, body: parsed.data.body, proof: parsed.data.pop };
      const claims = !PUBLIC_TYPES.has(type)
        ? await this.sessions.check(parsed.data.session, request)
        : OPTIONAL_SESSION.has(type) && parsed.data.session
          ? await this.sessions.check(parsed.data.session, request).catch(() => null)
          : null;
      const user = claims?.name ?? null;
      if (PUBLIC_TYPES.has(type)) this.limit("public_frame", () => checkPublicFrame(type, frame.length));
      const handler = this.handlers[parsed.data.type] as Handler<RequestType>;
      const replyBody = await handler(body.data as RequestBody<RequestType>, user, claims);
      const seconds = (performance.now() - started) / 1000;
      this.metrics.request(type, "ok", seconds);
      this.log.debug(
        { requestId: id, type, user, outcome: "ok", ms: Math.round(seconds * 1e4) / 10 },
        "request",
      );
      return okFrameJson(id, replyBody);
    } catch (err) {
      const e = toWireError(err);
      if (e.code === "internal") this.log.error({ err, type, requestId: id }, "request failed");
      else this.log.debug({ requestId: id, type, outcome: e.code, message: e.message }, "request refused");
      this.metrics.request(type, e.code, (performance.now() - started) / 1000);
      return errorFrame(id, e);
    }
  }

  /** Runs a quota check, counting a refusal in /metrics under `name`. */
  private limit(name: string, check: () => void): void {
    try {
      check();
    } catch (err) {
      this.metrics.limited?.(name);
      throw err;
    }
  }

  private refuse(code: ErrorCode, message: string): never {
    throw new ZmqchatError(code, message);
  }

  private async register(b: RequestBody<"register">): Promise<string> {
    const r = await this.store.registerUser({ name: b.name, keys: b.keys });
    if (!r.created && (r.user.keys.sign !== b.keys.sign || r.user.keys.enc !== b.keys.enc)) {
      this.refuse("conflict", `the name ${b.name} is taken`);
    }
    return ok({ created: r.created });
  }

  private async challenge(b: RequestBody<"challenge">): Promise<string> {
    const [u] = await this.store.getUsers([b.name]);
    if (!u) this.refuse("not_found", `no user named ${b.name}; register first`);
    return ok(this.auth.challenge(b.name));
  }

  private async login(b: RequestBody<"login">): Promise<string> {
    const [u] = await this.store.getUsers([b.name]);
    if (!u) this.refuse("not_found", `no user named ${b.name}; register first`);
    const session = await this.sessions.login(b, u.keys.sign);
    await this.devices.admit(b.name, b.device ?? "-");
    return ok(session);
  }

  /** New keys for a name, signed by the keys it holds now. */
  private async rotate(b: RequestBody<"keys.rotate">, user: string): Promise<string> {
    const [current] = await this.store.getUsers([user]);
    if (!current) this.refuse("not_found", `no user named ${user}`);
    let good = false;
    try {
      good = verify(
        null,
        rotationBytes(user, current.keys, b.keys),
        this.keyCache.signKey(current.keys.sign),
        Buffer.from(b.sig, "base64url"),
      );
    } catch {
      good = false;
    }
    if (!good) this.refuse("unauthorized", "the key rotation is not signed by the current key");
    if (
      b.sigNew !== undefined &&
      !this.signedBy(rotationBytes(user, current.keys, b.keys), b.keys.sign, b.sigNew)
    )
      this.refuse("bad_request", "the key rotation's second signature is not by the new key");
    const proof = { sig: b.sig, sigNew: b.sigNew ?? null };
    if (!(await this.store.rotateKeys(user, current.keys, b.keys, proof))) {
      this.refuse("conflict", "the keys changed meanwhile; try again");
    }
    await this.sessions.endKeyGeneration(user, current.keys.sign);
    return ok({ rotated: true });
  }

  private readonly keyCache = new PublicKeyCache();

  private signedBy(bytes: Buffer, signKey: string, sig: string): boolean {
    try {
      return verify(null, bytes, this.keyCache.signKey(signKey), Buffer.from(sig, "base64url"));
    } catch {
      return false;
    }
  }

  private async users(b: RequestBody<"users">, _user: string): Promise<string> {
    if (b.names) return ok({ users: await this.store.getUsers(b.names) });
    const users = await this.store.listUsers({ after: b.after, limit: MAX_LIST_PAGE + 1 });
    const page = await takePage(users, (u) => JSON.stringify({ name: u.name, keys: u.keys }));
    return `{"users":[${page.parts.join(",")}],"more":${page.more}}`;
  }

  /** Creates a group owned by the caller; everyone else named is invited, not made a member. */
  private async groupCreate(b: RequestBody<"group.create">, user: string): Promise<string> {
    const wanted = unique([user, ...b.members]);
    this.limit("members_per_group", () => checkGroupSize(this.quotas, b.name, wanted.length));
    await this.requireUsers(wanted);
    const owned = (await this.store.groupsOf(user)).filter((g) => g.owner === user && g.name !== b.name);
    this.limit("groups_per_user", () => checkGroupsOwned(this.quotas, user, owned.length));
    const invited = wanted.filter((m) => m !== user);
    const r = await this.store.createGroup({ name: b.name, owner: user, members: [user], invited });
    if (
      !r.created &&
      (r.group.owner !== user || !sameSet([...r.group.members, ...r.group.invited], wanted))
    ) {
      this.refuse("conflict", `a group named ${b.name} already exists`);
    }
    if (r.created) for (const m of invited) this.notify(r.group, "invited", m, user);
    return ok({ group: await this.groupWithKeys(r.group), created: r.created });
  }

  /** The owner invites (add) or removes members and invitations (remove). */
  private async groupChange(
    name: string,
    names: string[],
    op: "add" | "remove",
    user: string,
  ): Promise<string> {
    const group = await this.requireGroup(name);
    if (group.owner !== user)
      this.refuse("forbidden", `only ${group.owner}, the owner of ${name}, can change its members`);
    let updated: GroupRecord;
    if (op === "add") {
      await this.requireUsers(names);
      const fresh = unique(names).filter((n) => !group.members.includes(n) && !group.invited.includes(n));
      const invited = [...group.invited, ...fresh];
      this.limit("members_per_group", () =>
        checkGroupSize(this.quotas, name, group.members.length + invited.length),
      );
      updated = await this.store.setMembers(name, group.members, invited);
      for (const m of fresh) this.notify(updated, "invited", m, user);
    } else {
      if (names.includes(group.owner)) this.refuse("bad_request", "the owner cannot be removed from a group");
      const missing = names.filter((n) => !group.members.includes(n) && !group.invited.includes(n));
      if (missing.length > 0) this.refuse("not_found", `not members of ${name}: ${missing.join(", ")}`);
      updated = await this.store.setMembers(
        name,
        group.members.filter((m) => !names.includes(m)),
        group.invited.filter((m) => !names.includes(m)),
      );
      // The removed hear of it too: they are no longer on the list the notice goes to.
      for (const m of unique(names)) this.notify(group, "removed", m, user);
    }
    return ok({ group: await this.groupWithKeys(updated) });
  }

  /** An invitee accepts (becomes a member) or declines (the invitation is gone). */
  private async groupAnswer(name: string, user: string, answer: "accept" | "decline"): Promise<string> {
    const group = await this.requireGroup(name);
    if (answer === "accept" && group.members.includes(user)) {
      return ok({ group: await this.groupWithKeys(group) });
    }
    if (!group.invited.includes(user)) this.refuse("not_found", `you have no invitation to ${name}`);
    const invited = group.invited.filter((m) => m !== user);
    if (answer === "decline") {
      await this.store.setMembers(name, group.members, invited);
      this.notify(group, "declined", user, user);
      return ok({ declined: true });
    }
    const updated = await this.store.setMembers(name, [...group.members, user], invited);
    this.notify(updated, "joined", user, user);
    return ok({ group: await this.groupWithKeys(updated) });
  }

  /**
   * A member leaves. The owner cannot: a group always has its owner, who alone changes its
   * members (DESIGN.md); the owner removes the others instead.
   */
  private async groupLeave(name: string, user: string): Promise<string> {
    const group = await this.requireGroup(name);
    if (!group.members.includes(user)) this.refuse("not_found", `you are not a member of ${name}`);
    if (group.owner === user) {
      this.refuse("forbidden", `you own ${name}: the owner cannot leave a group`);
    }
    await this.store.setMembers(
      name,
      group.members.filter((m) => m !== user),
      group.invited,
    );
    this.notify(group, "left", user, user);
    return ok({ left: true });
  }

  /** Tells the group's members and invitees (`group` as it was or is) of a change, on their live topics. */
  private notify(group: GroupRecord, change: GroupNotice["change"], who: string, by: string): void {
    const frame = Buffer.from(
      JSON.stringify({ v: 1, type: "group", group: group.name, change, user: who, by }),
    );
    for (const owner of unique([...group.members, ...group.invited, who])) {
      this.devices.topics(owner).then(
        (topics) => {
          for (const topic of topics) this.publisher.publish(topic, frame);
        },
        (err) => this.log.warn({ err, owner }, "a group notice was not published"),
      );
    }
  }

  private async groupInfo(b: RequestBody<"group.info">, user: string): Promise<string> {
    const group = await this.requireGroup(b.name);
    // An invitee may look before accepting.
    if (!group.members.includes(user) && !group.invited.includes(user))
      this.refuse("forbidden", `you are not a member of ${b.name}`);
    return ok({ group: await this.groupWithKeys(group) });
  }

  /** The caller's groups by name, each with its members' keys, paged by bytes and count. */
  private async groups(b: RequestBody<"groups">, user: string): Promise<string> {
    const groups = namesAfter(await this.store.groupsOf(user), b.after);
    const page = await takePage(groups, async (g) => JSON.stringify(await this.groupWithKeys(g)));
    return `{"groups":[${page.parts.join(",")}],"more":${page.more}}`;
  }

  private async sync(b: RequestBody<"sync">, user: string): Promise<string> {
    // Bounded by bytes as well as by count, so that no mailbox content can make a page pass
    // the frame limit: whatever was sent to a mailbox, it stays readable.
    const page = await this.store.read(user, b.after, Math.min(b.limit, MAX_SYNC_PAGE), MAX_REPLY_BYTES);
    const items = page.items.map(
      (i) => `{"cursor":"${i.cursor}","serverTime":"${i.serverTime}","envelope":${i.envelope}}`,
    );
    return `{"items":[${items.join(",")}],"more":${page.more}}`;
  }

  private async requireUsers(names: string[]): Promise<void> {
    const found = new Set((await this.store.getUsers(unique(names))).map((u) => u.name));
    const missing = unique(names).filter((n) => !found.has(n));
    if (missing.length > 0) this.refuse("not_found", `no such user: ${missing.join(", ")}`);
  }

  private async requireGroup(name: string): Promise<GroupRecord> {
    const g = await this.store.getGroup(name);
    if (!g) this.refuse("not_found", `no group named ${name}`);
    return g;
  }

  private async groupWithKeys(g: GroupRecord): Promise<GroupInfo> {
    const users = await this.store.getUsers(g.members);
    return { name: g.name, owner: g.owner, members: users, invited: g.invited };
  }
}

function ok(body: unknown): string {
  return JSON.stringify(body);
}

function needUser(u: string | null): string {
  if (u === null) throw new ZmqchatError("unauthorized", "log in first");
  return u;
}

function needSession(c: SessionClaims | null): SessionClaims {
  if (c === null) throw new ZmqchatError("unauthorized", "log in first");
  return c;
}

function describeZod(error: { issues: Array<{ path: PropertyKey[]; message: string }> }): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? `${i.path.map(String).join(".")}: ` : ""}${i.message}`)
    .join("; ");
}
