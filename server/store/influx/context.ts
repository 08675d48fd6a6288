import type { V1Http } from "./http.js";
import { ident } from "./influxql.js";
import { type RetryPolicy, retrying } from "./retry.js";
import type { SafetyWindow } from "./window.js";

/** The measurements (docs/influx-schema.md). */
export const M = {
  users: "users",
  userKeys: "user_keys",
  backups: "backups",
  groups: "groups",
  memberships: "memberships",
  groupEvents: "group_events",
  mailbox: "mailbox",
  msgIds: "msg_ids",
  idIndex: "id_index",
  lanes: "lanes",
  usedTokens: "used_tokens",
  revocations: "revocations",
  watermarks: "watermarks",
  devices: "devices",
  drops: "drops",
} as const;

/** What every mechanism of the InfluxDB store shares: the connection, retries, the window. */
export class InfluxContext {
  constructor(
    readonly http: V1Http,
    readonly policy: RetryPolicy,
    readonly window: SafetyWindow,
    /** Retention policy qualifying every measurement, when one is configured. */
    readonly rp: string | undefined,
  ) {}

  get where(): string {
    return this.policy.where;
  }

  /** A measurement, qualified with the retention policy when one is configured. */
  m(measurement: string): string {
    return this.rp !== undefined ? `${ident(this.rp)}.${ident(measurement)}` : ident(measurement);
  }

  /** Writes line protocol, retried (retry.ts). */
  async write(lines: string[], what: string): Promise<void> {
    await retrying(this.policy, what, () => this.http.write(lines.join("\n")));
  }

  /** Runs InfluxQL on the database, retried (retry.ts). */
  query(q: string, what: string) {
    return retrying(this.policy, what, () => this.http.query(q));
  }
}
