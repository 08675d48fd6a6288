import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { profilePaths } from "../../core/client/profile.js";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  to: string | null;
  group: string | null;
  text: string;
  sentAt: string;
  serverTime: string;
  verified: boolean;
}

const lines = (stdout: string): Line[] =>
  stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);

/** A TCP port nothing listens on: for "the service is unreachable". */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("zmqchat search (built CLI, real balancer and servers)", () => {
  let stack: RealStack;
  before(async () => {
    stack = await startStack({ servers: 2 });
    const r = await stack.cli("bob", ["register"]);
    assert.equal(r.code, 0, r.stderr);
    const alice = await zeromqClient(stack.dir, "alice", stack.endpoints);
    const carol = await zeromqClient(stack.dir, "carol", stack.endpoints);
    try {
      await alice.send({ user: "bob" }, "Grüße aus Köln — das Café ist naïve");
      await carol.groupCreate("team", ["alice", "bob"]);
      await alice.groupAnswer("team", "accept");
      const bobClient = await zeromqClient(stack.dir, "bob", stack.endpoints, { register: false });
      await bobClient.groupAnswer("team", "accept").finally(() => bobClient.dispose());
      await carol.send({ group: "team" }, "release notes are ready for review");
      await alice.send({ group: "team" }, "release party on Friday");
      await alice.send({ user: "bob" }, "lunch on Friday?");
    } finally {
      await alice.dispose();
      await carol.dispose();
    }
  });
  after(async () => {
    await stack?.stop();
  });

  it("fetches what is new, then finds a non-ASCII word without its accents, as history's JSON lines", async () => {
    const r = await stack.cli("bob", ["search", "koln", "cafe", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const [hit, ...rest] = lines(r.stdout);
    assert.deepEqual(rest, []);
    assert.ok(hit);
    assert.equal(hit.text, "Grüße aus Köln — das Café ist naïve");
    assert.equal(hit.from, "alice");
    assert.equal(hit.to, "bob");
    assert.equal(hit.verified, true);
    const history = lines((await stack.cli("bob", ["history", "alice", "--json"])).stdout);
    assert.deepEqual(
      history.find((m) => m.id === hit.id),
      hit,
      "the same keys and values as history prints",
    );
    const exact = await stack.cli("bob", ["search", "Grüße", "--json"]);
    assert.deepEqual(lines(exact.stdout), [hit]);
  });

  it("finds group messages, filtered by group and by sender", async () => {
    const inGroup = lines(
      (await stack.cli("bob", ["search", "release", "--group", "team", "--json"])).stdout,
    );
    assert.deepEqual(
      inGroup.map((m) => [m.from, m.group, m.to, m.text]),
      [
        ["carol", "team", null, "release notes are ready for review"],
        ["alice", "team", null, "release party on Friday"],
      ],
    );
    const fromCarol = lines(
      (await stack.cli("bob", ["search", "release", "--from", "carol", "--json"])).stdout,
    );
    assert.deepEqual(
      fromCarol.map((m) => m.text),
      ["release notes are ready for review"],
    );
    const friday = lines((await stack.cli("bob", ["search", "friday", "--json"])).stdout);
    assert.deepEqual(
      friday.map((m) => m.text),
      ["release party on Friday", "lunch on Friday?"],
    );
  });

  it("prints lines for people, and says so on stderr when nothing matches", async () => {
    const r = await stack.cli("bob", ["search", "lunch"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}alice → bob: lunch on Friday\?\n$/);
    const none = await stack.cli("bob", ["search", "xylophone"]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, "");
    assert.match(none.stderr, /no cached message matches/);
  });

  it("refuses a search without words with exit 2", async () => {
    const r = await stack.cli("bob", ["search", "🚀", "--json"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /search for what/);
  });

  it("searches the local cache with a warning when the service is unreachable", async () => {
    const r = await stack.cli("bob", ["search", "lunch", "--json"], {
      endpoint: `tcp://127.0.0.1:${await closedPort()}`,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: offline .*searching the local cache/);
    assert.deepEqual(
      lines(r.stdout).map((m) => m.text),
      ["lunch on Friday?"],
    );
  });

  it("keeps the decrypted cache readable by its owner only", () => {
    const paths = profilePaths(join(stack.dir, "homes", "bob"), "bob");
    assert.equal(statSync(paths.cache).mode & 0o777, 0o600);
    assert.equal(statSync(paths.dir).mode & 0o777, 0o700);
  });
});

/** Control characters a progress display uses: carriage return, backspace, escape. */
const controlsIn = (s: string): string[] => [...s].filter((c) => c === "\r" || c === "\b" || c === "\u001b");

/** Runs the built CLI with stdin, stdout and stderr on a pseudo-terminal (util-linux `script`). */
function runOnTerminal(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, ZMQCHAT_BIN, ...args]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn("script", ["-q", "-e", "-c", command, "/dev/null"], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`zmqchat ${args.join(" ")} on a terminal did not finish\n${output}`));
    }, 120_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("sync progress: a bar on a terminal, nothing when piped", () => {
  const N = 3000;
  let stack: RealStack;
  /** A fresh device of dave: his keys, an empty cache, so a sync recovers all N messages. */
  const freshDevice = (name: string): string => {
    const home = join(stack.dir, "devices", name);
    const from = profilePaths(join(stack.dir, "homes", "dave"), "dave");
    const to = profilePaths(home, "dave");
    mkdirSync(to.dir, { recursive: true, mode: 0o700 });
    copyFileSync(from.identity, to.identity);
    return home;
  };
  before(async () => {
    stack = await startStack({ servers: 2 });
    const dave = await zeromqClient(stack.dir, "dave", stack.endpoints);
    const erin = await zeromqClient(stack.dir, "erin", stack.endpoints);
    try {
      for (let i = 0; i < N; i += 200) {
        await Promise.all(
          Array.from({ length: Math.min(200, N - i) }, (_, j) =>
            erin.send({ user: "dave" }, `message ${i + j}`),
          ),
        );
      }
    } finally {
      await dave.dispose();
      await erin.dispose();
    }
  });
  after(async () => {
    await stack?.stop();
  });

  it(`piped: recovers ${N} messages and writes no progress or control characters to stderr`, async () => {
    const r = await stack.cli("dave", ["sync"], { home: freshDevice("piped"), timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `recovered ${N} messages\n`);
    assert.deepEqual(controlsIn(r.stderr), [], "no carriage returns or escape sequences");
    assert.doesNotMatch(r.stderr, /syncing/);
    const json = await stack.cli("dave", ["sync", "--json"], {
      home: freshDevice("piped-json"),
      timeoutMs: 120_000,
    });
    assert.deepEqual(JSON.parse(json.stdout), { recovered: N, total: N });
    assert.deepEqual(controlsIn(json.stderr), []);
  });

  it(`on a terminal: shows a progress line, redrawn in place, and clears it at the end`, async () => {
    const r = await runOnTerminal(["--user", "dave", "sync"], {
      ZMQCHAT_HOME: freshDevice("terminal"),
      ZMQCHAT_ENDPOINT: stack.endpoint,
    });
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /\rsyncing \d+ messages/, "a progress line redrawn with a carriage return");
    assert.ok(r.output.includes("\r\u001b[K"), "the progress line is cleared when done");
    assert.match(r.output, new RegExp(`recovered ${N} messages`));
  });
});
