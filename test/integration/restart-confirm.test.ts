/**
 * A balancer restart must not make listening clients log in again (a burst of logins after every
 * restart): each client's link notices the silence, opens anew and subscribes again, and the new
 * balancer confirms the subscription (SUBSCRIBED_FRAME) before the client's 5 s wait for it ends.
 * Their live deliveries go on. Real balancer, server and `zmqchat listen` processes.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { startStack, waitFor } from "../helpers/stack.js";

/** Longer than the client's 5 s confirmation wait after the link opens again. */
const AFTER_RESTART_MS = 8000;
const LISTENERS = 3;
/** The balancer's downtime: past the listens' keep-alive ping (every 2 s, 4 s deadline). */
const DOWN_MS = 7000;

describe("a balancer restart", () => {
  it("does not make listening clients log in again, and their live deliveries go on", async () => {
    const stack = await startStack({ servers: 1, fixedPorts: true, serverHttp: true });
    const listens: ReturnType<typeof spawn>[] = [];
    try {
      const users = Array.from({ length: LISTENERS }, (_, i) => `l${i}`);
      for (const u of ["alice", ...users]) assert.equal((await stack.cli(u, ["register"])).code, 0);
      const logins = async () => {
        const text = await (await fetch(stack.metricsUrls[1]!)).text();
        let n = 0;
        for (const m of text.matchAll(/zmqchat_server_requests_total\{[^}]*type="login"[^}]*\} (\d+)/g))
          n += Number(m[1]);
        return n;
      };
      const outs = users.map(() => ({ out: "", err: "" }));
      users.forEach((u, i) => {
        const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", u, "listen", "--json"], {
          env: {
            ...process.env,
            ZMQCHAT_HOME: join(stack.dir, "homes", u),
            ZMQCHAT_ENDPOINT: stack.endpoint,
          },
          stdio: ["ignore", "pipe", "pipe"],
        });
        child.stdout!.on("data", (d) => {
          outs[i]!.out += d;
        });
        child.stderr!.on("data", (d) => {
          outs[i]!.err += d;
        });
        listens.push(child);
      });
      for (const [i, u] of users.entries()) {
        assert.equal((await stack.cli("alice", ["send", u, "before"])).code, 0);
        await waitFor(`${u} is live`, () => outs[i]!.out.includes('"before"'));
      }
      // Past any confirmation wait of the first logins.
      await new Promise((r) => setTimeout(r, AFTER_RESTART_MS));
      const before = await logins();
      const old = stack.balancers[0]!.child;
      const gone = new Promise((r) => old.once("exit", r));
      old.kill("SIGKILL");
      await gone;
      // Down long enough for the listens' pings to notice: each then says hello again.
      await new Promise((r) => setTimeout(r, DOWN_MS));
      await stack.restartBalancer(0);
      await waitFor(
        "the listens online again",
        () => outs.every((o) => o.err.split("online").length - 1 >= 2),
        30_000,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}: ${outs.map((o) => JSON.stringify(o.err)).join(" | ")}`);
      });
      await new Promise((r) => setTimeout(r, AFTER_RESTART_MS));
      const after = await logins();
      for (const [i, u] of users.entries()) {
        assert.equal((await stack.cli("alice", ["send", u, "after the restart"])).code, 0);
        await waitFor(`${u} prints the message after the restart`, () =>
          outs[i]!.out.includes("after the restart"),
        );
      }
      assert.equal(
        after - before,
        0,
        `${after - before} logins after the restart, ${LISTENERS} listening clients`,
      );
    } finally {
      for (const l of listens) l.kill("SIGTERM");
      await stack.stop();
    }
  });
});
