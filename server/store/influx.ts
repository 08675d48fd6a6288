import { ZmqchatError } from "../../core/errors.js";
import { bootstrap } from "./influx/bootstrap.js";
import { Claims } from "./influx/claims.js";
import { InfluxContext } from "./influx/context.js";
import { DeviceRecords } from "./influx/devices.js";
import { GroupCommit } from "./influx/group-commit.js";
import { V1Http } from "./influx/http.js";
import { IdIndex } from "./influx/id-index.js";
import { LaneLease } from "./influx/lane-lease.js";
import { MailboxReader } from "./influx/mailbox-read.js";
import {
  type InfluxStoreOptions,
  optionsFromUrl,
  type ResolvedOptions,
  resolveOptions,
} from "./influx/options.js";
import { checkName, Records } from "./influx/records.js";
import { Watermarks } from "./influx/watermarks.js";
import { SafetyWindow } from "./influx/window.js";
import type {
  AppendInput,
  AppendResult,
  DeviceRecord,
  GroupChange,
  GroupEventRecord,
  GroupRecord,
  KeyLinkRecord,
  NewGroup,
  RotationProof,
  Store,
  StoredItem,
  StoreMetrics,
  UserRecord,
} from "./store.js";

export type { InfluxStoreOptions } from "./influx/options.js";

/** How often an idle process publishes its lane watermark (watermarks.ts). */
const WATERMARK_EVERY_MS = 50;

/**
 * The production store: InfluxDB through its v1 HTTP API (`/write`, InfluxQL on `/query`).
 * See docs/influx-schema.md for the measurements and for why every step is safe with several
 * server processes on one database. The mechanisms live under influx/: options.ts (URL and
 * environment), bootstrap.ts (start-up), lane-lease.ts (unique timestamps), claims.ts
 * (first-claim agreement) and records.ts (users, keys, groups on top of it), mailbox-read.ts
 * (safety-window reads), group-commit.ts (batched appends), watermarks.ts and predecessors.ts
 * (each copy's predecessor, told without waiting out the window), retry.ts (the one retry loop).
 */
export class InfluxStore implements Store {
  private readonly opts: ResolvedOptions;
  private readonly ctx: InfluxContext;
  private readonly lanes: LaneLease;
  private readonly records: Records;
  private readonly devices: DeviceRecords;
  private readonly commits: GroupCommit;
  private readonly index: IdIndex;
  private readonly reader: MailboxReader;
  private readonly watermarks: Watermarks | null;
  private state: "new" | "open" | "closed" = "new";
  private initing: Promise<void> | null = null;

  constructor(options: InfluxStoreOptions) {
    this.opts = resolveOptions(options);
    const http = new V1Http({
      url: this.opts.url,
      db: this.opts.db,
      rp: this.opts.rp,
      username: options.username,
      password: options.password,
      token: options.token,
      consistency: options.consistency,
      timeoutMs: this.opts.timeoutMs,
    });
    this.ctx = new InfluxContext(
      http,
      { retryForMs: this.opts.retryForMs, where: http.description },
      new SafetyWindow(this.opts.safetyWindowMs),
      this.opts.rp,
    );
    const stamp = () => this.stamp();
    // Watermarks assume an acknowledged write is visible to every later query (watermarks.ts).
    const consistent = options.consistency === undefined || options.consistency === "all";
    // How far ahead of its clock an idle process's watermark promises (below): also the most a
    // stamp read from another server may move this one's clock ahead.
    const observeMs =
      consistent && this.opts.safetyWindowMs > 0
        ? Math.min(WATERMARK_EVERY_MS, this.opts.safetyWindowMs / 5)
        : 0;
    const observe = (ts: bigint) => this.lanes.clock?.observe(ts, observeMs);
    this.lanes = new LaneLease(this.ctx, this.opts.laneLeaseMs);
    this.records = new Records(this.ctx, new Claims(this.ctx, stamp), stamp, observe);
    this.devices = new DeviceRecords(this.ctx, stamp, observe);
    this.watermarks =
      consistent && this.opts.safetyWindowMs > 0
        ? new Watermarks(
            this.ctx,
            this.lanes,
            {
              everyMs: WATERMARK_EVERY_MS,
              quietMs: this.opts.timeoutMs + this.opts.safetyWindowMs,
              // As far ahead as the timer's period: the idle process's latest watermark then
              // lies past every copy stamped before the latest commit of a busy one. Not more:
              // the idle process's own next copies are stamped that late, and wait that long
              // for a busy process's watermarks to pass them.
              aheadMs: observeMs,
            },
            () => this.commits.inflightMin,
          )
        : null;
    this.index = new IdIndex(this.ctx);
    this.commits = new GroupCommit(
      this.ctx,
      this.opts,
      stamp,
      this.watermarks,
      this.ctx.window.racingNs,
      this.index,
    );
    this.reader = new MailboxReader(this.ctx, () => this.commits.inflightMin, this.watermarks, true);
  }

  /** See options.ts optionsFromUrl for the URL's parameters and the environment it reads. */
  static fromUrl(url: string, env: NodeJS.ProcessEnv = process.env): InfluxStore {
    return new InfluxStore(optionsFromUrl(url, env));
  }

  /** Receives batch sizes and failures (set by openStore). */
  get metrics(): StoreMetrics | null {
    return this.commits.metrics;
  }

