import { ZmqchatError } from "../core/errors.js";
import {
  MAX_ENVELOPE_BYTES,
  MAX_TEXT_BYTES,
  MAX_V1_RECIPIENTS,
  WRAPPED_KEY_CHARS,
} from "../core/protocol/limits.js";
import type { Envelope } from "../core/protocol/schema.js";
import type { MailboxQuota, SenderQuota } from "./limits.js";
import { sameSet, unique } from "./sets.js";
import type { AppendInput, AppendResult, GroupRecord, Store } from "./store/store.js";
import { toWireError } from "./wire-error.js";

/** Largest ciphertext (base64url chars) a text of MAX_TEXT_BYTES can seal to, with room for JSON escapes. */
const MAX_CT_CHARS = Math.ceil(((MAX_TEXT_BYTES * 2 + 64 + 16) * 4) / 3);

/** Recipients remembered as registered per server (SendPath.registered); beyond it, forgotten and asked again. */
const REGISTERED_KEPT = 100_000;

/**
 * How many `send.many` requests a client may have in flight when the store can check a
 * predecessor (login reply `pipeline`): enough to hide a round trip behind the next request,
 * few enough that a broken chain costs a short drain.
 */
export const SENDS_IN_FLIGHT = 4;

/** Per-envelope refusals a client sends again (same id) rather than gives up: "not now". */
const NOT_NOW = new Set(["unavailable", "rate_limited"]);

/** What the send path needs of the service around it. */
export interface SendDeps {
  store: Store;
  /** Publishes one delivery frame to `owner`'s live devices but `except` (server/delivery-publisher.ts). */
  deliver(owner: string, frame: string, except?: string): void;
  senderQuota: SenderQuota;
  mailboxQuota: MailboxQuota;
  /** Runs a quota check, counting a refusal in /metrics under `name`. */
  limit(name: string, check: () => void): void;
  limited(name: string): void;
  stored(count: number): void;
  published(count: number): void;
}

/** One envelope that passed every check, ready to be stored. */
interface Checked {
  env: Envelope;
  owners: string[];
  input: AppendInput;
}

/**
 * The send path: `send` (one envelope) and `send.many` (up to MAX_SEND_MANY), the same checks
 * and quotas for each envelope, stored before the acknowledgement, then published once per copy.
 */
export class SendPath {
  constructor(private readonly deps: SendDeps) {}

  /**
   * Names seen registered. Nothing unregisters a name (a key rotation keeps it), so every
   * server may remember this for good without asking the store again: a 1:1 send costs no
   * store read (two InfluxDB queries) for its recipient after the first.
   */
  private readonly registered = new Set<string>();

  /** `send`: the reply body, or a thrown refusal. */
  async send(env: Envelope, user: string): Promise<string> {
    const checked = await this.check(env, user, null);
    const [result] = await this.deps.store.appendMany([checked.input]);
    this.afterStore(checked, result!, true);
    return this.reply(checked, result!, user);
  }

  /** The login reply's `pipeline`: requests in flight a client may have (none offered when the store cannot keep their order). */
  get pipeline(): number | undefined {
    return this.deps.store.appendFollowing ? SENDS_IN_FLIGHT : undefined;
  }

