import { ZmqchatError } from "../../../core/errors.js";
import type { InfluxContext } from "./context.js";
import { rows } from "./http.js";
import { duration, durationMs, goDurationMs, ident } from "./influxql.js";
import { retrying } from "./retry.js";

export interface BootstrapOptions {
  db: string;
  rp: string | undefined;
  retention?: string | undefined;
  createDatabase: boolean;
}

/**
 * Start-up: InfluxDB answers `/ping`, the database exists (created unless `createDatabase` is
 * false) and so does the retention policy (created, or its duration changed, when `retention`
 * is set).
 */
export async function bootstrap(ctx: InfluxContext, o: BootstrapOptions): Promise<void> {
  const admin = (what: string, q: string, extra: { hint?: string } = {}) =>
    retrying(ctx.policy, what, () => ctx.http.query(q, { db: false }), extra);
  await retrying(ctx.policy, "answer /ping", () => ctx.http.ping());
  const dbs = await admin("list databases", "SHOW DATABASES");
  const names = (dbs[0] ?? []).flatMap((s) => s.values.map((v) => v[0]));
  if (!names.includes(o.db)) {
    if (!o.createDatabase) {
      throw new ZmqchatError("unavailable", `${ctx.where}: the database does not exist`, {
        hint: "create it (on InfluxDB 2.x/3.x: a bucket with a DBRP mapping), or drop create=false from the store URL",
      });
    }
    await admin("create the database", `CREATE DATABASE ${ident(o.db)}`, {
      hint: "on InfluxDB 2.x/3.x create the bucket and a DBRP mapping yourself and add create=false to the store URL",
    });
  }
  if (o.rp === undefined) return;
  const res = await admin("list retention policies", `SHOW RETENTION POLICIES ON ${ident(o.db)}`);
  const series = res[0]?.[0];
  const existing = series ? rows(series).find((r) => r.name === o.rp) : undefined;
  const want = o.retention;
  if (!existing) {
    if (want === undefined) {
      throw new ZmqchatError("unavailable", `${ctx.where}: no retention policy ${o.rp}`, {
        hint: "create it, or add retention=DURATION to the store URL so that zmqchat creates it",
      });
    }
    await admin(
      "create the retention policy",
      `CREATE RETENTION POLICY ${ident(o.rp)} ON ${ident(o.db)} DURATION ${duration(want)} REPLICATION 1`,
    );
  } else if (
    want !== undefined &&
    typeof existing.duration === "string" &&
    goDurationMs(existing.duration) !== durationMs(want)
  ) {
    await admin(
      "change the retention policy",
      `ALTER RETENTION POLICY ${ident(o.rp)} ON ${ident(o.db)} DURATION ${duration(want)}`,
    );
  }
}
