import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { isAlive } from "../../server/local-stack.js";
import { runCli, ZMQCHAT_BIN } from "../helpers/cli.js";
import { freeBasePort, waitFor } from "../helpers/stack.js";

interface Status {
  running: boolean;
  processes: Array<{ name: string; pid: number | null; alive: boolean }>;
}

/** Every path under `dir` with its mode. */
function modes(dir: string): Array<{ path: string; dir: boolean; mode: number }> {
  const out: Array<{ path: string; dir: boolean; mode: number }> = [];
  const walk = (p: string) => {
    const st = statSync(p);
    out.push({ path: p, dir: st.isDirectory(), mode: st.mode & 0o777 });
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
  };
  walk(dir);
  return out;
}

describe("local stack guards: file modes, a dead supervisor's orphans, who holds the port", () => {
  const home = mkdtempSync(join(tmpdir(), "zmqchat-guard-"));
  const pids: number[] = [];
  after(async () => {
    await runCli(["down"], { home });
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    rmSync(home, { recursive: true, force: true });
  });

  it("keeps every stack file 0600 and directory 0700, and stops what a killed supervisor left running", async () => {
    // Positive control: a store left 0644 by an older version is seen, and tightened by up.
    const stackDir = join(home, "stack");
    mkdirSync(stackDir, { recursive: true, mode: 0o755 });
    writeFileSync(join(stackDir, "old-notes.txt"), "from before\n", { mode: 0o644 });
    assert.equal(statSync(join(stackDir, "old-notes.txt")).mode & 0o777, 0o644);

    const port = await freeBasePort();
    const endpoint = `tcp://127.0.0.1:${port}`;
    const up = await runCli(["up", "--detach", "--port", String(port), "--servers", "1"], { home });
    assert.equal(up.code, 0, up.stderr);
    const reg = await runCli(["--user", "ann", "register"], { home, endpoint });
    assert.equal(reg.code, 0, reg.stderr);
    const all = modes(stackDir);
    assert.ok(
      all.some((e) => e.path.endsWith("store.db")),
      "the store is under the stack dir",
    );
    assert.ok(all.some((e) => e.path.endsWith("state.json")) && all.some((e) => e.path.endsWith(".log")));
    const loose = all.filter((e) => e.mode !== (e.dir ? 0o700 : 0o600));
    assert.deepEqual(
      loose.map((e) => `${e.path} ${e.mode.toString(8)}`),
      [],
      "every directory 0700, every file 0600",
    );

    // The supervisor dies (kill -9): its balancer and server keep running, holding the ports.
    const status = JSON.parse((await runCli(["status", "--json"], { home })).stdout) as Status & {
      endpoint: string;
    };
    const children = status.processes.map((p) => p.pid!).filter(Boolean);
    assert.equal(children.length, 2);
    pids.push(...children);
    const state = JSON.parse(readFileSync(join(stackDir, "state.json"), "utf8")) as { supervisorPid: number };
    process.kill(state.supervisorPid, "SIGKILL");
    await waitFor("the supervisor to be gone", () => !isAlive(state.supervisorPid));
    assert.ok(children.every(isAlive), "the orphans still run");

    // up says who holds the port and how to free it.
    const blocked = await runCli(["up", "--detach", "--port", String(port)], { home });
    assert.equal(blocked.code, 3, blocked.stderr);
    assert.match(
      blocked.stderr,
      new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use by pid ${children[0]}`),
    );
    assert.match(blocked.stderr, /balancer of this local stack.*zmqchat down stops it/);

    // down stops every recorded process although the supervisor is gone.
    const down = await runCli(["down"], { home });
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /supervisor had died; stopped what it left running: .*balancer \(pid \d+\)/);
    await waitFor("the orphans to stop", () => children.every((p) => !isAlive(p)), 10_000);

    // And the stack comes up again on the same ports, this time with /healthz and /metrics.
    const http = await freeBasePort();
    const again = await runCli(
      ["up", "--detach", "--port", String(port), "--servers", "1", "--http-port", String(http)],
      { home },
    );
    assert.equal(again.code, 0, again.stderr);
    const withHttp = JSON.parse((await runCli(["status", "--json"], { home })).stdout) as {
      processes: Array<{ name: string; httpPort: number | null }>;
    };
    assert.deepEqual(
      withHttp.processes.map((p) => [p.name, p.httpPort]),
      [
        ["balancer", http],
        ["server-1", http + 1],
      ],
    );
    const human = await runCli(["status"], { home });
    assert.match(human.stdout, new RegExp(`balancer .*http://127\\.0\\.0\\.1:${http}/metrics /healthz`));
    const health = await waitFor("the balancer's /healthz", async () => {
      const r = await fetch(`http://127.0.0.1:${http}/healthz`).catch(() => null);
      return r?.ok ? r : null;
    });
    assert.equal(health.status, 200);
    const metrics = await waitFor("a server's /metrics", async () => {
      const r = await fetch(`http://127.0.0.1:${http + 1}/metrics`).catch(() => null);
      return r?.ok ? await r.text() : null;
    });
    assert.match(metrics, /^# (HELP|TYPE) /m);
    const stopped = await runCli(["down"], { home });
    assert.match(stopped.stdout, /local stack stopped/);
  });
});

describe("balancer --port 0", () => {
  it("takes four ports in a row, PORT to PORT+3, as its help says", async () => {
    const procs: ChildProcess[] = [];
    try {
      const readies = [];
      // Two at once, so they also compete for runs of free ports.
      for (let i = 0; i < 2; i++) {
        const child = spawn(
          process.execPath,
          [
            ZMQCHAT_BIN,
            "balancer",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--insecure",
            "--log-level",
            "error",
          ],
          { stdio: ["ignore", "pipe", "ignore"] },
        );
        procs.push(child);
        const lines: string[] = [];
        createInterface({ input: child.stdout! }).on("line", (l) => lines.push(l));
        readies.push(
          waitFor("the balancer to be ready", () => lines.find((l) => l.includes('"balancer_ready"'))),
        );
      }
      const bases = new Set<number>();
      for (const line of await Promise.all(readies)) {
        const e = JSON.parse(line).endpoints as Record<"frontend" | "backend" | "pubIn" | "pubOut", string>;
        const ports = [e.frontend, e.backend, e.pubIn, e.pubOut].map((x) => Number(/:(\d+)$/.exec(x)![1]));
        const base = ports[0]!;
        assert.deepEqual(ports, [base, base + 1, base + 2, base + 3], JSON.stringify(e));
        bases.add(base);
      }
      assert.equal(bases.size, 2);
    } finally {
      for (const p of procs) p.kill("SIGKILL");
    }
  });
});