  /**
   * `send.many`: each envelope checked and charged as one `send` (a refusal refuses that
   * envelope only), the accepted ones stored in one store write, one result per envelope in
   * order. A store failure refuses the whole request: nothing of it may be relied on as stored,
   * and the client resends every envelope with the same ids.
   *
   * An envelope refused "not now" (unavailable, rate_limited: the client sends it again) refuses
   * the ones after it the same way, unchecked and uncharged, so none of them lands before it.
   * With `follows` (the id of the sender's envelope this request must come after: the client has
   * several requests in flight) the request keeps the device's order across requests: it is
   * stored only once the sender's own mailbox holds that envelope, checked in the store's write
   * (appendFollowing), and else every envelope is refused as `unavailable`, holding nothing here.
   */
  async sendMany(
    envs: readonly Envelope[],
    user: string,
    follows?: string,
    quietDevice?: string,
  ): Promise<string> {
    const append = this.deps.store.appendFollowing;
    if (follows !== undefined && !append)
      refuse(
        "bad_request",
        "send.many: this server's store cannot keep the order of requests in flight (follows)",
      );
    const parts: string[] = new Array(envs.length);
    const accepted: Array<{ at: number; checked: Checked }> = [];
    // Copies accepted so far per recipient: a batch is held to a mailbox's quota as its sends would be.
    const reserved = new Map<string, number>();
    // One read of each group per request: a batch to one group otherwise read it (and its members) once per envelope.
    const groups = new Map<string, Promise<GroupRecord>>();
    let notNow: string | null = null;
    for (const [at, env] of envs.entries()) {
      if (notNow !== null) {
        parts[at] = refusal(env.id, notNow);
        continue;
      }
      try {
        const checked = await this.check(env, user, reserved, groups);
        for (const o of checked.owners) if (o !== user) reserved.set(o, (reserved.get(o) ?? 0) + 1);
        accepted.push({ at, checked });
      } catch (err) {
        const wire = toWireError(err);
        parts[at] = `{"id":${JSON.stringify(env.id)},"error":${JSON.stringify(wire)}}`;
        if (NOT_NOW.has(wire.code))
          notNow = JSON.stringify({
            code: wire.code,
            message: "an earlier envelope of this request was refused for now; send both again",
            ...(wire.retryAfterMs !== undefined ? { retryAfterMs: wire.retryAfterMs } : {}),
          });
      }
    }
    if (accepted.length > 0) {
      const inputs = accepted.map((a) => a.checked.input);
      const results =
        follows !== undefined && append
          ? await append.call(this.deps.store, { owner: user, id: follows }, inputs)
          : await this.deps.store.appendMany(inputs);
      if (results === null) {
        // The predecessor is not stored (yet, or ever: a refused or bogus id): nothing was stored.
        for (const { at, checked } of accepted) parts[at] = refusal(checked.env.id, NOT_FOLLOWING);
        return `{"results":[${parts.join(",")}]}`;
      }
      // A second envelope with an id already in this batch is its resend: stored once, rung once.
      const rung = new Set<string>();
      for (const [i, { at, checked }] of accepted.entries()) {
        const result = results[i]!;
        this.afterStore(checked, result, !rung.has(checked.env.id), quietDevice);
        rung.add(checked.env.id);
        parts[at] = this.reply(checked, result, user);
      }
    }
    return `{"results":[${parts.join(",")}]}`;
  }

  /** Every check `send` makes, in its order; throws the refusal. `reserved`: copies this batch already holds per mailbox. */
  private async check(
    env: Envelope,
    user: string,
    reserved: ReadonlyMap<string, number> | null,
    groups: Map<string, Promise<GroupRecord>> | null = null,
  ): Promise<Checked> {
    if (env.from !== user) refuse("forbidden", `you are ${user} and cannot send as ${env.from}`);
    if (env.ct.length > MAX_CT_CHARS) refuse("too_large", `the message is over ${MAX_TEXT_BYTES} bytes`);
    if (env.v === 1 && env.keys.length > MAX_V1_RECIPIENTS)
      refuse(
        "too_large",
        `a message to more than ${MAX_V1_RECIPIENTS} recipients must be sealed as envelope v2 (storage linear in members); upgrade zmqchat`,
      );
    if (env.v !== 1 && env.keys.some((k) => k.wk.length !== WRAPPED_KEY_CHARS))
      refuse("bad_request", "a wrapped key has the wrong size");
    const sealedFor = env.keys.map((k) => k.to);
    let owners: string[];
    if (env.to !== null && env.group === null) {
      if (!this.registered.has(env.to)) {
        const [peer] = await this.deps.store.getUsers([env.to]);
        if (!peer) refuse("not_found", `no user named ${env.to}`);
        if (this.registered.size >= REGISTERED_KEPT) this.registered.clear();
        this.registered.add(env.to);
      }
      owners = unique([env.to, user]);
    } else if (env.group !== null && env.to === null) {
      let read = groups?.get(env.group);
      if (!read) {
        read = this.requireGroup(env.group);
        groups?.set(env.group, read);
      }
      const group = await read;
      if (!group.members.includes(user)) refuse("forbidden", `you are not a member of ${env.group}`);
      owners = group.members;
    } else {
      refuse("bad_request", "a message goes to exactly one of a user (to) or a group");
    }
    if (!sameSet(sealedFor, owners)) {
      refuse(
        "conflict",
        "the message is not sealed for exactly the current recipients; fetch them and seal again",
      );
    }
    const parts = envelopeParts(env);
    const text = parts.join(env.keys);
    this.deps.limit("sender_rate", () => this.deps.senderQuota.charge(user, text.length, Date.now()));
    // The sender's own copy never fills a mailbox shut to others: only recipients are checked.
    const recipients = owners.filter((o) => o !== user);
    try {
      await this.deps.mailboxQuota.check(recipients, Date.now(), reserved ?? undefined);
    } catch (err) {
      this.deps.limited("mailbox");
      throw err;
    }
    if (Buffer.byteLength(text) > MAX_ENVELOPE_BYTES)
      refuse("too_large", `the envelope is over ${MAX_ENVELOPE_BYTES} bytes`);
    // From envelope v2 each mailbox keeps only its owner's wrapped key (core/crypto/envelope.ts).
    const copies = new Map<string, string>();
    if (env.v !== 1)
      for (const owner of owners) copies.set(owner, parts.join(env.keys.filter((k) => k.to === owner)));
    return { env, owners, input: { id: env.id, owners, envelope: text, copies } };
  }

