import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runCli } from "../helpers/cli.js";
import { freeBasePort, waitFor } from "../helpers/stack.js";

interface Status {
  running: boolean;
  answering: boolean;
  endpoint: string;
  processes: Array<{
    name: string;
    pid: number | null;
    alive: boolean;
    restarts: number;
    uptimeSeconds: number;
  }>;
}

/** `zmqchat up` supervises its processes: a balancer or server that dies comes back by itself. */
describe("local stack: up, status, supervision, down", () => {
  const home = mkdtempSync(join(tmpdir(), "zmqchat-up-"));
  let port = 0;
  after(async () => {
    await runCli(["down"], { home });
    rmSync(home, { recursive: true, force: true });
  });

  const status = async (): Promise<Status> =>
    JSON.parse((await runCli(["status", "--json"], { home })).stdout) as Status;

  it("starts detached, chats, restarts a killed server and a killed balancer, and stops", async (t) => {
    port = await freeBasePort();
    const endpoint = `tcp://127.0.0.1:${port}`;
    const up = await runCli(["up", "--detach", "--port", String(port), "--servers", "2"], { home });
    assert.equal(up.code, 0, up.stderr);
    const again = await runCli(["up", "--detach", "--port", String(port)], { home });
    assert.match(again.stdout, /already running/);
    let s = await status();
    assert.equal(s.running && s.answering, true);
    assert.deepEqual(
      s.processes.map((p) => [p.name, p.alive]),
      [
        ["balancer", true],
        ["server-1", true],
        ["server-2", true],
      ],
    );
    const cli = (user: string, args: string[]) => runCli(["--user", user, ...args], { home, endpoint });
    assert.equal((await cli("alice", ["register"])).code, 0);
    assert.equal((await cli("bob", ["register"])).code, 0);
    assert.equal((await cli("alice", ["send", "bob", "before the crash"])).code, 0);

    for (const name of ["server-1", "balancer"]) {
      const victim = s.processes.find((p) => p.name === name)!;
      const killedAt = Date.now();
      process.kill(victim.pid!, "SIGKILL");
      s = await waitFor(`${name} to be restarted`, async () => {
        const now = await status();
        const p = now.processes.find((x) => x.name === name)!;
        return p.alive && p.restarts === 1 && p.pid !== victim.pid ? now : null;
      });
      t.diagnostic(`${name} restarted after ${Date.now() - killedAt} ms`);
      process.stdout.write(`# figure: ${name} killed with SIGKILL, back in ${Date.now() - killedAt} ms\n`);
    }
    const after = await cli("alice", ["send", "bob", "after the crashes", "--timeout", "20s"]);
    assert.equal(after.code, 0, after.stderr);
    const history = await cli("bob", ["history", "alice", "--json"]);
    assert.deepEqual(
      history.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).text),
      ["before the crash", "after the crashes"],
    );
    const text = await runCli(["status"], { home });
    assert.match(text.stdout, /server-1 +pid \d+ +up \d+s +restarts 1/);
    const down = await runCli(["down"], { home });
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /stopped/);
    const gone = await runCli(["status", "--json"], { home });
    assert.equal(gone.code, 3, "status says the stack is not running");
    for (const p of s.processes) {
      assert.throws(() => process.kill(p.pid!, 0), "every supervised process is gone");
    }
  });
});
