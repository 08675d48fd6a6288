import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { Point } from "@influxdata/influxdb-client";
import { ZmqchatError } from "../../core/errors.js";
import { uuidv7Time } from "../../core/protocol/ids.js";
import { NAME_PATTERN } from "../../core/protocol/limits.js";
import { isoOf, LANES, LaneClock, nowNs } from "./influx/clock.js";
import { InfluxHttpError, rows, type Series, storeError, timeOf, V1Http } from "./influx/http.js";
import { DURATION, duration, durationMs, goDurationMs, ident, nanos, str } from "./influx/influxql.js";
import { RawNumber } from "./influx/raw-json.js";
import {
  type AppendInput,
  type AppendResult,
  appendChars,
  envelopeFor,
  type GroupRecord,
  type KeyLinkRecord,
  type NewGroup,
  type RotationProof,
  type Store,
  type StoredItem,
  type StoreMetrics,
  type UserRecord,
} from "./store.js";

export interface InfluxStoreOptions {
  /** Base URL of InfluxDB's HTTP API, `http(s)://host:port`. */
  url: string;
  db: string;
  /** Retention policy to use; created (or its duration changed) when `retention` is set. Default `zmqchat` with `retention`, else the database's default policy. */
  rp?: string;
  /** Keep data this long (an InfluxQL duration such as `30d`, or `INF`). */
  retention?: string;
  username?: string;
  password?: string;
  token?: string;
  /** Write consistency on Enterprise clusters (`any`, `one`, `quorum`, `all`). */
  consistency?: "any" | "one" | "quorum" | "all";
  /** Create the database when it is missing (InfluxDB 1.x). Default true. */
  createDatabase?: boolean;
  /**
   * The safety window: how long after its timestamp a point is assumed to be visible to every
   * reader (write latency plus clock skew between servers). Reads never hand out a position
   * younger than this until it has passed; claims (names, groups, lanes) are decided after it.
   */
  safetyWindowMs?: number;
  /** How long a write is retried (with backoff) before the callers get `unavailable`. */
  retryForMs?: number;
  /** Most points in one HTTP write. */
  maxBatchPoints?: number;
  /** Most bytes of line protocol in one HTTP write. */
  maxBatchBytes?: number;
  /** How far back a resend's first copy is looked for (also bounded by its UUIDv7 time, see docs). */
  dedupeWindowMs?: number;
  /** Per-request HTTP timeout. */
  timeoutMs?: number;
  /** Lane lease duration (see influx/clock.ts). */
  laneLeaseMs?: number;
}

const DEFAULTS = {
  safetyWindowMs: 500,
  retryForMs: 5_000,
  maxBatchPoints: 2_000,
  maxBatchBytes: 4 * 1024 * 1024,
  dedupeWindowMs: 7 * 24 * 3600_000,
  timeoutMs: 10_000,
  laneLeaseMs: 10 * 60_000,
};

/** Clock skew allowed between a client's UUIDv7 and the server when looking for a resend's first copy. */
const ID_SKEW_MS = 3600_000;

const M = {
  users: "users",
  userKeys: "user_keys",
  backups: "backups",
  groups: "groups",
  memberships: "memberships",
  mailbox: "mailbox",
  lanes: "lanes",
  usedTokens: "used_tokens",
  revocations: "revocations",
} as const;

/** How long before its expiry a one-time token may have been claimed first (challenges live 30 s). */
const ONE_TIME_HORIZON_MS = 3600_000;

const ROTATION_FIELDS = ["from_sign", "from_enc", "sign", "enc", "sig", "sig_new"];

interface Pending {
  input: AppendInput;
  points: number;
  bytes: number;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

interface Plan {
  /** Line protocol, cut into requests of at most maxBatchBytes. */
  chunks: string[];
  results: AppendResult[];
  madeAt: number;
}

interface Claim {
  id: string;
  ts: bigint;
  fields: Record<string, unknown>;
}

/**
 * The production store: InfluxDB through its v1 HTTP API (`/write`, InfluxQL on `/query`).
 * See docs/influx-schema.md for the measurements and for why every step below is safe
 * with several server processes on one database.
 */
export class InfluxStore implements Store {
  private readonly http: V1Http;
  private readonly opts: Required<
    Omit<InfluxStoreOptions, "rp" | "retention" | "username" | "password" | "token">
  > &
    Pick<InfluxStoreOptions, "retention" | "username" | "password" | "token"> & { rp: string | undefined };
  private readonly where: string;
  private readonly holder = randomBytes(8).toString("hex");
  private clock: LaneClock | null = null;
  private laneTimer: NodeJS.Timeout | null = null;
  private queue: Pending[] = [];
  private draining: Promise<void> | null = null;
  /** Lowest timestamp of the batch being written: local reads never pass it until the write ends. */
  private inflightMin: bigint | null = null;
  private state: "new" | "open" | "closed" = "new";
  private initing: Promise<void> | null = null;
  /** Receives batch sizes and failures (set by openStore). */
  metrics: StoreMetrics | null = null;