  /**
   * Counts what was stored and publishes each copy on its owner's topics (`ring`: false for a
   * repeat in one batch), the sender's own copy not on `quietDevice`'s (it stores it from the reply).
   * The sender is the envelope's `from`: `check` refused any other.
   */
  private afterStore(checked: Checked, result: AppendResult, ring: boolean, quietDevice?: string): void {
    const { owners, input } = checked;
    const sender = checked.env.from;
    this.deps.stored(result.duplicate ? 0 : owners.length);
    if (!result.duplicate) this.deps.mailboxQuota.stored(owners);
    if (!ring) return;
    for (const owner of owners) {
      const place = result.placed.get(owner)!;
      // Handed to the socket as a string: zeromq.js copies a string into the message once, where
      // a Buffer over 128 bytes is sent zero-copy and released through a V8 reference that the
      // I/O thread hands back to the event loop (measured: about a third less publisher CPU).
      const frame = `{"v":1,"type":"deliver","owner":"${owner}","item":{"cursor":"${place.cursor}","serverTime":"${place.serverTime}","envelope":${input.copies?.get(owner) ?? input.envelope}}${prevField(place.prev)}}`;
      this.deps.deliver(owner, frame, owner === sender ? quietDevice : undefined);
    }
    this.deps.published(owners.length);
  }

  /** `send`'s reply body for the sender's own copy. */
  private reply(checked: Checked, result: AppendResult, user: string): string {
    const mine = result.placed.get(user)!;
    return `{"id":"${checked.env.id}","cursor":"${mine.cursor}","serverTime":"${mine.serverTime}","duplicate":${result.duplicate}${prevField(mine.prev)}}`;
  }

  private async requireGroup(name: string): Promise<GroupRecord> {
    const g = await this.deps.store.getGroup(name);
    if (!g) refuse("not_found", `no group named ${name}`);
    return g;
  }
}

/** The refusal of a request whose predecessor (`follows`) is not stored: sent again after it, at once. */
const NOT_FOLLOWING = JSON.stringify({
  code: "unavailable",
  message: "the envelope this request follows is not stored; send it again after that one's reply",
  retryAfterMs: 0,
});

/** One refused envelope of a `send.many` reply, with an error already as JSON. */
function refusal(id: string, error: string): string {
  return `{"id":${JSON.stringify(id)},"error":${error}}`;
}

function refuse(code: ConstructorParameters<typeof ZmqchatError>[0], message: string): never {
  throw new ZmqchatError(code, message);
}

/** The `prev` member of a delivery or a send reply (schema.ts), or nothing when the store cannot tell. */
function prevField(prev: string | null | undefined): string {
  if (prev === undefined) return "";
  return prev === null ? ',"prev":null' : `,"prev":"${prev}"`;
}

/** Serialises an envelope with its fields in schema order, so what is stored is canonical JSON. */
export function serializeEnvelope(env: Envelope): string {
  return envelopeParts(env).join(env.keys);
}

/**
 * An envelope's canonical JSON cut around its wrapped keys: the copies of one envelope (each
 * mailbox keeps only its owner's key, core/crypto/envelope.ts copyFor) differ only there, so the
 * rest is serialised once for all of them.
 */
function envelopeParts(env: Envelope): { join(keys: Envelope["keys"]): string } {
  const head = JSON.stringify({
    v: env.v,
    suite: env.suite,
    id: env.id,
    from: env.from,
    device: env.device,
    to: env.to,
    group: env.group,
    seq: env.seq,
    sentAt: env.sentAt,
    ...(env.v === 3 ? { fromKey: env.fromKey, toKey: env.toKey } : {}),
    nonce: env.nonce,
    ct: env.ct,
    ...(env.v !== 1 ? { kc: env.kc } : {}),
  });
  const front = `${head.slice(0, -1)},"keys":[`;
  // Version 3 has no signature: the wrapped key authenticates the envelope. Version 4's
  // signature covers a batch; its place in the batch follows the signature.
  const back =
    env.v === 3
      ? "]}"
      : env.v === 4
        ? `],"sig":${JSON.stringify(env.sig)},"batch":{"size":${env.batch.size},"index":${env.batch.index},"path":${JSON.stringify(env.batch.path)}}}`
        : `],"sig":${JSON.stringify(env.sig)}}`;
  return {
    join: (keys) =>
      front + keys.map((k) => `{"to":${JSON.stringify(k.to)},"wk":${JSON.stringify(k.wk)}}`).join(",") + back,
  };
}
