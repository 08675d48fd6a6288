import { Point } from "@influxdata/influxdb-client";
import { ZmqchatError } from "../../../core/errors.js";
import type { DeviceRecord } from "../store.js";
import type { InfluxContext } from "./context.js";
import { M } from "./context.js";
import { rows, timeOf } from "./http.js";
import { str } from "./influxql.js";
import { RawNumber } from "./raw-json.js";
import { checkName } from "./records.js";

const DEVICE_ID = /^[0-9a-f]{16}$|^-$/;
const DROP_KEY = /^[A-Za-z0-9_:.-]{1,160}$/;

/**
 * Device records and sealed drops (server/devices.ts) as plain points where the latest wins:
 * one series per (user, device) and per drop key. Every write carries a fresh store stamp above
 * what this process read of the series (`observe`): another server's stamps may run up to 50 ms
 * ahead of this one's clock (an idle server's watermark promise), and a device revoked through
 * one server and renamed through another right after must stay revoked.
 */
export class DeviceRecords {
  constructor(
    private readonly ctx: InfluxContext,
    private readonly stamp: () => bigint,
    /** Moves this process's clock above a stamp it read (LaneClock.observe). */
    private readonly observe: (ts: bigint) => void = () => {},
  ) {}

  async putDevice(name: string, device: DeviceRecord): Promise<void> {
    checkName(name, "user");
    if (!DEVICE_ID.test(device.id)) throw new ZmqchatError("bad_request", "bad device id");
    const point = new Point(M.devices)
      .tag("name", name)
      .tag("device", device.id)
      .stringField("record", JSON.stringify(device));
    await this.ctx.write([point.timestamp(this.stamp().toString()).toLineProtocol()!], "store a device");
  }

  async listDevices(name: string): Promise<DeviceRecord[]> {
    checkName(name, "user");
    const res = await this.ctx.query(
      `SELECT last("record") AS "record" FROM ${this.ctx.m(M.devices)} WHERE "name" = ${str(name)} GROUP BY "device"`,
      "read devices",
    );
    const out: DeviceRecord[] = [];
    for (const series of res[0] ?? []) {
      const row = rows(series)[0];
      if (typeof row?.record !== "string") continue;
      // Every change of a device record is written after reading it here (server/devices.ts).
      this.observe(timeOf(row));
      out.push(JSON.parse(row.record) as DeviceRecord);
    }
    return out.sort((a, b) => a.added - b.added || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async putDrop(key: string, value: string, expires: number): Promise<void> {
    if (!DROP_KEY.test(key)) throw new ZmqchatError("bad_request", "bad drop key");
    const current = await this.latestDrop(key);
    if (current) this.observe(timeOf(current));
    const point = new Point(M.drops)
      .tag("key", key)
      .stringField("value", value)
      .intField("expires", Math.floor(expires));
    await this.ctx.write([point.timestamp(this.stamp().toString()).toLineProtocol()!], "store a sealed drop");
  }

  async getDrop(key: string, now: number): Promise<string | null> {
    if (!DROP_KEY.test(key)) return null;
    const row = await this.latestDrop(key);
    if (typeof row?.value !== "string") return null;
    const expires = row.expires instanceof RawNumber ? Number(row.expires.text) : Number(row?.expires);
    return expires > now ? row.value : null;
  }

  private async latestDrop(key: string) {
    const res = await this.ctx.query(
      `SELECT "value", "expires" FROM ${this.ctx.m(M.drops)} WHERE "key" = ${str(key)} ORDER BY time DESC LIMIT 1`,
      "read a sealed drop",
    );
    return res[0]?.[0] ? rows(res[0][0])[0] : undefined;
  }
}
