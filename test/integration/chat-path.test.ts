import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Influxd, startInfluxd } from "../helpers/influxd.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  to: string | null;
  group: string | null;
  text: string;
  verified: boolean;
  sentAt: string;
  serverTime: string;
  replyTo?: string | null;
  edited?: string | null;
  deleted?: boolean;
  reactions?: Record<string, string[]>;
  file?: unknown;
}

const parseLines = (stdout: string): Line[] =>
  stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);

/**
 * The walking skeleton's path, as a user types it: the built CLI against a real balancer and
 * two real server processes over ZeroMQ on loopback, with a temporary SQLite store.
 */
for (const kind of ["sqlite", "influx"] as const) {
  describe(`chat path through balancer, servers and the ${kind} store (CLI, real processes)`, () => {
    let stack: RealStack;
    let influxd: Influxd | null = null;
    before(async () => {
      if (kind === "influx") influxd = await startInfluxd();
      stack = await startStack({ servers: 2, store: influxd?.storeUrl("zmqchat_e2e") });
      for (const u of ["alice", "bob", "carol"]) {
        const r = await stack.cli(u, ["register"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`registered ${u}`));
      }
    });
    after(async () => {
      await stack?.stop();
      await influxd?.stop();
    });

    it("registering again is harmless", async () => {
      const r = await stack.cli("alice", ["register"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /already registered/);
    });

    it("1:1 both ways, seen identically by both, with JSON lines of the contract", async () => {
      const a = await stack.cli("alice", ["send", "bob", "hi bob, grüße 🚀"]);
      assert.equal(a.code, 0, a.stderr);
      const b = await stack.cli("bob", ["send", "alice", "-"], { stdin: "hello alice\nsecond line\n" });
      assert.equal(b.code, 0, b.stderr);
      const aliceView = parseLines((await stack.cli("alice", ["history", "bob", "--json"])).stdout);
      const bobView = parseLines((await stack.cli("bob", ["history", "alice", "--json"])).stdout);
      assert.deepEqual(
        bobView.map((m) => [m.from, m.to, m.group, m.text, m.verified]),
        [
          ["alice", "bob", null, "hi bob, grüße 🚀", true],
          ["bob", "alice", null, "hello alice\nsecond line", true],
        ],
      );
      // serverTime is when the message reached each mailbox: InfluxDB gives every mailbox copy
      // its own unique timestamp, so the two views may differ by a hair, never by more.
      // status and readBy (issue 17's receipts) are the author's view of their own messages: null in the
      // other's; unread (issue 19) is the reader's: false on their own messages.
      const withoutTime = (v: Line[]) =>
        v.map(({ serverTime: _t, ...rest }) => {
          const {
            status: _s,
            readBy: _r,
            unread: _u,
            ...same
          } = rest as typeof rest & { status?: unknown; readBy?: unknown; unread?: unknown };
          return same;
        });
      assert.deepEqual(withoutTime(aliceView), withoutTime(bobView));
      for (const [i, m] of aliceView.entries()) {
        assert.ok(Math.abs(Date.parse(m.serverTime) - Date.parse(bobView[i]!.serverTime)) < 1000);
      }
      assert.equal(bobView[0]!.id, a.stdout.trim(), "send prints the message id");
      assert.ok(!Number.isNaN(Date.parse(bobView[0]!.serverTime)));
      // The contract's fields first and in their order; fields added later (message actions) follow.
      assert.deepEqual(Object.keys(bobView[0]!), [
        "id",
        "from",
        "to",
        "group",
        "text",
        "sentAt",
        "serverTime",
        "verified",
        "replyTo",
        "edited",
        "deleted",
        "reactions",
        "file",
        "status",
        "readBy",
        "mention",
        "unread",
        "system",
      ]);
      assert.deepEqual(
        [
          bobView[0]!.replyTo,
          bobView[0]!.edited,
          bobView[0]!.deleted,
          bobView[0]!.reactions,
          bobView[0]!.file,
        ],
        [null, null, false, {}, null],
        "a plain message: no reply, never edited, not deleted, no reactions, no file",
      );
    });

    it("a group of three: every member's message reaches every member, in one order", async () => {
      const c = await stack.cli("alice", ["group", "create", "trio", "bob", "carol"]);
      assert.equal(c.code, 0, c.stderr);
      for (const u of ["bob", "carol"]) {
        const a = await stack.cli(u, ["group", "accept", "trio"]);
        assert.equal(a.code, 0, a.stderr);
      }
      for (const u of ["alice", "bob", "carol"]) {
        const r = await stack.cli(u, ["send", "--group", "trio", `${u} says hi`]);
        assert.equal(r.code, 0, r.stderr);
      }
      const views = await Promise.all(
        ["alice", "bob", "carol"].map(async (u) =>
          // Messages only: the group's system lines (issue 17) are rows with `system` set.
          parseLines((await stack.cli(u, ["history", "--group", "trio", "--json"])).stdout).filter(
            (m) => (m as { system?: unknown }).system === null,
          ),
        ),
      );
      for (const v of views) {
        assert.deepEqual(
          v.map((m) => `${m.from}:${m.text}:${m.group}:${m.to}:${m.verified}`),
          [
            "alice:alice says hi:trio:null:true",
            "bob:bob says hi:trio:null:true",
            "carol:carol says hi:trio:null:true",
          ],
        );
      }
      const groups = await stack.cli("carol", ["groups", "--json"]);
      assert.deepEqual(JSON.parse(groups.stdout.trim()), {
        name: "trio",
        owner: "alice",
        members: ["alice", "bob", "carol"],
        state: "member",
        invited: [],
      });
    });

    it("bob away: everything sent meanwhile shows up once, in order, via history and sync", async () => {
      const sent: string[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await stack.cli(i % 2 ? "carol" : "alice", ["send", "bob", `while away ${i}`]);
        assert.equal(r.code, 0, r.stderr);
        sent.push(r.stdout.trim());
      }
      const sync = await stack.cli("bob", ["sync"]);
      assert.equal(sync.code, 0, sync.stderr);
      assert.match(sync.stdout, /recovered \d+ messages/);
      const fromAlice = parseLines((await stack.cli("bob", ["history", "alice", "--json"])).stdout).filter(
        (m) => m.text.startsWith("while away"),
      );
      const fromCarol = parseLines((await stack.cli("bob", ["history", "carol", "--json"])).stdout);
      assert.deepEqual(
        fromAlice.map((m) => m.text),
        [0, 2, 4, 6].map((i) => `while away ${i}`),
      );
      assert.deepEqual(
        fromCarol.map((m) => m.text),
        [1, 3, 5, 7].map((i) => `while away ${i}`),
      );
      const again = await stack.cli("bob", ["sync"]);
      assert.match(again.stdout, /recovered 0 messages/);
    });

    it("listen prints what was missed, then live messages as they arrive", async () => {
      const { spawn } = await import("node:child_process");
      const { ZMQCHAT_BIN } = await import("../helpers/cli.js");
      const { join } = await import("node:path");
      const missed = await stack.cli("alice", ["send", "carol", "before listen"]);
      assert.equal(missed.code, 0);
      const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", "carol", "listen", "--json"], {
        env: {
          ...process.env,
          ZMQCHAT_HOME: join(stack.dir, "homes", "carol"),
          ZMQCHAT_ENDPOINT: stack.endpoint,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      try {
        await waitFor("the missed message", () => out.includes("before listen"), 30_000);
        const live = await stack.cli("alice", ["send", "carol", "while listening"]);
        assert.equal(live.code, 0);
        await waitFor("the live message", () => out.includes("while listening"), 10_000);
        const lines = parseLines(out).filter((m) => m.to === "carol");
        assert.deepEqual(
          lines.map((m) => m.text),
          ["before listen", "while listening"],
        );
        assert.deepEqual(
          lines.map((m) => (m as typeof m & { unread?: unknown }).unread),
          [true, true],
          "listen --json says unread as history --json does (nothing read them yet)",
        );
      } finally {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGINT");
        assert.equal(await exited, 0, "listen exits 0 when interrupted");
      }
      // A second listen starts after what the first printed.
      await stack.cli("alice", ["send", "carol", "after listen"]);
      const again = spawn(process.execPath, [ZMQCHAT_BIN, "--user", "carol", "listen", "--json"], {
        env: {
          ...process.env,
          ZMQCHAT_HOME: join(stack.dir, "homes", "carol"),
          ZMQCHAT_ENDPOINT: stack.endpoint,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out2 = "";
      again.stdout.on("data", (d) => {
        out2 += d;
      });
      try {
        await waitFor(
          "the message sent between the two listens",
          () => out2.includes("after listen"),
          30_000,
        );
        assert.ok(!out2.includes("before listen"), "nothing is printed twice");
      } finally {
        again.kill("SIGINT");
      }
    });

    it("the raw store holds only ciphertext", async () => {
      const secret = `plaintext-canary-${kind}-7731`;
      assert.equal((await stack.cli("alice", ["send", "bob", secret])).code, 0);
      assert.equal((await stack.cli("alice", ["send", "--group", "trio", `${secret}-group`])).code, 0);
      const seen = await stack.cli("bob", ["history", "alice", "--json"]);
      assert.match(seen.stdout, new RegExp(secret), "bob reads it");
      let raw = "";
      if (influxd) {
        for (const q of ["SHOW MEASUREMENTS", "SELECT * FROM /.*/"]) {
          const res = await fetch(`${influxd.url}/query?db=zmqchat_e2e&q=${encodeURIComponent(q)}`);
          raw += await res.text();
        }
        assert.match(raw, /mailbox|message|envelope/i, "the query did read the stored data");
      } else {
        const { readFileSync, existsSync } = await import("node:fs");
        const path = stack.store.replace(/^sqlite:/, "");
        for (const f of [path, `${path}-wal`]) if (existsSync(f)) raw += readFileSync(f).toString("latin1");
      }
      assert.ok(raw.length > 1000, "the store was read");
      assert.equal(raw.includes(secret), false, "no message text in clear in the store");
    });

    it("bad input gets clear errors and the contract's exit codes", async () => {
      const cases: Array<[string, string[], number, RegExp, string?]> = [
        ["alice", ["send", "nobody", "hi"], 5, /no user named nobody/],
        ["alice", ["send", "--group", "nogroup", "hi"], 5, /no group named nogroup/],
        ["alice", ["send", "bob", "   "], 2, /empty/],
        ["alice", ["send", "bob", "x".repeat(16 * 1024 + 1)], 2, /limit/],
        ["alice", ["send", "Bob!", "hi"], 2, /not a valid user name/],
        ["alice", ["send"], 2, /send to whom/],
        ["alice", ["history"], 2, /history of whom/],
        ["alice", ["send", "bob", "hi", "--timeout", "soon"], 2, /not a duration/],
        ["bob", ["group", "add", "trio", "bob"], 4, /only alice/],
        ["nobody", ["send", "bob", "hi"], 4, /no profile for nobody/],
        ["alice", ["frobnicate"], 2, /unknown command/],
      ];
      const outsider = await stack.cli("dave", ["register"]);
      assert.equal(outsider.code, 0);
      cases.push(["dave", ["send", "--group", "trio", "let me in"], 4, /not a member of trio/]);
      for (const [user, args, code, message] of cases) {
        const r = await stack.cli(user, args);
        assert.equal(r.code, code, `${args.join(" ")}: expected exit ${code}, got ${r.code}: ${r.stderr}`);
        assert.match(r.stderr, message, `${args.join(" ")}`);
      }
    });

    it("an unreachable service exits 3 within the timeout", async () => {
      const r = await stack.cli("alice", ["send", "bob", "hello?", "--timeout", "1s"], {
        endpoint: "tcp://127.0.0.1:9",
      });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /did not answer/);
    });

    it("a server killed with SIGKILL mid-stream: every acknowledged message arrives once", async () => {
      const acked: string[] = [];
      const failures: string[] = [];
      const texts = Array.from({ length: 24 }, (_, i) => `burst ${i}`);
      let killed = false;
      // Three senders at a time, as several scripts would; one server dies after a few messages.
      for (let i = 0; i < texts.length; i += 3) {
        if (i >= 6 && !killed) {
          (await stack.leadServer()).child.kill("SIGKILL");
          killed = true;
        }
        const rs = await Promise.all(
          texts.slice(i, i + 3).map((t) => stack.cli("alice", ["send", "bob", t, "--timeout", "20s"])),
        );
        for (const r of rs)
          if (r.code === 0) acked.push(r.stdout.trim());
          else failures.push(`exit ${r.code}: ${r.stderr.trim()}`);
      }
      assert.deepEqual(failures, [], "with one server left, every send is acknowledged");
      assert.equal(acked.length, texts.length);
      const history = parseLines(
        (await stack.cli("bob", ["history", "alice", "--json", "--limit", "1000"])).stdout,
      );
      const ids = history.map((m) => m.id);
      for (const id of acked)
        assert.equal(ids.filter((x) => x === id).length, 1, `message ${id} is there exactly once`);
      assert.equal(new Set(ids).size, ids.length, "no message twice");
      await waitFor(
        "the balancer to drop the dead server",
        async () => (await stack.balancerHealth()).liveServers === 1,
      );
    });
  });
}
