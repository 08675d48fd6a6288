import { verify } from "node:crypto";
import { PublicKeyCache } from "../core/crypto/keys.js";
import { rotationBytes } from "../core/crypto/login.js";
import { type ErrorCode, ZmqchatError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { decodeJson } from "../core/protocol/codec.js";
import { fastSendBody } from "../core/protocol/envelope-check.js";
import { errorFrame, okFrameJson, okFrameParts } from "../core/protocol/frames.js";
import { MAX_LIST_PAGE, MAX_REPLY_BYTES, MAX_SYNC_PAGE } from "../core/protocol/limits.js";
import {
  type RequestBody,
  type RequestType,
  requestBodies,
  requestFrameSchema,
} from "../core/protocol/schema.js";
import type { Authority, SessionClaims } from "./auth.js";
import { Backups } from "./backups.js";
import { FileService } from "./blobs/files.js";
import { DeliveryPublisher } from "./delivery-publisher.js";
import { DeviceRegistry } from "./devices.js";
import { EphemeralRelay } from "./ephemeral.js";
import { GroupService } from "./groups.js";
import {
  checkPublicFrame,
  DEFAULT_SERVER_QUOTAS,
  MailboxQuota,
  SenderQuota,
  type ServerQuotas,
} from "./limits.js";
import { takePage } from "./paging.js";
import { SendPath } from "./send.js";
import { SessionManager } from "./sessions.js";
import type { Store } from "./store/store.js";
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
  publish(topic: string, frame: Uint8Array | string): void;
  /** False when no balancer subscribed to `topic` (core/transport.ts WorkerLink); undefined: cannot tell. */
  subscribed?(topic: string): boolean | undefined;
}

export interface ServiceMetrics {
  request(type: string, outcome: string, seconds: number): void;
  stored(count: number): void;
  published(count: number): void;
  /** A request refused by a quota of server/limits.ts. */
  limited?(limit: string): void;
}

const noMetrics: ServiceMetrics = { request() {}, stored() {}, published() {} };

/** A reply body as JSON text in pieces, written into the frame without joining them first (`okFrameParts`). */
class BodyParts {
  constructor(readonly parts: string[]) {}
}

type Handler<T extends RequestType> = (
  body: RequestBody<T>,
  user: string | null,
  session: SessionClaims | null,
) => Promise<string | BodyParts>;

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
  /** Group requests: roles, changes and their record (groups.ts). */
  private readonly groups: GroupService;

  constructor(
    private readonly store: Store,
    private readonly auth: Authority,
    publisher: Publisher,
    private readonly log: Logger,
    private readonly metrics: ServiceMetrics = noMetrics,
    quotas: ServerQuotas = DEFAULT_SERVER_QUOTAS,
    /** Attachments (server/blobs/files.ts); without a blob store, file requests are refused. */
    files: FileService = new FileService(null, store),
  ) {
    this.senderQuota = new SenderQuota(quotas);
    this.mailboxQuota = new MailboxQuota(quotas, (owner) => this.store.mailboxSize(owner));
    this.sessions = new SessionManager(auth, store);
    this.backups = new Backups(store);
    this.devices = new DeviceRegistry(store, auth, this.sessions);
    this.ephemeral = new EphemeralRelay(store, (name) => this.devices.topics(name), publisher);
    this.groups = new GroupService({
      store,
      quotas,
      log,
      topics: (name) => this.devices.topics(name),
      publish: (topic, frame) => publisher.publish(topic, frame),
      limit: (name, check) => this.limit(name, check),
    });
    const deliveries = new DeliveryPublisher({
      topics: (owner) => this.devices.deliveryTopics(owner),
      publish: (topic, frame) => publisher.publish(topic, frame),
      subscribed: (topic) => publisher.subscribed?.(topic),
      failed: (err, owner) =>
        log.warn({ err, owner }, "a delivery was not published (it stays in the mailbox)"),
    });
    this.sendPath = new SendPath({
      store,
      deliver: (owner, frame, except) => deliveries.deliver(owner, frame, except),
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
      "group.create": (b, u) => this.groups.create(b, needUser(u)),
      "group.add": (b, u) => this.groups.change(b.name, b.members, "add", needUser(u)),
      "group.remove": (b, u) => this.groups.change(b.name, b.members, "remove", needUser(u)),
      "group.info": (b, u) => this.groups.info(b, needUser(u)),
      "group.accept": (b, u) => this.groups.answer(b.name, needUser(u), "accept"),
      "group.decline": (b, u) => this.groups.answer(b.name, needUser(u), "decline"),
      "group.leave": (b, u) => this.groups.leave(b.name, needUser(u)),
      "group.rename": (b, u) => this.groups.rename(b, needUser(u)),
      "group.owner": (b, u) => this.groups.handOver(b, needUser(u)),
      "group.admin": (b, u) => this.groups.admin(b, needUser(u)),
      "group.events": (b, u) => this.groups.events(b, needUser(u)),
      groups: (b, u) => this.groups.list(b, needUser(u)),
      send: (b, u) => this.sendPath.send(b.envelope, needUser(u)),
      "send.many": (b, u, c) =>
        this.sendPath.sendMany(b.envelopes, needUser(u), b.follows, b.quiet ? quietDevice(c) : undefined),
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
      "devices.rename": async (b, _u, c) => ok(await this.devices.rename(needSession(c), b)),
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
      return replyBody instanceof BodyParts ? okFrameParts(id, replyBody.parts) : okFrameJson(id, replyBody);
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
    const session = await this.sessions.login(b, u.keys.sign, (claim) =>
      this.devices.admit(b.name, b.device ?? "-", claim),
    );
    const pipeline = this.sendPath.pipeline;
    // `quiet` is offered where a device has topics of its own (a login with a device id).
    const quiet = b.device !== undefined && b.device !== "-" ? { quiet: true as const } : {};
    return ok(pipeline === undefined ? { ...session, ...quiet } : { ...session, pipeline, ...quiet });
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

  private async sync(b: RequestBody<"sync">, user: string): Promise<BodyParts> {
    // Bounded by bytes as well as by count, so that no mailbox content can make a page pass
    // the frame limit: whatever was sent to a mailbox, it stays readable.
    const page = await this.store.read(user, b.after, Math.min(b.limit, MAX_SYNC_PAGE), MAX_REPLY_BYTES);
    // {"items":[{"cursor":"…","serverTime":"…","envelope":…},…],"more":…}, in pieces.
    const parts: string[] = ['{"items":['];
    page.items.forEach((i, n) => {
      parts.push(n === 0 ? '{"cursor":"' : ',{"cursor":"', i.cursor, '","serverTime":"', i.serverTime);
      parts.push('","envelope":', i.envelope, "}");
    });
    parts.push(`],"more":${page.more}}`);
    return new BodyParts(parts);
  }
}

function ok(body: unknown): string {
  return JSON.stringify(body);
}

function needUser(u: string | null): string {
  if (u === null) throw new ZmqchatError("unauthorized", "log in first");
  return u;
}

/** The device whose own copies a `quiet` send leaves off its topics: none for a session without a device id. */
function quietDevice(c: SessionClaims | null): string | undefined {
  return c && c.device !== "-" ? c.device : undefined;
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
