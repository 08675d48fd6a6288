import { randomBytes } from "node:crypto";
import { Point } from "@influxdata/influxdb-client";
import { ZmqchatError } from "../../../core/errors.js";
import { NAME_PATTERN } from "../../../core/protocol/limits.js";
import type {
  GroupChange,
  GroupEventRecord,
  GroupRecord,
  KeyLinkRecord,
  NewGroup,
  RotationProof,
  UserRecord,
} from "../store.js";
import type { Claims } from "./claims.js";
import { parseClaims } from "./claims.js";
import { isoOf } from "./clock.js";
import { type InfluxContext, M } from "./context.js";
import { rows, timeOf } from "./http.js";
import { str } from "./influxql.js";
import { RawNumber } from "./raw-json.js";

const ROTATION_FIELDS = ["from_sign", "from_enc", "sign", "enc", "sig", "sig_new"];

type UserState = UserRecord & { steps: Set<string>; chain: KeyLinkRecord[] };

/**
 * Users, their key history, key backups, ended sessions and groups, built on first-claim
 * agreement (claims.ts): names and groups are claims, a key rotation is a claim "from keys A to
 * keys B"; the rest are plain points where the latest wins.
 */
export class Records {
  constructor(
    private readonly ctx: InfluxContext,
    private readonly claims: Claims,
    private readonly stamp: () => bigint,
    /** Moves this process's clock above a stamp it read (LaneClock.observe). */
    private readonly observe: (ts: bigint) => void = () => {},
  ) {}

  async registerUser(user: UserRecord): Promise<{ created: boolean; user: UserRecord }> {
    checkName(user.name, "user");
    checkKeys(user.keys);
    const { created, winner } = await this.claims.claim(M.users, user.name, ["sign", "enc"], (p) =>
      p.stringField("sign", user.keys.sign).stringField("enc", user.keys.enc),
    );
    const current = (await this.users([user.name])).get(user.name);
    const keys = current?.keys ?? { sign: String(winner.fields.sign), enc: String(winner.fields.enc) };
    return { created, user: { name: user.name, keys } };
  }

