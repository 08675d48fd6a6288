import { type ErrorCode, ZmqchatError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { uuidv7 } from "../core/protocol/ids.js";
import type { GroupEventKind, GroupInfo, GroupNotice, RequestBody } from "../core/protocol/schema.js";
import { checkGroupSize, checkGroupsOwned, type ServerQuotas } from "./limits.js";
import { namesAfter, takePage } from "./paging.js";
import { sameSet, unique } from "./sets.js";
import type { GroupRecord, Store } from "./store/store.js";

/** Most recorded changes in one `group.events` reply (each well under 300 bytes). */
export const MAX_GROUP_EVENTS_PAGE = 200;

/** Most pages of a group's record read to find where a former member left (20 × 200 changes). */
const MAX_DEPARTURE_SCAN_PAGES = 20;

export interface GroupServiceDeps {
  store: Store;
  quotas: ServerQuotas;
  log: Logger;
  /** A user's live delivery topics (server/devices.ts). */
  topics(user: string): Promise<string[]>;
  publish(topic: string, frame: Uint8Array): void;
  /** Runs a quota check, counting a refusal in the metrics (service.ts). */
  limit(name: string, check: () => void): void;
}

/**
 * Groups on the server: who may change what, and the record of every change (issue 17).
 *
 * Roles: the owner may do everything; admins (members the owner named) may add members and
 * remove plain members and invitations; every member may leave; invitees accept or decline.
 * These checks are the real ones: clients only ask.
 *
 * Every change the service makes is recorded (Store.addGroupEvent) with the authenticated user
 * who made it, and members read that record (`group.events`) to show system lines ("alice
 * added dave"). The record is the server's, not signed by the actor: the server is already
 * the authority on membership (it decides whom a group message is sealed for, through
 * `group.info`), so a line drawn from its record claims nothing it is not trusted with already,
 * and a member cannot write into it except by a change the checks here allowed.
 */
export class GroupService {
  constructor(private readonly d: GroupServiceDeps) {}

  /** Creates a group owned by the caller; everyone else named is invited, not made a member. */
  async create(b: RequestBody<"group.create">, user: string): Promise<string> {
    const wanted = unique([user, ...b.members]);
    this.d.limit("members_per_group", () => checkGroupSize(this.d.quotas, b.name, wanted.length));
    await this.requireUsers(wanted);
    const owned = (await this.d.store.groupsOf(user)).filter((g) => g.owner === user && g.name !== b.name);
    this.d.limit("groups_per_user", () => checkGroupsOwned(this.d.quotas, user, owned.length));
    const invited = wanted.filter((m) => m !== user);
    const r = await this.d.store.createGroup({ name: b.name, owner: user, members: [user], invited });
    if (
      !r.created &&
      (r.group.owner !== user || !sameSet([...r.group.members, ...r.group.invited], wanted))
    ) {
      refuse("conflict", `a group named ${b.name} already exists`);
    }
    if (r.created) {
      await this.record(b.name, "created", user, null);
      for (const m of invited) await this.record(b.name, "added", user, m);
      for (const m of invited) this.notify(r.group, "invited", m, user);
    }
    return ok({ group: await this.withKeys(r.group), created: r.created });
  }

  /** The owner or an admin invites (add) or removes members and invitations (remove). */
  async change(name: string, names: string[], op: "add" | "remove", user: string): Promise<string> {
    const group = await this.requireGroup(name);
    const admins = group.admins ?? [];
    if (group.owner !== user && !admins.includes(user))
      refuse("forbidden", `only ${group.owner}, the owner of ${name}, or an admin can change its members`);
    let updated: GroupRecord;
    if (op === "add") {
      await this.requireUsers(names);
      const fresh = unique(names).filter((n) => !group.members.includes(n) && !group.invited.includes(n));
      const invited = [...group.invited, ...fresh];
      this.d.limit("members_per_group", () =>
        checkGroupSize(this.d.quotas, name, group.members.length + invited.length),
      );
      updated = await this.d.store.setMembers(name, group.members, invited);
      for (const m of fresh) await this.record(name, "added", user, m);
      for (const m of fresh) this.notify(updated, "invited", m, user);
    } else {
      if (names.includes(group.owner)) refuse("bad_request", "the owner cannot be removed from a group");
      const missing = names.filter((n) => !group.members.includes(n) && !group.invited.includes(n));
      if (missing.length > 0) refuse("not_found", `not members of ${name}: ${missing.join(", ")}`);
      const otherAdmins = names.filter((n) => admins.includes(n) && n !== user);
      if (group.owner !== user && otherAdmins.length > 0)
        refuse("forbidden", `only ${group.owner}, the owner of ${name}, can remove an admin`);
      updated = await this.d.store.setMembers(
        name,
        group.members.filter((m) => !names.includes(m)),
        group.invited.filter((m) => !names.includes(m)),
      );
      for (const m of unique(names)) await this.record(name, "removed", user, m);
      // The removed hear of it too: they are no longer on the list the notice goes to.
      for (const m of unique(names)) this.notify(group, "removed", m, user);
    }
    return ok({ group: await this.withKeys(updated) });
  }

  /** An invitee accepts (becomes a member) or declines (the invitation is gone). */
  async answer(name: string, user: string, answer: "accept" | "decline"): Promise<string> {
    const group = await this.requireGroup(name);
    if (answer === "accept" && group.members.includes(user)) {
      return ok({ group: await this.withKeys(group) });
    }
    if (!group.invited.includes(user)) refuse("not_found", `you have no invitation to ${name}`);
    const invited = group.invited.filter((m) => m !== user);
    if (answer === "decline") {
      await this.d.store.setMembers(name, group.members, invited);
      await this.record(name, "declined", user, user);
      this.notify(group, "declined", user, user);
      return ok({ declined: true });
    }
    const updated = await this.d.store.setMembers(name, [...group.members, user], invited);
    await this.record(name, "joined", user, user);
    this.notify(updated, "joined", user, user);
    return ok({ group: await this.withKeys(updated) });
  }

  /**
   * A member leaves. The owner cannot: a group always has its owner (DESIGN.md); the owner
   * hands the group over first (`group.owner`) or removes the others.
   */
  async leave(name: string, user: string): Promise<string> {
    const group = await this.requireGroup(name);
    if (!group.members.includes(user)) refuse("not_found", `you are not a member of ${name}`);
    if (group.owner === user) {
      refuse(
        "forbidden",
        `you own ${name}: the owner cannot leave a group (hand it over first: zmqchat group owner ${name} USER)`,
      );
    }
    await this.d.store.setMembers(
      name,
      group.members.filter((m) => m !== user),
      group.invited,
    );
    await this.record(name, "left", user, user);
    this.notify(group, "left", user, user);
    return ok({ left: true });
  }

  /** The owner sets the display title; the name, which scripts and topics use, stays. */
  async rename(b: RequestBody<"group.rename">, user: string): Promise<string> {
    const group = await this.requireOwner(b.name, user, "rename it");
    if (group.title === b.title) return ok({ group: await this.withKeys(group) });
    const updated = await this.d.store.updateGroup(b.name, { title: b.title });
    await this.record(b.name, "renamed", user, null, b.title);
    this.notify(updated, "renamed", user, user);
    return ok({ group: await this.withKeys(updated) });
  }

  /** The owner hands the group over to a member, and becomes a plain member. */
  async handOver(b: RequestBody<"group.owner">, user: string): Promise<string> {
    const group = await this.requireOwner(b.name, user, "hand it over");
    if (b.user === user) return ok({ group: await this.withKeys(group) });
    if (!group.members.includes(b.user))
      refuse("not_found", `${b.user} is not a member of ${b.name} (an invitee accepts first)`);
    const admins = (group.admins ?? []).filter((a) => a !== b.user);
    const updated = await this.d.store.updateGroup(b.name, { owner: b.user, admins });
    await this.record(b.name, "owner", user, b.user);
    this.notify(updated, "owner", b.user, user);
    return ok({ group: await this.withKeys(updated) });
  }

  /** The owner makes a member an admin, or no longer one (`remove`). */
  async admin(b: RequestBody<"group.admin">, user: string): Promise<string> {
    const group = await this.requireOwner(b.name, user, "name its admins");
    if (b.user === group.owner)
      refuse("bad_request", `${b.user} owns ${b.name}: the owner is more than an admin`);
    if (!group.members.includes(b.user))
      refuse("not_found", `${b.user} is not a member of ${b.name} (an invitee accepts first)`);
    const admins = group.admins ?? [];
    const isAdmin = admins.includes(b.user);
    if (isAdmin === !b.remove) return ok({ group: await this.withKeys(group) });
    const next = b.remove ? admins.filter((a) => a !== b.user) : [...admins, b.user];
    const updated = await this.d.store.updateGroup(b.name, { admins: next });
    await this.record(b.name, b.remove ? "unadmin" : "admin", user, b.user);
    this.notify(updated, b.remove ? "unadmin" : "admin", b.user, user);
    return ok({ group: await this.withKeys(updated) });
  }

  /**
   * The group's recorded changes, one page at a time: for members and invitees all of them; for
   * someone who was a member or invitee, those up to their own departure (removed, left,
   * declined), so they too learn why they are out, and nothing after.
   */
  async events(b: RequestBody<"group.events">, user: string): Promise<string> {
    const group = await this.requireGroup(b.name);
    let until: bigint | null = null;
    if (!group.members.includes(user) && !group.invited.includes(user)) {
      const left = await this.departure(b.name, user);
      if (left === null) refuse("forbidden", `you are not a member of ${b.name}`);
      until = BigInt(left);
    }
    const page = await this.d.store.groupEvents(b.name, b.after ?? null, MAX_GROUP_EVENTS_PAGE);
    const shown = until === null ? page.events : page.events.filter((e) => BigInt(e.cursor) <= until);
    const more = page.more && shown.length === page.events.length;
    const events = shown.map((e) => ({
      cursor: e.cursor,
      id: e.id,
      at: e.at,
      kind: e.kind,
      actor: e.actor,
      target: e.target,
      title: e.title,
    }));
    return ok({ events, more });
  }

  /** The cursor of the user's last departure from the group (removed, left, declined), or null. */
  private async departure(group: string, user: string): Promise<string | null> {
    let after: string | null = null;
    let last: string | null = null;
    for (let i = 0; i < MAX_DEPARTURE_SCAN_PAGES; i++) {
      const page = await this.d.store.groupEvents(group, after, MAX_GROUP_EVENTS_PAGE);
      for (const e of page.events)
        if (e.target === user && (e.kind === "removed" || e.kind === "left" || e.kind === "declined"))
          last = e.cursor;
      const next = page.events.at(-1)?.cursor;
      if (!page.more || next === undefined) break;
      after = next;
    }
    return last;
  }

  async info(b: RequestBody<"group.info">, user: string): Promise<string> {
    const group = await this.requireGroup(b.name);
    // An invitee may look before accepting.
    if (!group.members.includes(user) && !group.invited.includes(user))
      refuse("forbidden", `you are not a member of ${b.name}`);
    return ok({ group: await this.withKeys(group) });
  }

  /** The caller's groups by name, each with its members' keys, paged by bytes and count. */
  async list(b: RequestBody<"groups">, user: string): Promise<string> {
    const groups = namesAfter(await this.d.store.groupsOf(user), b.after);
    const page = await takePage(groups, async (g) => JSON.stringify(await this.withKeys(g)));
    return `{"groups":[${page.parts.join(",")}],"more":${page.more}}`;
  }

  private async requireOwner(name: string, user: string, what: string): Promise<GroupRecord> {
    const group = await this.requireGroup(name);
    if (group.owner !== user) {
      if (!group.members.includes(user) && !group.invited.includes(user))
        refuse("forbidden", `you are not a member of ${name}`);
      refuse("forbidden", `only ${group.owner}, the owner of ${name}, can ${what}`);
    }
    return group;
  }

  private async record(
    group: string,
    kind: GroupEventKind,
    actor: string,
    target: string | null,
    title: string | null = null,
  ): Promise<void> {
    await this.d.store.addGroupEvent({
      id: uuidv7(),
      group,
      at: new Date().toISOString(),
      kind,
      actor,
      target,
      title,
    });
  }

  /** Tells the group's members and invitees (`group` as it was or is) of a change, on their live topics. */
  private notify(group: GroupRecord, change: GroupNotice["change"], who: string, by: string): void {
    const frame = Buffer.from(
      JSON.stringify({ v: 1, type: "group", group: group.name, change, user: who, by }),
    );
    for (const owner of unique([...group.members, ...group.invited, who])) {
      this.d.topics(owner).then(
        (topics) => {
          for (const topic of topics) this.d.publish(topic, frame);
        },
        (err) => this.d.log.warn({ err, owner }, "a group notice was not published"),
      );
    }
  }

  private async requireUsers(names: string[]): Promise<void> {
    const found = new Set((await this.d.store.getUsers(unique(names))).map((u) => u.name));
    const missing = unique(names).filter((n) => !found.has(n));
    if (missing.length > 0) refuse("not_found", `no such user: ${missing.join(", ")}`);
  }

  private async requireGroup(name: string): Promise<GroupRecord> {
    const g = await this.d.store.getGroup(name);
    if (!g) refuse("not_found", `no group named ${name}`);
    return g;
  }

  private async withKeys(g: GroupRecord): Promise<GroupInfo> {
    const users = await this.d.store.getUsers(g.members);
    return {
      name: g.name,
      owner: g.owner,
      members: users,
      invited: g.invited,
      admins: g.admins ?? [],
      title: g.title ?? null,
    };
  }
}

function refuse(code: ErrorCode, message: string): never {
  throw new ZmqchatError(code, message);
}

function ok(body: unknown): string {
  return JSON.stringify(body);
}
