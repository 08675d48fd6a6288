import { type ChildProcess, spawn } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { daemonLink } from "../../bin/daemon-client.js";
import type { BenchContext } from "../lib/context.js";
import { ZMQCHAT_BIN } from "../lib/paths.js";
import { stopChild, track } from "../lib/processes.js";
import { startStack } from "../lib/stack.js";
import { distribution } from "../lib/stats.js";

/**
 * `zmqchat daemon` (issue 20) beside the CLI: sends per second for one client with many sends
 * in flight over the daemon's socket, and send → notification latency at a light load (one
 * message at a time, to a subscriber of another profile's daemon), each beside the same through
 * the CLI (a `zmqchat send` process per message).
 */

const SIZES = {
  quick: { sends: 300, inFlight: 64, cliSends: 5, latency: 30 },
  full: { sends: 3000, inFlight: 64, cliSends: 20, latency: 200 },
};

/** A JSON-RPC peer on a daemon's socket: the CLI's own daemon link. */
class Peer {
  onMessage: (params: { id: string; text: string }) => void = () => {};

  private constructor(private readonly link: ReturnType<typeof daemonLink>) {}

  static open(path: string): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => {
        const peer: Peer = new Peer(
          daemonLink(s, (method, params) => {
            if (method === "message") peer.onMessage(params as { id: string; text: string });
          }),
        );
        resolve(peer);
      });
      s.once("error", reject);
    });
  }

  call(method: string, params: unknown = {}): PromiseLike<unknown> {
    return this.link.client.request(method, params);
  }

  close(): void {
    this.link.close();
  }
}

function cli(
  home: string,
  endpoint: string,
  args: string[],
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ZMQCHAT_BIN, ...args], {
      env: { ...process.env, ZMQCHAT_HOME: home, ZMQCHAT_ENDPOINT: endpoint },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr += d;
    });
    child.on("exit", (code) => resolve({ code, stderr }));
  });
}

async function startDaemon(
  home: string,
  endpoint: string,
  user: string,
): Promise<{ child: ChildProcess; socket: string }> {
  const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", user, "daemon"], {
    env: { ...process.env, ZMQCHAT_HOME: home, ZMQCHAT_ENDPOINT: endpoint },
    stdio: ["ignore", "ignore", "pipe"],
  });
  track(child, `daemon-${user}`);
  let err = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d) => {
      err += d;
      if (err.includes("listening on")) resolve();
    });
    child.once("exit", () => reject(new Error(`the daemon of ${user} exited: ${err}`)));
  });
  return { child, socket: join(home, "users", user, "daemon.sock") };
}

export async function daemonRun(ctx: BenchContext): Promise<void> {
  const size = ctx.quick ? SIZES.quick : SIZES.full;
  const stack = await startStack(`sqlite:${join(ctx.tmp, "daemon-store.db")}`, 2, "daemon");
  const home = join(ctx.tmp, "daemon-homes");
  const daemons: ChildProcess[] = [];
  try {
    for (const u of ["alice", "bob", "carol"]) {
      const r = await cli(home, stack.endpoint, ["--user", u, "register"]);
      if (r.code !== 0) throw new Error(`register ${u}: ${r.stderr}`);
    }
    const alice = await startDaemon(home, stack.endpoint, "alice");
    const bob = await startDaemon(home, stack.endpoint, "bob");
    daemons.push(alice.child, bob.child);
    const out = await Peer.open(alice.socket);
    const sub = await Peer.open(bob.socket);
    await out.call("send", { to: "carol", text: "warm-up" });

    // Throughput: one client, `inFlight` sends outstanding at a time, to carol (no subscriber).
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: size.inFlight }, async () => {
        while (next < size.sends) {
          next++;
          await out.call("send", { to: "carol", text: `bench ${next}` });
        }
      }),
    );
    const daemonRate = size.sends / ((performance.now() - t0) / 1000);
    const t1 = performance.now();
    for (let i = 0; i < size.cliSends; i++) {
      const r = await cli(home, stack.endpoint, ["--user", "carol", "send", "alice", `cli ${i}`]);
      if (r.code !== 0) throw new Error(`zmqchat send: ${r.stderr}`);
    }
    const cliRate = size.cliSends / ((performance.now() - t1) / 1000);
    ctx.results.add("daemon.cli.sends", cliRate, {
      workload: "daemon",
      label: "sends/s through the CLI (a zmqchat send process per message, one at a time)",
      unit: "msg/s",
      better: "higher",
    });
    ctx.results.add("daemon.sends", daemonRate, {
      workload: "daemon",
      label: `sends/s through the daemon (one client, ${size.inFlight} in flight)`,
      unit: "msg/s",
      better: "higher",
      baseline: "daemon.cli.sends",
    });

    // Latency at a light load: one message at a time, alice → bob's subscriber.
    const arrived = new Map<string, number>();
    let waiter: { text: string; resolve: () => void } | null = null;
    sub.onMessage = (m) => {
      arrived.set(m.text, performance.now());
      if (waiter && m.text === waiter.text) waiter.resolve();
    };
    await sub.call("subscribe");
    const until = (text: string) =>
      arrived.has(text)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no notification for "${text}"`)), 30_000);
            waiter = {
              text,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            };
          });
    const viaDaemon: number[] = [];
    for (let i = 0; i < size.latency; i++) {
      const text = `latency ${i}`;
      const t = performance.now();
      await out.call("send", { to: "bob", text });
      await until(text);
      viaDaemon.push(arrived.get(text)! - t);
    }
    // The same through the CLI: bob's daemon is still the receiver; alice's daemon is stopped,
    // so each `zmqchat send` does the whole work itself (process start, login, send).
    out.close();
    await stopChild(alice.child);
    const viaCli: number[] = [];
    for (let i = 0; i < size.cliSends; i++) {
      const text = `cli latency ${i}`;
      const t = performance.now();
      const r = await cli(home, stack.endpoint, ["--user", "alice", "send", "bob", text]);
      if (r.code !== 0) throw new Error(`zmqchat send: ${r.stderr}`);
      await until(text);
      viaCli.push(arrived.get(text)! - t);
    }
    const d = distribution(viaDaemon);
    const c = distribution(viaCli);
    const meta = (label: string) => ({ workload: "daemon", label, unit: "ms", better: "lower" as const });
    ctx.results.add(
      "daemon.cli.latency.p50",
      c.p50,
      meta("send → notification p50 through the CLI (process per message)"),
    );
    ctx.results.add(
      "daemon.cli.latency.p99",
      c.p99,
      meta("send → notification p99 through the CLI (process per message)"),
    );
    ctx.results.add("daemon.latency.p50", d.p50, {
      ...meta("send → notification p50 through the daemon (one at a time)"),
      baseline: "daemon.cli.latency.p50",
    });
    ctx.results.add("daemon.latency.p99", d.p99, {
      ...meta("send → notification p99 through the daemon (one at a time)"),
      baseline: "daemon.cli.latency.p99",
    });
    sub.close();
  } finally {
    await Promise.all(daemons.map((c) => stopChild(c)));
    await stack.stop();
  }
}