  async getUsers(names: string[]): Promise<UserRecord[]> {
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
      await this.ctx.write([point.timestamp(ts.toString()).toLineProtocol()!], `rotate the keys of ${name}`);
      if (this.ctx.window.late(ts)) {
        await this.claims.withdraw(M.userKeys, name, id);
        continue;
      }
      await this.ctx.window.waitPast(ts);
      return (await this.users([name])).get(name)?.steps.has(id) ?? false;
    }
    throw new ZmqchatError(
      "unavailable",
      `${this.ctx.where} is too slow to decide the keys of ${name}; try again`,
    );
  }

  async keyHistory(name: string): Promise<KeyLinkRecord[]> {
    if (!NAME_PATTERN.test(name)) return [];
    return (await this.users([name])).get(name)?.chain ?? [];
  }

  async putBackup(name: string, blob: string): Promise<void> {
    checkName(name, "user");
    if (typeof blob !== "string") throw new ZmqchatError("bad_request", "a key backup is text");
    // The latest backup wins: stamped above the one stored now, which another server may have
    // stamped ahead of this one's clock (an idle server's stamps run up to 50 ms ahead).
    const current = await this.latestBackup(name);
    if (current) this.observe(timeOf(current));
    const point = new Point(M.backups).tag("name", name).stringField("blob", blob);
    await this.ctx.write([point.timestamp(this.stamp().toString()).toLineProtocol()!], "store a key backup");
  }

  async getBackup(name: string): Promise<string | null> {
    if (!NAME_PATTERN.test(name)) return null;
    const row = await this.latestBackup(name);
    return typeof row?.blob === "string" ? row.blob : null;
  }

  private async latestBackup(name: string) {
    const res = await this.ctx.query(
      `SELECT "blob" FROM ${this.ctx.m(M.backups)} WHERE "name" = ${str(name)} ORDER BY time DESC LIMIT 1`,
      "read a key backup",
    );
    return res[0]?.[0] ? rows(res[0][0])[0] : undefined;
  }

  /** A revocation point; resolves after the safety window, when every server reads it. */
  async revokeSessions(name: string, scope: string, before: number): Promise<void> {
    checkName(name, "user");
    if (typeof scope !== "string" || !/^[*A-Za-z0-9_:.-]{1,80}$/.test(scope))
      throw new ZmqchatError("bad_request", "bad session scope");
    const ts = this.stamp();
    const point = new Point(M.revocations)
      .tag("name", name)
      .tag("scope", scope)
      .intField("before", Math.floor(before));
    await this.ctx.write([point.timestamp(ts.toString()).toLineProtocol()!], "end sessions");
    await this.ctx.window.waitPast(ts);
  }

  async sessionRevocations(name: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!NAME_PATTERN.test(name)) return out;
    const res = await this.ctx.query(
      `SELECT max("before") AS "before" FROM ${this.ctx.m(M.revocations)} WHERE "name" = ${str(name)} GROUP BY "scope"`,
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
    checkName(group.name, "group");
    checkName(group.owner, "user");
    for (const m of [...group.members, ...(group.invited ?? [])]) checkName(m, "user");
    const { created } = await this.claims.claim(M.groups, group.name, ["owner", "members"], (p) =>
      p
        .stringField("owner", group.owner)
        .stringField("members", encodeMembership(group.members, group.invited ?? [])),
    );
    const current = await this.getGroup(group.name);
    if (!current)
      throw new ZmqchatError(
        "unavailable",
        `${this.ctx.where}: the group ${group.name} vanished after creation`,
      );
    return { created, group: current };
  }

  async setMembers(name: string, members: string[], invited: string[] = []): Promise<GroupRecord> {
    checkName(name, "group");
    for (const m of [...members, ...invited]) checkName(m, "user");
    const group = await this.getGroup(name);
    if (!group) throw new ZmqchatError("not_found", `no group named ${name}`);
    // Roles ride along in the same point (latest wins); an admin no longer a member is no admin.
    const roles = {
      owner: group.owner,
      admins: (group.admins ?? []).filter((a) => members.includes(a)),
      title: group.title,
    };
    return this.writeMembership(group, encodeMembership(members, invited, roles));
  }

  async updateGroup(name: string, change: GroupChange): Promise<GroupRecord> {
    checkName(name, "group");
    if (change.owner !== undefined) checkName(change.owner, "user");
    for (const a of change.admins ?? []) checkName(a, "user");
    const group = await this.getGroup(name);
    if (!group) throw new ZmqchatError("not_found", `no group named ${name}`);
    const roles = {
      owner: change.owner ?? group.owner,
      admins: change.admins ?? group.admins ?? [],
      title: change.title ?? group.title,
    };
    return this.writeMembership(group, encodeMembership(group.members, group.invited, roles));
  }

  /** Group changes (issue 17): one point each, in a measurement of their own, tagged by group. */
  async addGroupEvent(e: GroupEventRecord): Promise<void> {
    checkName(e.group, "group");
    const p = new Point(M.groupEvents)
      .tag("group", e.group)
      .stringField("id", e.id)
      .stringField("at", e.at)
      .stringField("kind", e.kind)
      .stringField("actor", e.actor)
      .stringField("target", e.target ?? "")
      .stringField("title", e.title ?? "");
    await this.ctx.write([p.timestamp(this.stamp().toString()).toLineProtocol()!], "record a group change");
  }

  async groupEvents(
    group: string,
    after: string | null,
    limit: number,
  ): Promise<{ events: Array<GroupEventRecord & { cursor: string }>; more: boolean }> {
    if (!NAME_PATTERN.test(group)) return { events: [], more: false };
    // Cursors are the points' nanosecond times, as decimal strings (never JSON numbers).
    const from = after === null ? "" : ` AND time > ${BigInt(after).toString()}`;
    const res = await this.ctx.query(
      `SELECT "id", "at", "kind", "actor", "target", "title" FROM ${this.ctx.m(M.groupEvents)} WHERE "group" = ${str(group)}${from} ORDER BY time ASC LIMIT ${limit + 1}`,
      "read group changes",
    );
    const all = (res[0] ?? []).flatMap((series) => rows(series));
    const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : null);
    const events = all.slice(0, limit).map((r) => ({
      cursor: timeOf(r).toString(),
      id: String(r.id),
      group,
      at: String(r.at),
      kind: String(r.kind),
      actor: String(r.actor),
      target: text(r.target),
      title: text(r.title),
    }));
    return { events, more: all.length > limit };
  }

  private async writeMembership(group: GroupRecord, members: string): Promise<GroupRecord> {
    const line = new Point(M.memberships).tag("group", group.name).stringField("members", members);
    await this.ctx.write(
      [line.timestamp(this.stamp().toString()).toLineProtocol()!],
      "change a group's members",
    );
    return recordOf(group.name, group.owner, members);
  }

  async getGroup(name: string): Promise<GroupRecord | null> {
    if (!NAME_PATTERN.test(name)) return null;
    return (await this.groups([name])).get(name) ?? null;
  }

  async groupsOf(user: string): Promise<GroupRecord[]> {
    if (!NAME_PATTERN.test(user)) return [];
    const all = await this.groups(null);
    return [...all.values()]
      .filter((g) => g.members.includes(user) || g.invited.includes(user))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Groups by name (all when `names` is null): the winning creation claim plus the latest member list. */
  private async groups(names: string[] | null): Promise<Map<string, GroupRecord>> {
    const winners = await this.claims.winners(M.groups, names, ["owner", "members"]);
    if (winners.size === 0) return new Map();
    const filter = names ? `WHERE ${names.map((n) => `"group" = ${str(n)}`).join(" OR ")} ` : "";
    const res = await this.ctx.query(
      `SELECT "members" FROM ${this.ctx.m(M.memberships)} ${filter}GROUP BY "group" ORDER BY time DESC LIMIT 1`,
      "read group members",
    );
    const latest = new Map<string, { ts: bigint; members: string }>();
    for (const s of res[0] ?? []) {
      const row = rows(s)[0];
      const g = s.tags.group;
      if (row && g !== undefined && typeof row.members === "string") {
        latest.set(g, { ts: timeOf(row), members: row.members });
        // A change this process makes next (read, then written) is stamped above what it read.
        this.observe(timeOf(row));
      }
    }
    const out = new Map<string, GroupRecord>();
    for (const [name, w] of winners) {
      this.observe(w.ts);
      const version = latest.get(name);
      const members = version && version.ts > w.ts ? version.members : String(w.fields.members);
      out.set(name, recordOf(name, String(w.fields.owner), members));
    }
    return out;
  }

  /**
   * Users with their current keys: the winning registration, then the key chain. A rotation is
   * a claim "from keys A to keys B"; from the registration on, the earliest settled rotation
   * whose `from` is the current keys (and that is later than them) makes B current, and so on.
   * Claim ids of the rotations that took effect come back too, for rotateKeys.
   */
  private async users(names: string[] | null): Promise<Map<string, UserState>> {
    const res = await this.ctx.query(
      `${this.claims.statement(M.users, names, ["sign", "enc"])}; ${this.claims.statement(M.userKeys, names, ROTATION_FIELDS)}`,
      "read users",
    );
    const registrations = parseClaims(res[0] ?? []);
    const rotations = parseClaims(res[1] ?? []);
    const out = new Map<string, UserState>();
    const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : null);
    const settled = (ts: bigint) => this.ctx.window.settled(ts);
    for (const [name, claims] of registrations) {
      const first = claims[0];
      if (!first || !settled(first.ts)) continue;
      let keys = { sign: String(first.fields.sign), enc: String(first.fields.enc) };
      let since = first.ts;
      const steps = new Set<string>();
      const chain: KeyLinkRecord[] = [{ keys, sig: null, sigNew: null, at: isoOf(first.ts) }];
      for (const r of rotations.get(name) ?? []) {
        if (!settled(r.ts) || r.ts <= since) continue;
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
}

export function checkName(name: unknown, what: string): asserts name is string {
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

interface Roles {
  owner?: string;
  admins?: string[];
  title?: string;
}

/**
 * A group's members field: a JSON array of members (as stores before invitations wrote it),
 * or `{"members": [...], "invited": [...]}` when there are pending invitations, with the owner
 * (once a handover is possible), admins and title beside them (issue 17; older servers ignore them).
 */
function encodeMembership(members: string[], invited: string[], roles: Roles = {}): string {
  const pending = invited.filter((m) => !members.includes(m));
  const admins = (roles.admins ?? []).filter((a) => members.includes(a));
  if (pending.length === 0 && roles.owner === undefined && admins.length === 0 && roles.title === undefined)
    return JSON.stringify(members);
  return JSON.stringify({
    members,
    invited: pending,
    ...(roles.owner !== undefined ? { owner: roles.owner } : {}),
    ...(admins.length > 0 ? { admins } : {}),
    ...(roles.title !== undefined ? { title: roles.title } : {}),
  });
}

function parseMembership(text: string): { members: string[]; invited: string[] } & Roles {
  const names = (v: unknown) => (Array.isArray(v) ? v.filter((m): m is string => typeof m === "string") : []);
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v)) return { members: names(v), invited: [] };
    const o = v as {
      members?: unknown;
      invited?: unknown;
      owner?: unknown;
      admins?: unknown;
      title?: unknown;
    } | null;
    const members = names(o?.members);
    const admins = names(o?.admins).filter((a) => members.includes(a));
    return {
      members,
      invited: names(o?.invited),
      ...(typeof o?.owner === "string" && NAME_PATTERN.test(o.owner) ? { owner: o.owner } : {}),
      ...(admins.length > 0 ? { admins } : {}),
      ...(typeof o?.title === "string" ? { title: o.title } : {}),
    };
  } catch {
    return { members: [], invited: [] };
  }
}

/** A group record from its creation claim's owner and its latest members field (which may name a later owner). */
function recordOf(name: string, claimOwner: string, membersField: string): GroupRecord {
  const { owner, ...rest } = parseMembership(membersField);
  return { name, owner: owner ?? claimOwner, ...rest };
}