  constructor(options: InfluxStoreOptions) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.db)) {
      throw new ZmqchatError("usage", `bad InfluxDB database name ${JSON.stringify(options.db)}`, {
        hint: "use 1-64 characters: letters, digits, '_', '.', '-'",
      });
    }
    if (options.retention !== undefined && !DURATION.test(options.retention)) {
      throw new ZmqchatError("usage", `bad retention ${JSON.stringify(options.retention)}`, {
        hint: "use an InfluxQL duration such as 30d, 12h, 4w, or INF",
      });
    }
    const rp = options.rp ?? (options.retention !== undefined ? "zmqchat" : undefined);
    if (rp !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(rp)) {
      throw new ZmqchatError("usage", `bad retention policy name ${JSON.stringify(rp)}`);
    }
    this.opts = {
      ...DEFAULTS,
      createDatabase: true,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
      url: options.url.replace(/\/+$/, ""),
      db: options.db,
      rp,
    } as InfluxStore["opts"];
    this.http = new V1Http({
      url: this.opts.url,
      db: this.opts.db,
      rp,
      username: options.username,
      password: options.password,
      token: options.token,
      consistency: options.consistency,
      timeoutMs: this.opts.timeoutMs,
    });
    this.where = this.http.description;
  }

  /**
   * `influx://HOST[:PORT]/DB` (or `influxs://` for HTTPS) with optional query parameters
   * `retention`, `rp`, `window`, `retry`, `batch`, `create=false`. Credentials come from the
   * environment only: ZMQCHAT_INFLUX_USER / ZMQCHAT_INFLUX_PASSWORD, or ZMQCHAT_INFLUX_TOKEN.
   */
  static fromUrl(url: string, env: NodeJS.ProcessEnv = process.env): InfluxStore {
    let u: URL;
    try {
      u = new URL(url);
    } catch (cause) {
      throw new ZmqchatError("usage", `bad store URL ${url}`, { cause, hint: "use influx://HOST:PORT/DB" });
    }
    if (u.protocol !== "influx:" && u.protocol !== "influxs:") {
      throw new ZmqchatError("usage", `not an InfluxDB store URL: ${url}`, {
        hint: "use influx://HOST:PORT/DB",
      });
    }
    if (u.username || u.password) {
      throw new ZmqchatError("usage", "credentials do not belong in the store URL", {
        hint: "set ZMQCHAT_INFLUX_USER and ZMQCHAT_INFLUX_PASSWORD, or ZMQCHAT_INFLUX_TOKEN",
      });
    }
    const db = decodeURIComponent(u.pathname.replace(/^\/+/, "").replace(/\/+$/, ""));
    if (!db)
      throw new ZmqchatError("usage", `the store URL names no database: ${url}`, {
        hint: "use influx://HOST:PORT/DB",
      });
    const known = new Set(["retention", "rp", "window", "retry", "batch", "create", "timeout"]);
    for (const key of u.searchParams.keys()) {
      if (!known.has(key)) {
        throw new ZmqchatError("usage", `unknown store URL parameter ${key}`, {
          hint: `known: ${[...known].join(", ")}`,
        });
      }
    }
    const ms = (key: string): number | undefined => {
      const v = u.searchParams.get(key);
      if (v === null) return undefined;
      if (!DURATION.test(v) || /^inf$/i.test(v))
        throw new ZmqchatError("usage", `bad ${key}=${v} in the store URL`, { hint: "use e.g. 500ms, 5s" });
      return durationMs(v);
    };
    const batch = u.searchParams.get("batch");
    if (batch !== null && !/^[1-9][0-9]{0,5}$/.test(batch))
      throw new ZmqchatError("usage", `bad batch=${batch} in the store URL`);
    const user = env.ZMQCHAT_INFLUX_USER || undefined;
    const consistency = env.ZMQCHAT_INFLUX_CONSISTENCY || undefined;
    if (consistency !== undefined && !["any", "one", "quorum", "all"].includes(consistency)) {
      throw new ZmqchatError(
        "usage",
        `ZMQCHAT_INFLUX_CONSISTENCY=${consistency} is not any, one, quorum or all`,
      );
    }
    return new InfluxStore({
      ...(consistency !== undefined ? { consistency: consistency as "any" | "one" | "quorum" | "all" } : {}),
      // URL.hostname keeps the brackets of an IPv6 address.
      url: `${u.protocol === "influxs:" ? "https" : "http"}://${u.hostname}:${u.port || "8086"}`,
      db,
      ...(u.searchParams.get("retention") !== null ? { retention: u.searchParams.get("retention")! } : {}),
      ...(u.searchParams.get("rp") !== null ? { rp: u.searchParams.get("rp")! } : {}),
      ...(user !== undefined ? { username: user, password: env.ZMQCHAT_INFLUX_PASSWORD ?? "" } : {}),
      ...(env.ZMQCHAT_INFLUX_TOKEN ? { token: env.ZMQCHAT_INFLUX_TOKEN } : {}),
      ...(ms("window") !== undefined ? { safetyWindowMs: ms("window")! } : {}),
      ...(ms("retry") !== undefined ? { retryForMs: ms("retry")! } : {}),
      ...(ms("timeout") !== undefined ? { timeoutMs: ms("timeout")! } : {}),
      ...(batch !== null ? { maxBatchPoints: Number(batch) } : {}),
      ...(u.searchParams.get("create") === "false" ? { createDatabase: false } : {}),
    });
  }

  // ---------------------------------------------------------------- start-up

  async init(): Promise<void> {
    if (this.state === "open") return;
    if (this.state === "closed") throw new ZmqchatError("unavailable", "the InfluxDB store is closed");
    this.initing ??= this.doInit().catch((err) => {
      this.initing = null;
      throw err;
    });
    await this.initing;
  }

  private async doInit(): Promise<void> {
    await this.retrying("answer /ping", () => this.http.ping());
    const dbs = await this.retrying("list databases", () => this.http.query("SHOW DATABASES", { db: false }));
    const names = (dbs[0] ?? []).flatMap((s) => s.values.map((v) => v[0]));
    if (!names.includes(this.opts.db)) {
      if (!this.opts.createDatabase) {
        throw new ZmqchatError("unavailable", `${this.where}: the database does not exist`, {
          hint: "create it (on InfluxDB 2.x/3.x: a bucket with a DBRP mapping), or drop create=false from the store URL",
        });
      }
      await this.retrying(
        "create the database",
        () => this.http.query(`CREATE DATABASE ${ident(this.opts.db)}`, { db: false }),
        {
          hint: "on InfluxDB 2.x/3.x create the bucket and a DBRP mapping yourself and add create=false to the store URL",
        },
      );
    }
    if (this.opts.rp !== undefined) await this.ensureRetentionPolicy(this.opts.rp);
    await this.leaseLane();
    this.state = "open";
  }

  private async ensureRetentionPolicy(rp: string): Promise<void> {
    const res = await this.retrying("list retention policies", () =>
      this.http.query(`SHOW RETENTION POLICIES ON ${ident(this.opts.db)}`, { db: false }),
    );
    const series = res[0]?.[0];
    const existing = series ? rows(series).find((r) => r.name === rp) : undefined;
    const want = this.opts.retention;
    if (!existing) {
      if (want === undefined) {
        throw new ZmqchatError("unavailable", `${this.where}: no retention policy ${rp}`, {
          hint: "create it, or add retention=DURATION to the store URL so that zmqchat creates it",
        });
      }
      await this.retrying("create the retention policy", () =>
        this.http.query(
          `CREATE RETENTION POLICY ${ident(rp)} ON ${ident(this.opts.db)} DURATION ${duration(want)} REPLICATION 1`,
          {
            db: false,
          },
        ),
      );
    } else if (
      want !== undefined &&
      typeof existing.duration === "string" &&
      goDurationMs(existing.duration) !== durationMs(want)
    ) {
      await this.retrying("change the retention policy", () =>
        this.http.query(
          `ALTER RETENTION POLICY ${ident(rp)} ON ${ident(this.opts.db)} DURATION ${duration(want)}`,
          { db: false },
        ),
      );
    }
  }

  // ---------------------------------------------------------------- lanes

  /**
   * Leases a lane (see influx/clock.ts): write a claim, wait out the safety window, and keep the
   * lane if this holder's claim is the earliest live one. Renewed in the background.
   */
  private async leaseLane(): Promise<void> {
    const lease = BigInt(this.opts.laneLeaseMs) * 1_000_000n;
    const inUse = await this.lanesInUse(lease);
    for (let attempt = 0; attempt < 20; attempt++) {
      const free = Array.from({ length: LANES }, (_, i) => i).filter((l) => !inUse.has(l));
      const lane =
        free.length > 0 ? free[Math.floor(Math.random() * free.length)]! : Math.floor(Math.random() * LANES);
      const ts = await this.writeLaneMark(lane);
      await this.waitPast(ts);
      const owner = await this.laneOwner(lane, lease);
      if (owner === this.holder) {
        if (this.clock) this.clock.lane = lane;
        else this.clock = new LaneClock(lane);
        this.scheduleLaneRenewal(lane);
        return;
      }
      inUse.add(lane);
    }
    throw new ZmqchatError("unavailable", `${this.where}: could not lease a timestamp lane`);
  }

  private scheduleLaneRenewal(lane: number): void {
    if (this.laneTimer) clearInterval(this.laneTimer);
    const lease = BigInt(this.opts.laneLeaseMs) * 1_000_000n;
    this.laneTimer = setInterval(
      () => {
        void (async () => {
          try {
            await this.writeLaneMark(lane);
            if ((await this.laneOwner(lane, lease)) !== this.holder && this.state === "open") {
              // Out of touch for longer than the lease: someone may have taken the lane. Move.
              await this.leaseLane();
            }
          } catch {
            // InfluxDB is away: the next renewal tries again; writes report their own errors.
          }
        })();
      },
      Math.max(1000, Math.floor(this.opts.laneLeaseMs / 5)),
    );
    this.laneTimer.unref();
  }

  private async writeLaneMark(lane: number): Promise<bigint> {
    // A lane mark needs no lane: its series (lane, holder) is this process's own.
    const ts = nowNs();
    const line = new Point(M.lanes)
      .tag("lane", String(lane))
      .tag("holder", this.holder)
      .booleanField("alive", true);
    await this.writeRetrying([line.timestamp(ts.toString()).toLineProtocol()!], "lease a timestamp lane");
    return ts;
  }

  private async lanesInUse(lease: bigint): Promise<Set<number>> {
    return new Set([...(await this.laneHolders(null, lease)).keys()]);
  }

  /** The holder whose live marks on `lane` started earliest within the lease. */
  private async laneOwner(lane: number, lease: bigint): Promise<string | null> {
    const holders = (await this.laneHolders(lane, lease)).get(lane) ?? [];
    let best: { holder: string; since: bigint } | null = null;
    for (const h of holders) {
      if (!best || h.since < best.since || (h.since === best.since && h.holder < best.holder)) best = h;
    }
    return best?.holder ?? null;
  }

  /** Holders per lane with a mark within the lease whose latest mark is not a release. */
  private async laneHolders(
    lane: number | null,
    lease: bigint,
  ): Promise<Map<number, { holder: string; since: bigint }[]>> {
    const which = lane === null ? "" : `"lane" = ${str(String(lane))} AND `;
    const res = await this.queryRetrying(
      `SELECT "alive" FROM ${this.m(M.lanes)} WHERE ${which}time > ${nanos(nowNs() - lease)} GROUP BY "lane", "holder"`,
      "read timestamp lanes",
    );
    const out = new Map<number, { holder: string; since: bigint }[]>();
    for (const s of res[0] ?? []) {
      const rs = rows(s);
      const first = rs[0];
      const holder = s.tags.holder;
      const l = Number(s.tags.lane);
      if (!first || holder === undefined || !Number.isInteger(l) || rs.at(-1)?.alive !== true) continue;
      const list = out.get(l) ?? [];
      list.push({ holder, since: timeOf(first) });
      out.set(l, list);
    }
    return out;
  }

  // ---------------------------------------------------------------- users and groups

  async registerUser(user: UserRecord): Promise<{ created: boolean; user: UserRecord }> {
    this.ready();
    checkName(user.name, "user");
    checkKeys(user.keys);
    const { created, winner } = await this.claim(M.users, user.name, ["sign", "enc"], (p) =>
      p.stringField("sign", user.keys.sign).stringField("enc", user.keys.enc),
    );
    const current = (await this.users([user.name])).get(user.name);
    const keys = current?.keys ?? { sign: String(winner.fields.sign), enc: String(winner.fields.enc) };
    return { created, user: { name: user.name, keys } };
  }

  async getUsers(names: string[]): Promise<UserRecord[]> {
    this.ready();
    const valid = [...new Set(names.filter((n) => NAME_PATTERN.test(n)))];
    if (valid.length === 0) return [];
    const users = await this.users(valid);
    const out: UserRecord[] = [];
    for (const n of names) {
      const u = users.get(n);
      if (u) out.push({ name: u.name, keys: u.keys });
    }
    return out;
  }

  async listUsers(page?: { after?: string; limit: number }): Promise<UserRecord[]> {
    this.ready();
    // InfluxQL cannot order by a tag, so the page is cut here, after the whole claim read.
    const users = await this.users(null);
    const all = [...users.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((u) => ({ name: u.name, keys: u.keys }));
    if (!page) return all;
    const after = page.after;
    return all.filter((u) => after === undefined || u.name > after).slice(0, page.limit);
  }

  /**
   * Compare-and-set of a user's keys without compare-and-set: a rotation claim "from → to",
   * decided like a name (first settled claim from the current keys wins; see users()).
   */
  async rotateKeys(
    name: string,
    from: UserRecord["keys"],
    to: UserRecord["keys"],
    proof?: RotationProof,
  ): Promise<boolean> {
    this.ready();
    checkKeys(from);
    checkKeys(to);
    if (!NAME_PATTERN.test(name)) return false;
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = (await this.users([name])).get(name);
      if (!current || current.keys.sign !== from.sign || current.keys.enc !== from.enc) return false;
      const id = randomBytes(8).toString("hex");
      const ts = this.stamp();
      const point = new Point(M.userKeys)
        .tag("name", name)
        .tag("claim", id)
        .stringField("from_sign", from.sign)
        .stringField("from_enc", from.enc)
        .stringField("sign", to.sign)
        .stringField("enc", to.enc)
        .booleanField("void", false);
      if (proof) point.stringField("sig", proof.sig);
      if (proof?.sigNew) point.stringField("sig_new", proof.sigNew);
      await this.writeRetrying(
        [point.timestamp(ts.toString()).toLineProtocol()!],
        `rotate the keys of ${name}`,
      );
      if (nowNs() > ts + this.windowNs / 2n) {
        await this.withdraw(M.userKeys, name, id);
        continue;
      }
      await this.waitPast(ts);
      return (await this.users([name])).get(name)?.steps.has(id) ?? false;
    }
    throw new ZmqchatError(
      "unavailable",
      `${this.where} is too slow to decide the keys of ${name}; try again`,
    );
  }

  async putBackup(name: string, blob: string): Promise<void> {
    this.ready();
    checkName(name, "user");
    if (typeof blob !== "string") throw new ZmqchatError("bad_request", "a key backup is text");
    const point = new Point(M.backups).tag("name", name).stringField("blob", blob);
    await this.writeRetrying(
      [point.timestamp(this.stamp().toString()).toLineProtocol()!],
      "store a key backup",
    );
  }

  async getBackup(name: string): Promise<string | null> {
    this.ready();
    if (!NAME_PATTERN.test(name)) return null;
    const res = await this.queryRetrying(
      `SELECT "blob" FROM ${this.m(M.backups)} WHERE "name" = ${str(name)} ORDER BY time DESC LIMIT 1`,
      "read a key backup",
    );
    const row = res[0]?.[0] ? rows(res[0][0])[0] : undefined;
    return typeof row?.blob === "string" ? row.blob : null;
  }

  /**
   * First-claim-wins for a one-time token (a login challenge), as for names: every claim is a
   * point with a cluster-unique timestamp (lane clock) in one series; after the safety window,
   * the earliest point for the token names the one holder that may use it. A claim whose write
   * took too long loses (it may be the earliest, yet unseen by a server that already decided):
   * at most one caller ever wins, and a slow one is refused rather than doubled.
   */
  async claimOnce(token: string, expires: number): Promise<boolean> {
    this.ready();
    if (typeof token !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(token))
      throw new ZmqchatError("bad_request", "a one-time token is 1-128 base64url characters");
    const holder = randomBytes(8).toString("hex");
    const ts = this.stamp();
    const point = new Point(M.usedTokens)
      .stringField("token", token)
      .stringField("holder", holder)
      .intField("expires", Math.floor(expires));
    await this.writeRetrying([point.timestamp(ts.toString()).toLineProtocol()!], "use a login challenge");
    if (nowNs() > ts + this.windowNs / 2n) return false;
    await this.waitPast(ts);
    const since = nowNs(Math.floor(expires) - ONE_TIME_HORIZON_MS);
    const res = await this.queryRetrying(
      `SELECT "holder" FROM ${this.m(M.usedTokens)} WHERE "token" = ${str(token)} AND time >= ${nanos(since)} ORDER BY time ASC LIMIT 1`,
      "read a login challenge's use",
    );
    const first = res[0]?.[0] ? rows(res[0][0])[0] : undefined;
    return first?.holder === holder;
  }

  /** A revocation point; resolves after the safety window, when every server reads it. */
  async revokeSessions(name: string, scope: string, before: number): Promise<void> {
    this.ready();
    checkName(name, "user");
    if (typeof scope !== "string" || !/^[*A-Za-z0-9_:.-]{1,80}$/.test(scope))
      throw new ZmqchatError("bad_request", "bad session scope");
    const ts = this.stamp();
    const point = new Point(M.revocations)
      .tag("name", name)
      .tag("scope", scope)
      .intField("before", Math.floor(before));
    await this.writeRetrying([point.timestamp(ts.toString()).toLineProtocol()!], "end sessions");
    await this.waitPast(ts);
  }

  async sessionRevocations(name: string): Promise<Map<string, number>> {
    this.ready();
    const out = new Map<string, number>();
    if (!NAME_PATTERN.test(name)) return out;
    const res = await this.queryRetrying(
      `SELECT max("before") AS "before" FROM ${this.m(M.revocations)} WHERE "name" = ${str(name)} GROUP BY "scope"`,
      "read ended sessions",
    );
    for (const series of res[0] ?? []) {
      const scope = series.tags.scope;
      const before = rows(series)[0]?.before;
      if (scope !== undefined && before instanceof RawNumber) out.set(scope, Number(before.text));
    }
    return out;
  }

  async createGroup(group: NewGroup): Promise<{ created: boolean; group: GroupRecord }> {
    this.ready();
    checkName(group.name, "group");
    checkName(group.owner, "user");
    for (const m of [...group.members, ...(group.invited ?? [])]) checkName(m, "user");
    const { created } = await this.claim(M.groups, group.name, ["owner", "members"], (p) =>
      p
        .stringField("owner", group.owner)
        .stringField("members", encodeMembership(group.members, group.invited ?? [])),
    );
    const current = await this.getGroup(group.name);
    if (!current)
      throw new ZmqchatError("unavailable", `${this.where}: the group ${group.name} vanished after creation`);
    return { created, group: current };
  }

  async setMembers(name: string, members: string[], invited: string[] = []): Promise<GroupRecord> {
    this.ready();
    checkName(name, "group");
    for (const m of [...members, ...invited]) checkName(m, "user");
    const group = await this.getGroup(name);
    if (!group) throw new ZmqchatError("not_found", `no group named ${name}`);
    const ts = this.stamp();
    const line = new Point(M.memberships)
      .tag("group", name)
      .stringField("members", encodeMembership(members, invited));
    await this.writeRetrying([line.timestamp(ts.toString()).toLineProtocol()!], "change a group's members");
    return { ...group, ...parseMembership(encodeMembership(members, invited)) };
  }

  async getGroup(name: string): Promise<GroupRecord | null> {
    this.ready();
    if (!NAME_PATTERN.test(name)) return null;
    return (await this.groups([name])).get(name) ?? null;
  }

  async groupsOf(user: string): Promise<GroupRecord[]> {
    this.ready();
    if (!NAME_PATTERN.test(user)) return [];
    const all = await this.groups(null);
    return [...all.values()]
      .filter((g) => g.members.includes(user) || g.invited.includes(user))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Groups by name (all when `names` is null): the winning creation claim plus the latest member list. */
  private async groups(names: string[] | null): Promise<Map<string, GroupRecord>> {
    const winners = await this.winners(M.groups, names, ["owner", "members"]);
    if (winners.size === 0) return new Map();
    const filter = names ? `WHERE ${names.map((n) => `"group" = ${str(n)}`).join(" OR ")} ` : "";
    const res = await this.queryRetrying(
      `SELECT "members" FROM ${this.m(M.memberships)} ${filter}GROUP BY "group" ORDER BY time DESC LIMIT 1`,
      "read group members",
    );
    const latest = new Map<string, { ts: bigint; members: string }>();
    for (const s of res[0] ?? []) {
      const row = rows(s)[0];
      const g = s.tags.group;
      if (row && g !== undefined && typeof row.members === "string")
        latest.set(g, { ts: timeOf(row), members: row.members });
    }
    const out = new Map<string, GroupRecord>();
    for (const [name, w] of winners) {
      const version = latest.get(name);
      const members = version && version.ts > w.ts ? version.members : String(w.fields.members);
      out.set(name, { name, owner: String(w.fields.owner), ...parseMembership(members) });
    }
    return out;
  }

  /**
   * First-claim-wins without compare-and-set: write a claim point (its own series, tagged with a
   * random claim id, so nothing overwrites it), wait until the safety window has passed its
   * timestamp, read every claim for the name: the earliest (time, claim id) owns it. Every server
   * reads the same claims after the window, so every server names the same winner.
   */
  private async claim(
    measurement: string,
    name: string,
    fields: string[],
    build: (p: Point) => Point,
  ): Promise<{ created: boolean; winner: Claim }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = (await this.claimsOf(measurement, [name], fields)).get(name)?.[0];
      if (before && this.settled(before.ts)) return { created: false, winner: before };
      const id = randomBytes(8).toString("hex");
      const ts = this.stamp();
      const point = build(
        new Point(measurement).tag("name", name).tag("claim", id).booleanField("void", false),
      );
      await this.writeRetrying([point.timestamp(ts.toString()).toLineProtocol()!], `claim the name ${name}`);
      if (nowNs() > ts + this.windowNs / 2n) {
        // The write took so long that another server may already have decided without seeing
        // it: withdraw this claim and try again with a fresh timestamp.
        await this.withdraw(measurement, name, id);
        continue;
      }
      await this.waitPast(ts);
      const winner = (await this.claimsOf(measurement, [name], fields)).get(name)?.[0];
      if (!winner)
        throw new ZmqchatError(
          "unavailable",
          `${this.where}: a claim on ${name} was written but cannot be read back`,
        );
      return { created: winner.id === id, winner };
    }
    throw new ZmqchatError("unavailable", `${this.where} is too slow to decide who owns ${name}; try again`);
  }

  /** Withdraws a claim: a `void` point in the claim's own series. */
  private async withdraw(measurement: string, name: string, id: string): Promise<void> {
    const voided = new Point(measurement).tag("name", name).tag("claim", id).booleanField("void", true);
    await this.writeRetrying(
      [voided.timestamp(this.stamp().toString()).toLineProtocol()!],
      `withdraw a claim on ${name}`,
    );
  }

  /** The settled winning claim of each name (claims younger than the safety window do not count yet). */
  private async winners(
    measurement: string,
    names: string[] | null,
    fields: string[],
  ): Promise<Map<string, Claim>> {
    const all = await this.claimsOf(measurement, names, fields);
    const out = new Map<string, Claim>();
    for (const [name, claims] of all) {
      const first = claims[0];
      if (first && this.settled(first.ts)) out.set(name, first);
    }
    return out;
  }

  /** Live (not withdrawn) claims per name, earliest first. */
  private async claimsOf(
    measurement: string,
    names: string[] | null,
    fields: string[],
  ): Promise<Map<string, Claim[]>> {
    const res = await this.queryRetrying(this.claimStatement(measurement, names, fields), "read claims");
    return parseClaims(res[0] ?? []);
  }

  private claimStatement(measurement: string, names: string[] | null, fields: string[]): string {
    const filter = names ? `WHERE ${names.map((n) => `"name" = ${str(n)}`).join(" OR ")} ` : "";
    const cols = [...fields, "void"].map(ident).join(", ");
    return `SELECT ${cols} FROM ${this.m(measurement)} ${filter}GROUP BY "name", "claim"`;
  }

  /**
   * Users with their current keys: the winning registration, then the key chain. A rotation is
   * a claim "from keys A to keys B"; from the registration on, the earliest settled rotation
   * whose `from` is the current keys (and that is later than them) makes B current, and so on.
   * Claim ids of the rotations that took effect come back too, for rotateKeys.
   */
  async keyHistory(name: string): Promise<KeyLinkRecord[]> {
    this.ready();
    if (!NAME_PATTERN.test(name)) return [];
    return (await this.users([name])).get(name)?.chain ?? [];
  }

  private async users(
    names: string[] | null,
  ): Promise<Map<string, UserRecord & { steps: Set<string>; chain: KeyLinkRecord[] }>> {
    const res = await this.queryRetrying(
      `${this.claimStatement(M.users, names, ["sign", "enc"])}; ${this.claimStatement(M.userKeys, names, ROTATION_FIELDS)}`,
      "read users",
    );
    const registrations = parseClaims(res[0] ?? []);
    const rotations = parseClaims(res[1] ?? []);
    const out = new Map<string, UserRecord & { steps: Set<string>; chain: KeyLinkRecord[] }>();
    const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : null);
    for (const [name, claims] of registrations) {
      const first = claims[0];
      if (!first || !this.settled(first.ts)) continue;
      let keys = { sign: String(first.fields.sign), enc: String(first.fields.enc) };
      let since = first.ts;
      const steps = new Set<string>();
      const chain: KeyLinkRecord[] = [{ keys, sig: null, sigNew: null, at: isoOf(first.ts) }];
      for (const r of rotations.get(name) ?? []) {
        if (!this.settled(r.ts) || r.ts <= since) continue;
        if (r.fields.from_sign !== keys.sign || r.fields.from_enc !== keys.enc) continue;
        keys = { sign: String(r.fields.sign), enc: String(r.fields.enc) };
        since = r.ts;
        steps.add(r.id);
        chain.push({ keys, sig: text(r.fields.sig), sigNew: text(r.fields.sig_new), at: isoOf(r.ts) });
      }
      out.set(name, { name, keys, steps, chain });
    }
    return out;
  }

  // ---------------------------------------------------------------- mailboxes

  append(input: AppendInput): Promise<AppendResult> {
    try {
      this.ready();
      if (typeof input.id !== "string" || input.id.length === 0 || input.id.length > 64) {
        throw new ZmqchatError("bad_request", "a message needs an id");
      }
      if (!Array.isArray(input.owners) || input.owners.length === 0)
        throw new ZmqchatError("bad_request", "a message needs a mailbox");
      for (const o of input.owners) checkName(o, "user");
      if (typeof input.envelope !== "string")
        throw new ZmqchatError("bad_request", "the envelope must be text");
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const owners = new Set(input.owners).size;
      this.queue.push({
        input,
        points: owners,
        bytes: appendChars(input) * 3 + owners * 200,
        resolve,
        reject,
      });
      this.drain();
    });
  }

  async mailboxSize(owner: string): Promise<number> {
    this.ready();
    checkName(owner, "user");
    const res = await this.queryRetrying(
      `SELECT count("id") AS "n" FROM ${this.m(M.mailbox)} WHERE "owner" = ${str(owner)}`,
      "count a mailbox",
    );
    const n = res[0]?.[0] ? rows(res[0][0])[0]?.n : undefined;
    return n instanceof RawNumber ? Number(n.text) : typeof n === "number" ? n : 0;
  }

  async read(
    owner: string,
    after: string | null,
    limit: number,
    maxChars = Number.POSITIVE_INFINITY,
  ): Promise<{ items: StoredItem[]; more: boolean }> {
    this.ready();
    checkName(owner, "user");
    if (after !== null && !/^(0|[1-9][0-9]{0,18})$/.test(after))
      throw new ZmqchatError("bad_request", `bad cursor ${JSON.stringify(after)}`);
    if (!Number.isInteger(limit) || limit < 0)
      throw new ZmqchatError("bad_request", `bad page size ${limit}`);
    // A local batch may finish while the query runs: take its floor from before and after.
    const floorBefore = this.inflightMin;
    const first = await this.page(owner, after, null, limit + 1);
    if (first.length === 0 || limit === 0) return { items: [], more: first.length > 0 };

    // The last position this page may hand out: never at or past a local write still in flight,
    // and never one younger than the safety window until the window has passed, then re-read,
    // so that a point another server stamped earlier but committed later is not jumped over.
    let boundary = (first[Math.min(limit, first.length) - 1] as PageRow).ts;
    for (const floor of [floorBefore, this.inflightMin]) {
      if (floor !== null && floor <= boundary) boundary = floor - 1n;
    }
    let page: PageRow[];
    if (boundary + this.windowNs > nowNs()) {
      await this.waitPast(boundary);
      const floor = this.inflightMin;
      if (floor !== null && floor <= boundary) boundary = floor - 1n;
      page = await this.page(owner, after, boundary, limit + 1);
      const floorAfter = this.inflightMin;
      if (floorAfter !== null && floorAfter <= boundary) {
        boundary = floorAfter - 1n;
        page = page.filter((r) => r.ts <= boundary);
      }
    } else {
      page = first.filter((r) => r.ts <= boundary);
    }
    const more = page.length > limit || first.some((r) => r.ts > boundary);
    const seen = new Set<string>();
    const items: StoredItem[] = [];
    let chars = 0;
    let trimmed = false;
    for (const r of page.slice(0, limit)) {
      // A second copy of an id can exist only after a race between servers; the first copy is the one.
      if (seen.has(r.id)) continue;
      if (items.length > 0 && chars + r.envelope.length > maxChars) {
        trimmed = true;
        break;
      }
      seen.add(r.id);
      chars += r.envelope.length;
      items.push({ cursor: r.ts.toString(), serverTime: isoOf(r.ts), envelope: r.envelope });
    }
    return { items, more: more || trimmed };
  }

  private async page(
    owner: string,
    after: string | null,
    upTo: bigint | null,
    limit: number,
  ): Promise<PageRow[]> {
    const conds = [`"owner" = ${str(owner)}`];
    if (after !== null) conds.push(`time > ${nanos(after)}`);
    if (upTo !== null) conds.push(`time <= ${nanos(upTo)}`);
    const res = await this.queryRetrying(
      `SELECT "id", "envelope" FROM ${this.m(M.mailbox)} WHERE ${conds.join(" AND ")} ORDER BY time ASC LIMIT ${limit}`,
      "read a mailbox",
    );
    const out: PageRow[] = [];
    for (const s of res[0] ?? []) {
      for (const r of rows(s)) {
        if (typeof r.id === "string" && typeof r.envelope === "string")
          out.push({ ts: timeOf(r), id: r.id, envelope: r.envelope });
      }
    }
    return out;
  }

  /** Group commit: one batch in flight; appends that arrive meanwhile form the next one. */
  private drain(): void {
    if (this.draining) return;
    this.draining = (async () => {
      await new Promise((r) => setImmediate(r));
      while (this.queue.length > 0) {
        const batch = this.takeBatch();
        await this.commit(batch);
      }
    })().finally(() => {
      this.draining = null;
      if (this.queue.length > 0) this.drain();
    });
  }

  private takeBatch(): Pending[] {
    let points = 0;
    let bytes = 0;
    let n = 0;
    for (const p of this.queue) {
      if (
        n > 0 &&
        (points + p.points > this.opts.maxBatchPoints || bytes + p.bytes > this.opts.maxBatchBytes)
      )
        break;
      points += p.points;
      bytes += p.bytes;
      n++;
    }
    return this.queue.splice(0, n);
  }

  /**
   * Writes one batch and settles its appends. Retries with backoff until `retryForMs`; a retry
   * later than half the safety window re-plans the batch (fresh timestamps, and a fresh look for
   * copies that a failed attempt may have stored after all) so no point lands behind readers.
   */
  private async commit(batch: Pending[]): Promise<void> {
    const started = performance.now();
    const deadline = Date.now() + this.opts.retryForMs;
    const ours = new Map<string, bigint>();
    let plan: Plan | null = null;
    let backoff = 50;
    try {
      for (;;) {
        try {
          if (!plan || Date.now() - plan.madeAt > this.opts.safetyWindowMs / 2) {
            plan = await this.plan(batch, ours);
          }
          // Rewriting a chunk that already landed is harmless: same series, time and fields.
          for (const chunk of plan.chunks) await this.http.write(chunk);
          const { results } = plan;
          this.metrics?.batch(batch.length, (performance.now() - started) / 1000);
          batch.forEach((p, i) => {
            p.resolve(results[i]!);
          });
          return;
        } catch (err) {
          const e = err instanceof ZmqchatError ? err : InfluxHttpError.from(err);
          const retryable = e instanceof InfluxHttpError && e.retryable;
          if (!retryable || Date.now() + backoff > deadline) {
            const failure = storeError(err, "store a message", this.where);
            this.metrics?.error("append");
            for (const p of batch) p.reject(failure);
            return;
          }
          await delay(backoff * (0.5 + Math.random() / 2));
          backoff = Math.min(backoff * 2, 1000);
        }
      }
    } finally {
      this.inflightMin = null;
    }
  }

  /** Looks up copies already stored (resends), then stamps the new points. */
  private async plan(batch: Pending[], ours: Map<string, bigint>): Promise<Plan> {
    const owners = [...new Set(batch.flatMap((p) => p.input.owners))];
    const now = Date.now();
    let from = now - this.opts.dedupeWindowMs;
    let earliestId = now;
    for (const p of batch) {
      const t = uuidv7Time(p.input.id);
      if (Number.isFinite(t)) earliestId = Math.min(earliestId, t);
    }
    from = Math.max(from, earliestId - ID_SKEW_MS);
    const existing = await this.storedIds(owners, nowNs(from));
    const placedHere = new Map<string, bigint>();
    const handled = new Set<string>();
    const lines: string[] = [];
    let minTs: bigint | null = null;
    const results = batch.map((p) => {
      const placed = new Map<string, { cursor: string; serverTime: string }>();
      let duplicate = true;
      for (const owner of new Set(p.input.owners)) {
        const key = `${owner}\u0000${p.input.id}`;
        let ts = existing.get(key) ?? placedHere.get(key);
        if (ts !== undefined) {
          // A copy an earlier attempt of this very batch stored is not a resend.
          if (ours.get(key) === ts && !handled.has(key)) duplicate = false;
        } else {
          ts = this.stamp();
          minTs ??= ts;
          placedHere.set(key, ts);
          ours.set(key, ts);
          duplicate = false;
          const point = new Point(M.mailbox)
            .tag("owner", owner)
            .stringField("id", p.input.id)
            .stringField("envelope", envelopeFor(p.input, owner))
            .timestamp(ts.toString());
          lines.push(point.toLineProtocol()!);
        }
        handled.add(key);
        placed.set(owner, { cursor: ts.toString(), serverTime: isoOf(ts) });
      }
      return { placed, duplicate };
    });
    if (minTs !== null && (this.inflightMin === null || minTs < this.inflightMin)) this.inflightMin = minTs;
    return { chunks: this.chunk(lines), results, madeAt: Date.now() };
  }

  private chunk(lines: string[]): string[] {
    const chunks: string[] = [];
    let current: string[] = [];
    let bytes = 0;
    for (const line of lines) {
      const size = Buffer.byteLength(line) + 1;
      if (current.length > 0 && bytes + size > this.opts.maxBatchBytes) {
        chunks.push(current.join("\n"));
        current = [];
        bytes = 0;
      }
      current.push(line);
      bytes += size;
    }
    if (current.length > 0) chunks.push(current.join("\n"));
    return chunks;
  }

  /** Earliest stored copy of each (owner, id) since `from`, keyed `owner\0id`. */
  private async storedIds(owners: string[], from: bigint): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    const res = await this.http.query(
      `SELECT "id" FROM ${this.m(M.mailbox)} WHERE (${owners.map((o) => `"owner" = ${str(o)}`).join(" OR ")}) AND time >= ${nanos(from)} GROUP BY "owner"`,
    );
    for (const s of res[0] ?? []) {
      const owner = s.tags.owner;
      if (owner === undefined) continue;
      for (const r of rows(s)) {
        if (typeof r.id !== "string") continue;
        const key = `${owner}\u0000${r.id}`;
        const ts = timeOf(r);
        const seen = out.get(key);
        if (seen === undefined || ts < seen) out.set(key, ts);
      }
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    if (this.laneTimer) clearInterval(this.laneTimer);
    this.laneTimer = null;
    while (this.draining) await this.draining;
    if (this.state === "open" && this.clock) {
      // Hand the lane back at once rather than at the end of the lease; best effort.
      const release = new Point(M.lanes)
        .tag("lane", String(this.clock.lane))
        .tag("holder", this.holder)
        .booleanField("alive", false)
        .timestamp(nowNs().toString());
      await this.http.write(release.toLineProtocol()!).catch(() => {});
    }
    this.state = "closed";
    this.http.close();
  }

  // ---------------------------------------------------------------- plumbing

  private get windowNs(): bigint {
    return BigInt(Math.ceil(this.opts.safetyWindowMs)) * 1_000_000n;
  }

  private settled(ts: bigint): boolean {
    return ts + this.windowNs <= nowNs();
  }

  /** Resolves once the safety window has passed `ts`. */
  private async waitPast(ts: bigint): Promise<void> {
    for (;;) {
      const left = ts + this.windowNs - nowNs();
      if (left < 0n) return;
      await delay(Number(left / 1_000_000n) + 1);
    }
  }

  private stamp(): bigint {
    if (!this.clock) throw new ZmqchatError("unavailable", "the InfluxDB store is not initialised");
    return this.clock.next();
  }

  private ready(): void {
    if (this.state === "open") return;
    throw new ZmqchatError(
      "unavailable",
      this.state === "closed" ? "the InfluxDB store is closed" : "the InfluxDB store is not initialised",
      {
        hint: this.state === "new" ? "call init() first" : undefined,
      },
    );
  }

  /** A measurement, qualified with the retention policy when one is configured. */
  private m(measurement: string): string {
    return this.opts.rp !== undefined ? `${ident(this.opts.rp)}.${ident(measurement)}` : ident(measurement);
  }

  private async writeRetrying(lines: string[], what: string): Promise<void> {
    await this.retrying(what, () => this.http.write(lines.join("\n")));
  }

  private queryRetrying(q: string, what: string): Promise<Series[][]> {
    return this.retrying(what, () => this.http.query(q));
  }

  /** Runs `fn`, retrying retryable failures with backoff for `retryForMs`; failures become ZmqchatError. */
  private async retrying<T>(what: string, fn: () => Promise<T>, extra: { hint?: string } = {}): Promise<T> {
    const deadline = Date.now() + this.opts.retryForMs;
    let backoff = 50;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        const e = InfluxHttpError.from(err);
        if (!e.retryable || Date.now() + backoff > deadline) {
          const failure = storeError(e, what, this.where);
          if (extra.hint && !e.retryable && e.status !== 401 && e.status !== 403) {
            throw new ZmqchatError(failure.code, failure.message, { cause: e, hint: extra.hint });
          }
          throw failure;
        }
        await delay(backoff * (0.5 + Math.random() / 2));
        backoff = Math.min(backoff * 2, 1000);
      }
    }
  }
}

