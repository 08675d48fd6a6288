import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { balancerMetrics } from "../../balancer/metrics.js";
import { serverMetrics } from "../../server/metrics.js";
import { freePort, type RealStack, type StackProcess, startStack, waitFor } from "../helpers/stack.js";

/** Times a process's main thread gave up the CPU of its own accord (slept: woke once each). */
function sleeps(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8");
  return Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)![1]);
}

/** How often an idle process woke over `ms`, per second. */
async function wakeupsPerSecond(p: StackProcess, ms: number): Promise<number> {
  const pid = p.child.pid!;
  const a = sleeps(pid);
  await new Promise((r) => setTimeout(r, ms));
  return ((sleeps(pid) - a) * 1000) / ms;
}

describe("process metrics only where /metrics is served", () => {
  it("a registry without them holds the service's own metrics and none of Node's (the 10 ms event-loop monitor)", async () => {
    for (const [make, prefix] of [
      [serverMetrics, "zmqchat_server_"],
      [balancerMetrics, "zmqchat_balancer_"],
    ] as const) {
      const without = await make({ processMetrics: false }).registry.metrics();
      const withThem = await make().registry.metrics();
      for (const text of [without, withThem])
        assert.match(text, new RegExp(`^# HELP ${prefix}\\w+_total `, "m"));
      assert.doesNotMatch(without, /nodejs_eventloop_lag|process_cpu|nodejs_gc/);
      // Control: the default registry has them, so the test sees them when they are there.
      assert.match(withThem, new RegExp(`^${prefix}nodejs_eventloop_lag_seconds `, "m"));
      assert.match(withThem, new RegExp(`^${prefix}process_cpu_seconds_total `, "m"));
    }
  });

  describe("an idle server (real processes)", () => {
    let stack: RealStack;
    before(async () => {
      stack = await startStack({ servers: 1, insecure: true });
    });
    after(async () => {
      await stack?.stop();
    });

    it("wakes a few times a second without an HTTP port, not a hundred (as it does with one)", async () => {
      const quiet = stack.servers[0]!;
      await waitFor(
        "the server to be live",
        async () => (await stack.balancerHealth()).liveServers === 1,
        30_000,
      );
      const port = await freePort();
      const served = await stack.startServer(["--http-host", "127.0.0.1", "--http-port", String(port)]);
      await waitFor(
        "both servers live",
        async () => (await stack.balancerHealth()).liveServers === 2,
        30_000,
      );
      const [idle, monitored] = await Promise.all([
        wakeupsPerSecond(quiet, 3000),
        wakeupsPerSecond(served, 3000),
      ]);
      // Heartbeats to and from the balancer are one a second each way; the event-loop delay
      // monitor alone is a hundred. Measured here: 3 against 102.
      assert.ok(idle < 25, `the server without an HTTP port woke ${idle.toFixed(1)} times a second`);
      // Control: the same count sees the monitor where it runs (a loaded machine delays its timer).
      assert.ok(
        monitored > 40,
        `the server with an HTTP port woke only ${monitored.toFixed(1)} times a second`,
      );
    });
  });
});
