import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import { now, sleep } from "../lib/clock.js";
import type { BenchContext } from "../lib/context.js";
import { distribution, extent } from "../lib/stats.js";
import { CpuMeter } from "../lib/sysinfo.js";

export const MOSQUITTO = "mosquitto QoS 1";

/** The figures this peer gives, by the raw baseline figure each stands beside. */
export const MOSQUITTO_PEERS: Record<string, string> = {
  "raw.msgs": "mosquitto.msgs",
  "raw.p50": "mosquitto.p50",
  "raw.p99": "mosquitto.p99",
  "raw.cpu": "mosquitto.cpu",
};

/** The part of mqtt.js (v5) the bench uses. */
interface MqttClient {
  publish(topic: string, payload: Buffer, opts: { qos: 1 }, cb: (err?: Error) => void): void;
  subscribeAsync(topic: string, opts: { qos: 1 }): Promise<unknown>;
  on(event: "message", fn: (topic: string, payload: Buffer) => void): void;
  endAsync(force?: boolean): Promise<void>;
}
interface Mqtt {
  connectAsync(url: string, opts: Record<string, unknown>): Promise<MqttClient>;
}

/** Why Mosquitto cannot be measured here, or null when it can. */
async function loadMqtt(): Promise<{ mqtt: Mqtt } | { missing: string }> {
  if (spawnSync("mosquitto", ["-h"]).error)
    return { missing: "Debian's mosquitto is not installed (scripts/ensure-deps.sh installs it)" };
  try {
    // Not a static import: the bench runs (without this peer) where the package is missing.
    const name = "mqtt";
    const mod = (await import(name)) as { default?: Mqtt } & Mqtt;
    return { mqtt: mod.default ?? mod };
  } catch {
    return { missing: "the mqtt npm package is not installed (npm install)" };
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForPort(port: number, deadline: number): Promise<void> {
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
      s.connect(port, "127.0.0.1");
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}`);
    await sleep(20);
  }
}

/**
 * Mosquitto 2 with QoS 1 and persistence (saved every second: weaker than zmqchat's
 * store-before-ack), started by the bench on a free loopback port with its own config and
 * persistence directory; one publisher and one subscriber (mqtt.js, in the bench process) with
 * the chat workload's size and window. Its figures stand beside the raw ZeroMQ echo's.
 */
export class MosquittoPeer {
  private constructor(
    private readonly mqtt: Mqtt,
    private readonly proc: ChildProcess,
    private readonly url: string,
  ) {}

  static async start(ctx: BenchContext): Promise<MosquittoPeer | null> {
    const loaded = await loadMqtt();
    if ("missing" in loaded) {
      for (const id of Object.values(MOSQUITTO_PEERS))
        ctx.results.unavailable(
          id,
          { workload: MOSQUITTO, label: id, unit: "", better: "higher" },
          loaded.missing,
        );
      return null;
    }
    const dir = join(ctx.tmp, "mosquitto");
    mkdirSync(join(dir, "data"), { recursive: true });
    const port = await freePort();
    const conf = join(dir, "mosquitto.conf");
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        // Run as root, mosquitto drops to its own user, which cannot write our temp directory.
        `user ${userInfo().username}`,
        "allow_anonymous true",
        "persistence true",
        `persistence_location ${join(dir, "data")}/`,
        "autosave_interval 1",
        "max_inflight_messages 0",
        "max_queued_messages 0",
        "log_type error",
        "",
      ].join("\n"),
    );
    const proc = spawn("mosquitto", ["-c", conf], { stdio: "ignore" });
    const peer = new MosquittoPeer(loaded.mqtt, proc, `mqtt://127.0.0.1:${port}`);
    try {
      await waitForPort(port, Date.now() + 10_000);
      await peer.burst(ctx, 2000, false);
    } catch (err) {
      await peer.stop();
      throw err;
    }
    return peer;
  }

  /** `count` × the chat size, ≤ the chat window unacknowledged (PUBACK), delivered to a persistent QoS 1 subscription. */
  async burst(ctx: BenchContext, count = ctx.sizes.rawCount, record = true): Promise<void> {
    const s = ctx.sizes;
    const tag = `b${Date.now()}`;
    const sub = await this.mqtt.connectAsync(this.url, {
      clientId: `${tag}-bob`,
      clean: false,
      protocolVersion: 4,
    });
    const pub = await this.mqtt.connectAsync(this.url, {
      clientId: `${tag}-alice`,
      clean: true,
      protocolVersion: 4,
    });
    const topic = `chat/${tag}`;
    await sub.subscribeAsync(topic, { qos: 1 });
    const sent = new Float64Array(count).fill(Number.NaN);
    const got = new Float64Array(count).fill(Number.NaN);
    let received = 0;
    let duplicates = 0;
    let done: () => void = () => {};
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    sub.on("message", (_t, payload) => {
      const i = payload.readUInt32BE(0);
      if (!Number.isNaN(got[i]!)) {
        duplicates++;
        return;
      }
      got[i] = now();
      if (++received === count) done();
    });
    const pad = Buffer.alloc(s.textBytes, 0x61);
    const cpu = new CpuMeter([this.proc.pid!]);
    let next = 0;
    let failed: Error | null = null;
    const lane = async (): Promise<void> => {
      while (next < count && !failed) {
        const i = next++;
        const payload = Buffer.from(pad);
        payload.writeUInt32BE(i, 0);
        sent[i] = now();
        await new Promise<void>((resolve) =>
          pub.publish(topic, payload, { qos: 1 }, (err) => {
            if (err) failed = err;
            resolve();
          }),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(s.maxUnacked, count) }, lane));
    await Promise.race([all, sleep(s.stallMs)]);
    const used = cpu.used();
    await Promise.all([pub.endAsync(true), sub.endAsync(true)]);
    if (failed) throw failed;
    if (!record) return;
    if (received < count) ctx.results.fail(`${MOSQUITTO}: ${count - received} of ${count} messages lost`);
    if (duplicates > 0) ctx.results.fail(`${MOSQUITTO}: ${duplicates} messages duplicated`);
    const lat = new Float64Array(count);
    for (let i = 0; i < count; i++) lat[i] = got[i]! - sent[i]!;
    const d = distribution(lat.filter((x) => !Number.isNaN(x)));
    const meta = { workload: MOSQUITTO, better: "higher" as const };
    ctx.results.add("mosquitto.msgs", (received * 1000) / (extent(got).max - extent(sent).min), {
      ...meta,
      label: `${count} × ${s.textBytes} B, ≤${s.maxUnacked} unacked, persistence on, delivered`,
      unit: "msg/s",
    });
    ctx.results.add("mosquitto.p50", d.p50, {
      ...meta,
      better: "lower",
      label: "publish → delivered p50",
      unit: "ms",
    });
    ctx.results.add("mosquitto.p99", d.p99, {
      ...meta,
      better: "lower",
      label: "publish → delivered p99",
      unit: "ms",
    });
    ctx.results.add("mosquitto.cpu", used / count, {
      ...meta,
      better: "lower",
      label: "broker CPU per message",
      unit: "µs/msg",
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((resolve) => this.proc.once("exit", resolve));
    this.proc.kill("SIGTERM");
    await Promise.race([exited, sleep(5000)]);
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
  }
}