interface PageRow {
  ts: bigint;
  id: string;
  envelope: string;
}

function checkName(name: unknown, what: string): asserts name is string {
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    throw new ZmqchatError("bad_request", `bad ${what} name ${JSON.stringify(name)}`);
  }
}

function checkKeys(keys: unknown): asserts keys is UserRecord["keys"] {
  const k = keys as Partial<UserRecord["keys"]> | null;
  if (typeof k?.sign !== "string" || typeof k?.enc !== "string") {
    throw new ZmqchatError("bad_request", "a user needs a signing and an encryption key");
  }
}

/** Live (not withdrawn) claims per name from a `GROUP BY "name", "claim"` answer, earliest first. */
function parseClaims(series: Series[]): Map<string, Claim[]> {
  const out = new Map<string, Claim[]>();
  for (const s of series) {
    const name = s.tags.name;
    const id = s.tags.claim;
    if (name === undefined || id === undefined) continue;
    const rs = rows(s);
    if (rs.some((r) => r.void === true)) continue;
    const claimRow = rs.find((r) => r.void === false);
    if (!claimRow) continue;
    const list = out.get(name) ?? [];
    list.push({ id, ts: timeOf(claimRow), fields: claimRow });
    out.set(name, list);
  }
  for (const list of out.values())
    list.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : 1));
  return out;
}

/**
 * A group's members field: a JSON array of members (as stores before invitations wrote it),
 * or `{"members": [...], "invited": [...]}` when there are pending invitations.
 */
function encodeMembership(members: string[], invited: string[]): string {
  const pending = invited.filter((m) => !members.includes(m));
  return JSON.stringify(pending.length === 0 ? members : { members, invited: pending });
}

function parseMembership(text: string): { members: string[]; invited: string[] } {
  const names = (v: unknown) => (Array.isArray(v) ? v.filter((m): m is string => typeof m === "string") : []);
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v)) return { members: names(v), invited: [] };
    const o = v as { members?: unknown; invited?: unknown } | null;
    return { members: names(o?.members), invited: names(o?.invited) };
  } catch {
    return { members: [], invited: [] };
  }
}