  set metrics(m: StoreMetrics | null) {
    this.commits.metrics = m;
  }

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
    await bootstrap(this.ctx, this.opts);
    await this.index.start();
    await this.lanes.lease(() => this.state === "open");
    this.watermarks?.start();
    this.state = "open";
  }

  async registerUser(user: UserRecord): Promise<{ created: boolean; user: UserRecord }> {
    this.ready();
    return this.records.registerUser(user);
  }

  async getUsers(names: string[]): Promise<UserRecord[]> {
    this.ready();
    return this.records.getUsers(names);
  }

  async listUsers(page?: { after?: string; limit: number }): Promise<UserRecord[]> {
    this.ready();
    return this.records.listUsers(page);
  }

  async rotateKeys(
    name: string,
    from: UserRecord["keys"],
    to: UserRecord["keys"],
    proof?: RotationProof,
  ): Promise<boolean> {
    this.ready();
    return this.records.rotateKeys(name, from, to, proof);
  }

  async keyHistory(name: string): Promise<KeyLinkRecord[]> {
    this.ready();
    return this.records.keyHistory(name);
  }

  async putBackup(name: string, blob: string): Promise<void> {
    this.ready();
    return this.records.putBackup(name, blob);
  }

  async getBackup(name: string): Promise<string | null> {
    this.ready();
    return this.records.getBackup(name);
  }

  async claimOnce(token: string, expires: number): Promise<boolean> {
    this.ready();
    if (typeof token !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(token))
      throw new ZmqchatError("bad_request", "a one-time token is 1-128 base64url characters");
    return new Claims(this.ctx, () => this.stamp()).claimOnce(token, expires);
  }

  async putDevice(name: string, device: DeviceRecord): Promise<void> {
    this.ready();
    return this.devices.putDevice(name, device);
  }

  async listDevices(name: string): Promise<DeviceRecord[]> {
    this.ready();
    return this.devices.listDevices(name);
  }

  async putDrop(key: string, value: string, expires: number): Promise<void> {
    this.ready();
    return this.devices.putDrop(key, value, expires);
  }

  async getDrop(key: string, now: number): Promise<string | null> {
    this.ready();
    return this.devices.getDrop(key, now);
  }

  async revokeSessions(name: string, scope: string, before: number): Promise<void> {
    this.ready();
    return this.records.revokeSessions(name, scope, before);
  }

  async sessionRevocations(name: string): Promise<Map<string, number>> {
    this.ready();
    return this.records.sessionRevocations(name);
  }

  async createGroup(group: NewGroup): Promise<{ created: boolean; group: GroupRecord }> {
    this.ready();
    return this.records.createGroup(group);
  }

  async setMembers(name: string, members: string[], invited: string[] = []): Promise<GroupRecord> {
    this.ready();
    return this.records.setMembers(name, members, invited);
  }

  async updateGroup(name: string, change: GroupChange): Promise<GroupRecord> {
    this.ready();
    return this.records.updateGroup(name, change);
  }

  async addGroupEvent(event: GroupEventRecord): Promise<void> {
    this.ready();
    return this.records.addGroupEvent(event);
  }

  async groupEvents(
    group: string,
    after: string | null,
    limit: number,
  ): Promise<{ events: Array<GroupEventRecord & { cursor: string }>; more: boolean }> {
    this.ready();
    return this.records.groupEvents(group, after, limit);
  }

  async getGroup(name: string): Promise<GroupRecord | null> {
    this.ready();
    return this.records.getGroup(name);
  }

  async groupsOf(user: string): Promise<GroupRecord[]> {
    this.ready();
    return this.records.groupsOf(user);
  }

  append(input: AppendInput): Promise<AppendResult> {
    try {
      this.ready();
      checkAppend(input);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.commits.append(input);
  }

  appendMany(inputs: readonly AppendInput[]): Promise<AppendResult[]> {
    try {
      this.ready();
      for (const input of inputs) checkAppend(input);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.commits.appendMany(inputs);
  }

  async mailboxSize(owner: string): Promise<number> {
    this.ready();
    checkName(owner, "user");
    return this.reader.size(owner);
  }

  async read(
    owner: string,
    after: string | null,
    limit: number,
    maxChars = Number.POSITIVE_INFINITY,
  ): Promise<{ items: StoredItem[]; more: boolean }> {
    this.ready();
    checkName(owner, "user");
    return this.reader.read(owner, after, limit, maxChars);
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.lanes.stop();
    await this.commits.idle();
    this.watermarks?.stop();
    if (this.state === "open") await this.lanes.release();
    this.state = "closed";
    this.ctx.http.close();
  }

  private stamp(): bigint {
    const clock = this.lanes.clock;
    if (!clock) throw new ZmqchatError("unavailable", "the InfluxDB store is not initialised");
    return clock.next();
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
}

/** Refuses an append the line protocol cannot carry safely. */
function checkAppend(input: AppendInput): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (typeof input.id !== "string" || !/^[^\u0000-\u001f\u007f]{1,64}$/.test(input.id)) {
    throw new ZmqchatError("bad_request", "a message needs an id");
  }
  if (!Array.isArray(input.owners) || input.owners.length === 0)
    throw new ZmqchatError("bad_request", "a message needs a mailbox");
  for (const o of input.owners) checkName(o, "user");
  if (typeof input.envelope !== "string") throw new ZmqchatError("bad_request", "the envelope must be text");
}
