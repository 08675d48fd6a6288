import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

interface Listener {
  child: ChildProcess;
  out(): string;
  /** What it wrote to stderr (its connection states). */
  err(): string;
  texts(): string[];
  stop(): Promise<number | null>;
}

/**
 * `zmqchat listen` is fed by the client's events (`message`, and `already_stored` for what
 * another process of the profile stored first) instead of polling the cache every 500 ms.
 */
describe("listen fed by client events (real processes)", () => {
  let stack: RealStack;
  before(async () => {
    stack = await startStack({ servers: 1 });
    for (const u of ["alice", "bob"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
  });
  after(async () => {
    await stack?.stop();
  });

  function listen(user: string): Listener {
    const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", user, "listen", "--json"], {
      env: { ...process.env, ZMQCHAT_HOME: join(stack.dir, "homes", user), ZMQCHAT_ENDPOINT: stack.endpoint },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
    });
    let err = "";
    child.stderr!.on("data", (d) => {
      err += d;
    });
    return {
      child,
      out: () => out,
      err: () => err,
      texts: () =>
        out
          .split("\n")
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as { text: string }).text),
      stop: () => {
        const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
        child.kill("SIGINT");
        return exited;
      },
    };
  }

  it("two listens on one profile each print every message once, in order, whichever of them stored it", async () => {
    const one = listen("bob");
    const two = listen("bob");
    try {
      // `listen` prints what arrived after the profile's listen mark as it read it when it began,
      // and each listen moves that mark as it prints. A listen that began after the other one had
      // printed the first message starts past it, by design: so both must have begun (read the
      // mark) before it is sent. Each reads the mark before it connects, so "online" says so.
      await waitFor("both listens began", () => [one, two].every((l) => l.err().includes("online")));
      // Both live: a first message reaches both (stored by one, found stored by the other).
      assert.equal((await stack.cli("alice", ["send", "bob", "warm-up"])).code, 0);
      await waitFor("both listens print the first message", () =>
        [one, two].every((l) => l.texts().includes("warm-up")),
      );
      const sent = Array.from({ length: 6 }, (_, i) => `event ${i}`);
      for (const text of sent) assert.equal((await stack.cli("alice", ["send", "bob", text])).code, 0);
      await waitFor(
        "both listens print all six",
        () => [one, two].every((l) => sent.every((t) => l.texts().includes(t))),
        30_000,
      );
      for (const l of [one, two]) assert.deepEqual(l.texts(), ["warm-up", ...sent], "each once, in order");
    } finally {
      assert.equal(await one.stop(), 0, "listen exits 0 when interrupted");
      assert.equal(await two.stop(), 0, "listen exits 0 when interrupted");
    }
  });

  it("a message stored by another process of the profile while listen runs is printed", async () => {
    const l = listen("bob");
    try {
      assert.equal((await stack.cli("alice", ["send", "bob", "before"])).code, 0);
      await waitFor("listen is live", () => l.texts().includes("before"));
      // `zmqchat sync` on bob's profile stores the next message (maybe before listen's own client does).
      assert.equal((await stack.cli("alice", ["send", "bob", "synced elsewhere"])).code, 0);
      assert.equal((await stack.cli("bob", ["sync"])).code, 0);
      await waitFor("listen prints it", () => l.texts().includes("synced elsewhere"), 30_000);
      assert.deepEqual(l.texts(), ["before", "synced elsewhere"]);
    } finally {
      assert.equal(await l.stop(), 0);
    }
  });
});
