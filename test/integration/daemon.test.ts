import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { socketProblem } from "../../bin/daemon-client.js";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

/** The service's rates lifted (as the bench does): these tests send a thousand messages in one session. */
const LIFTED = {
  ZMQCHAT_RATE_CONNECTION: "1000000/s:1000000",
  ZMQCHAT_RATE_SESSION: "1000000/s:1000000",
};

type Reply = {
  id?: number | null;
  result?: unknown;
  error?: { code: number; message: string; data?: { code?: string; exit?: number } };
  method?: string;
  params?: unknown;
};

/** One JSON-RPC peer over a byte stream: requests by id, notifications collected. */
class Peer {
  readonly notifications: Array<{ method: string; params: unknown }> = [];
  readonly replies = new Map<number | null, Reply[]>();
  private buffered = "";
  private next = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();

  constructor(
    readonly input: NodeJS.ReadableStream,
    readonly output: NodeJS.WritableStream,
  ) {
    input.on("data", (d: Buffer) => {
      this.buffered += d.toString();
      let nl = this.buffered.indexOf("\n");
      while (nl !== -1) {
        const r = JSON.parse(this.buffered.slice(0, nl)) as Reply;
        this.buffered = this.buffered.slice(nl + 1);
        nl = this.buffered.indexOf("\n");
        if (r.method) this.notifications.push({ method: r.method, params: r.params });
        else {
          const id = r.id ?? null;
          this.replies.set(id, [...(this.replies.get(id) ?? []), r]);
          if (typeof id === "number") this.waiting.get(id)?.(r);
        }
      }
    });
  }

  static socket(path: string): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const s: Socket = connect(path, () => resolve(new Peer(s, s)));
      s.once("error", reject);
    });
  }

  static tcp(port: number): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const s: Socket = connect(port, "127.0.0.1", () => resolve(new Peer(s, s)));
      s.once("error", reject);
    });
  }

  raw(line: string): void {
    this.output.write(`${line}\n`);
  }

  call(method: string, params?: unknown): Promise<Reply> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.raw(JSON.stringify({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) }));
    });
  }

  messages(): Array<{ id: string; from: string; text: string }> {
    return this.notifications.filter((n) => n.method === "message").map((n) => n.params as never);
  }

  close(): void {
    (this.output as Socket).destroy?.();
  }
}

interface Daemon {
  child: ChildProcess;
  stderr: () => string;
  socket: string;
  /** Over stdin/stdout, with `--stdio`. */
  stdio: Peer | null;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

async function startDaemon(
  stack: RealStack,
  user: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<Daemon> {
  const home = join(stack.dir, "homes", user);
  const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", user, "daemon", ...args], {
    env: { ...process.env, ZMQCHAT_HOME: home, ZMQCHAT_ENDPOINT: stack.endpoint, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await waitFor(`${user}'s daemon to listen`, () => {
    if (child.exitCode !== null) throw new Error(`the daemon exited ${child.exitCode}: ${err}`);
    return (
      /listening on .*daemon\.sock/.test(err) && (!args.includes("--tcp") || /listening on tcp/.test(err))
    );
  });
  return {
    child,
    stderr: () => err,
    socket: join(home, "users", user, "daemon.sock"),
    stdio: args.includes("--stdio") ? new Peer(child.stdout!, child.stdin!) : null,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Sends `n` messages over one connection, all requested at once; checks each acknowledgement. */
async function sendMany(peer: Peer, to: string, n: number, tag: string): Promise<string[]> {
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) => peer.call("send", { to, text: `${tag} ${i}` })),
  );
  const ids = replies.map((r, i) => {
    assert.equal(r.error, undefined, `send ${i}: ${JSON.stringify(r.error)}`);
    const res = r.result as { id: string; serverTime: string };
    assert.match(res.id, UUID);
    assert.ok(!Number.isNaN(Date.parse(res.serverTime)));
    return res.id;
  });
  assert.equal(new Set(ids).size, n, "each send has an id of its own");
  return ids;
}

describe("zmqchat daemon (JSON-RPC 2.0)", () => {
  let stack: RealStack;

  before(async () => {
    stack = await startStack({ servers: 2, balancerEnv: LIFTED });
    for (const u of ["alice", "bob", "carol", "dave"])
      assert.equal((await stack.cli(u, ["register"])).code, 0);
  });
  after(async () => {
    await stack?.stop();
  });

  it("over the socket: 1,000 sends in flight at once, each acknowledged with its id; bob's mailbox holds each once", async () => {
    const d = await startDaemon(stack, "alice");
    try {
      const peer = await Peer.socket(d.socket);
      const ids = await sendMany(peer, "bob", 1000, "socket");
      const bob = await stack.cli("bob", ["history", "alice", "--limit", "5000", "--json"], {
        timeoutMs: 60_000,
      });
      assert.equal(bob.code, 0, bob.stderr);
      const got = bob.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).id as string);
      assert.deepEqual(new Set(got.filter((id) => ids.includes(id))).size, 1000);
      assert.equal(got.length, new Set(got).size);
      peer.close();
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });

  it("over stdio: 1,000 sends acknowledged with their ids; the daemon stops when stdin ends", async () => {
    const d = await startDaemon(stack, "carol", ["--stdio"]);
    const ids = await sendMany(d.stdio!, "dave", 1000, "stdio");
    assert.equal(ids.length, 1000);
    d.child.stdin!.end();
    assert.equal(await d.exited, 0);
    assert.equal(existsSync(d.socket), false, "the socket is removed on a clean stop");
  });

  it("a subscriber on another profile gets each message once, in order, also those sent while its daemon was stopped", async () => {
    const sender = await startDaemon(stack, "dave");
    const out = await Peer.socket(sender.socket);
    let bobD = await startDaemon(stack, "bob");
    try {
      let sub = await Peer.socket(bobD.socket);
      assert.deepEqual((await sub.call("subscribe")).result, { subscribed: true });
      // Bob's earlier messages (from the tests above) come first: they end at a marker.
      const [marker] = await sendMany(out, "bob", 1, "marker");
      await waitFor(
        "the backlog up to the marker",
        () => sub.messages().some((m) => m.id === marker),
        60_000,
      );
      const skip = sub.messages().findIndex((m) => m.id === marker) + 1;
      const first: string[] = [];
      for (let round = 0; round < 5; round++)
        first.push(...(await sendMany(out, "bob", 20, `live ${round}`)));
      await waitFor("100 live notifications", () => sub.messages().length - skip >= 100, 60_000);
      const live = sub.messages().slice(skip);
      assert.deepEqual(new Set(live.map((m) => m.id)), new Set(first));
      assert.equal(live.length, 100, "each exactly once");
      // In order: as bob's mailbox (and history) has them.
      const order = (
        (await sub.call("history", { with: "dave", limit: 1000 })).result as Array<{ id: string }>
      )
        .map((m) => m.id)
        .filter((id) => first.includes(id));
      assert.deepEqual(
        live.map((m) => m.id),
        order,
      );
      assert.ok(live.every((m) => m.from === "dave"));

      sub.close();
      assert.equal(await bobD.stop(), 0);
      const whileAway = await sendMany(out, "bob", 30, "away");
      bobD = await startDaemon(stack, "bob", ["--stdio"]);
      sub = bobD.stdio!;
      assert.deepEqual((await sub.call("subscribe")).result, { subscribed: true });
      await waitFor("the 30 sent while away", () => sub.messages().length >= 30, 60_000);
      const more = await sendMany(out, "bob", 10, "after");
      await waitFor("the 10 after", () => sub.messages().length >= 40, 60_000);
      const ids = sub.messages().map((m) => m.id);
      const orderAll = (
        (await sub.call("history", { with: "dave", limit: 1000 })).result as Array<{ id: string }>
      )
        .map((m) => m.id)
        .filter((id) => whileAway.includes(id) || more.includes(id));
      assert.deepEqual(
        ids,
        orderAll,
        "nothing handed before the stop again, nothing missing, in mailbox order",
      );
      assert.equal(ids.length, 40);
    } finally {
      out.close();
      await sender.stop();
      await bobD.stop();
    }
  });

  it("errors carry the CLI's code and exit status; bad JSON and bad params get the standard errors", async () => {
    await stack.cli("alice", ["group", "create", "club", "bob"]);
    const d = await startDaemon(stack, "carol");
    try {
      const p = await Peer.socket(d.socket);
      const code = (r: Reply) => [r.error?.code, r.error?.data?.code, r.error?.data?.exit];
      assert.deepEqual(code(await p.call("history", { with: "nobody" })), [-32000, "not_found", 5]);
      assert.deepEqual(code(await p.call("history", { group: "nogroup" })), [-32000, "not_found", 5]);
      assert.deepEqual(code(await p.call("history", { group: "club" })), [-32000, "forbidden", 4]);
      assert.deepEqual(code(await p.call("send", { group: "club", text: "let me in" })), [
        -32000,
        "forbidden",
        4,
      ]);
      assert.deepEqual(code(await p.call("group.add", { name: "club", members: ["dave"] })), [
        -32000,
        "forbidden",
        4,
      ]);
      assert.deepEqual(code(await p.call("send", { to: "nobody", text: "hi" })), [-32000, "not_found", 5]);
      assert.deepEqual(code(await p.call("send", { to: "Bad Name", text: "hi" })), [
        -32602,
        "bad_request",
        2,
      ]);
      assert.deepEqual(code(await p.call("send", { to: "bob", group: "club", text: "both" })), [
        -32602,
        "bad_request",
        2,
      ]);
      assert.deepEqual(code(await p.call("send", { to: "bob", text: "x".repeat(20_000) })), [
        -32000,
        "too_large",
        2,
      ]);
      assert.equal((await p.call("no.such.method")).error?.code, -32601);
      p.raw("{this is not json");
      await waitFor("the parse error", () => p.replies.get(null)?.some((r) => r.error?.code === -32700));
      // The daemon carries on.
      assert.ok(Array.isArray((await p.call("contacts")).result));
      p.close();
    } finally {
      await d.stop();
    }
  });

  it("two clients on one socket at once: each gets its own answers", async () => {
    const d = await startDaemon(stack, "alice");
    try {
      const [a, b] = await Promise.all([Peer.socket(d.socket), Peer.socket(d.socket)]);
      const [ia, ib] = await Promise.all([
        sendMany(a, "bob", 100, "from a"),
        sendMany(b, "carol", 100, "from b"),
      ]);
      const hist = async (peer: Peer, w: string, ids: string[]) =>
        (
          (await peer.call("history", { with: w, limit: 5000 })).result as Array<{ id: string; text: string }>
        ).filter((m) => ids.includes(m.id));
      const ha = await hist(b, "bob", ia);
      const hb = await hist(a, "carol", ib);
      assert.equal(ha.length, 100);
      assert.ok(ha.every((m) => m.text.startsWith("from a")));
      assert.equal(hb.length, 100);
      assert.ok(hb.every((m) => m.text.startsWith("from b")));
      a.close();
      b.close();
    } finally {
      await d.stop();
    }
  });

  it("a hostile local client: malformed lines, a huge line and a flood neither crash nor starve the daemon", async () => {
    const d = await startDaemon(stack, "dave");
    try {
      const evil = await Peer.socket(d.socket);
      for (const line of [
        "",
        "{",
        "[]",
        "null",
        '"x"',
        '{"jsonrpc":"1.0","id":999,"method":"x"}',
        "\u0000\u00ff",
      ])
        evil.raw(line);
      // 4 MiB on one line, sent in pieces, then a good request.
      const piece = "a".repeat(64 * 1024);
      for (let i = 0; i < 64; i++) evil.output.write(piece);
      evil.raw("");
      assert.ok(Array.isArray((await evil.call("groups")).result));
      assert.ok(
        evil.replies.get(null)?.some((r) => /longer than/.test(r.error?.message ?? "")),
        "the huge line is answered",
      );
      // A flood: 100,000 requests (6 MB) written without reading an answer.
      const flood = await Peer.socket(d.socket);
      (flood.input as Socket).pause();
      const n = 100_000;
      let text = "";
      for (let i = 0; i < n; i++)
        text += `${JSON.stringify({ jsonrpc: "2.0", id: 100_000 + i, method: "unsubscribe" })}\n`;
      flood.output.write(text);
      // Everyone else is served meanwhile…
      const other = await Peer.socket(d.socket);
      assert.ok(Array.isArray((await other.call("contacts")).result));
      // …and the daemon stopped reading the flooder once its answers waited unread: the rest of the
      // requests are still on the flooder's side, not in the daemon's memory.
      assert.ok((flood.output as Socket).writableLength > 1024 * 1024, "the daemon pushed back");
      // When the flooder reads, it gets every answer, once.
      (flood.input as Socket).resume();
      await waitFor("every flood answer", () => flood.replies.size >= n, 60_000);
      assert.equal([...flood.replies.values()].flat().length, n);
      for (const p of [evil, flood, other]) p.close();
      assert.equal(d.child.exitCode, null, "still running");
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });

  it("the socket is 0600 in a 0700 directory, and a socket anyone can open is not used (positive control)", async () => {
    const d = await startDaemon(stack, "alice");
    try {
      assert.equal(statSync(d.socket).mode & 0o777, 0o600);
      assert.equal(statSync(join(d.socket, "..")).mode & 0o777, 0o700);
      assert.equal(socketProblem(d.socket), null);
      // Through the daemon: a command with an endpoint where nothing listens still works.
      const away = { endpoint: "tcp://127.0.0.1:9" };
      const via = await stack.cli("alice", ["contacts", "--json"], away);
      assert.equal(via.code, 0, via.stderr);
      // An --endpoint given on the command line is that command's own service: no daemon.
      const own = await stack.cli("alice", ["--endpoint", "tcp://127.0.0.1:9", "contacts", "--json"]);
      assert.equal(own.code, 3, "with its own --endpoint the command did not use the daemon");
      chmodSync(d.socket, 0o666);
      assert.match(socketProblem(d.socket) ?? "", /mode is 0666, not 0600/);
      const refused = await stack.cli("alice", ["contacts", "--json"], away);
      assert.match(refused.stderr, /not using the daemon socket .*mode is 0666/);
      assert.equal(refused.code, 3, "it did not use the daemon (and nothing else listens)");
      const direct = await stack.cli("alice", ["contacts", "--json"]);
      assert.equal(direct.code, 0);
      assert.equal(direct.stdout, via.stdout);
    } finally {
      await d.stop();
    }
  });

  it("headless commands print the same, with the same exit codes, through the daemon and without it", async () => {
    await stack.cli("alice", ["group", "create", "same", "bob"]);
    await stack.cli("bob", ["group", "accept", "same"]);
    await stack.cli("bob", ["send", "--group", "same", "hello group"]);
    await stack.cli("bob", ["send", "alice", "line\u001b[31m red"]);
    const commands = [
      ["history", "bob"],
      ["history", "bob", "--json", "--limit", "3"],
      ["history", "--group", "same", "--json"],
      ["history", "--group", "same"],
      ["history", "nobody"],
      ["history", "--group", "club"],
      ["contacts"],
      ["contacts", "--json"],
      ["groups"],
      ["groups", "--json"],
      ["sync", "--json"],
      ["sync"],
      ["group", "add", "same", "nobody"],
      ["group", "remove", "same", "dave"],
      ["group", "create", "same"],
      ["send", "nobody", "hi"],
      ["send", "--group", "nogroup", "hi"],
    ];
    const direct = [];
    for (const c of commands) direct.push(await stack.cli("alice", c));
    const d = await startDaemon(stack, "alice");
    try {
      // Through the daemon: the commands' own endpoint has nothing listening.
      const away = { endpoint: "tcp://127.0.0.1:9" };
      for (const [i, c] of commands.entries()) {
        const via = await stack.cli("alice", c, away);
        assert.deepEqual(via, direct[i], `zmqchat ${c.join(" ")}`);
      }
      // A send prints an id, acknowledged through the daemon.
      const sent = await stack.cli("alice", ["send", "bob", "through the daemon"], away);
      assert.equal(sent.code, 0, sent.stderr);
      assert.match(sent.stdout.trim(), UUID);
      const text = await stack.cli("alice", ["send", "--group", "same"], { ...away, stdin: "from stdin\n" });
      assert.equal(text.code, 0, text.stderr);
    } finally {
      await d.stop();
    }
  });

  it("one daemon per profile; a killed daemon's socket breaks neither commands nor the next daemon", async () => {
    const d = await startDaemon(stack, "bob");
    const second = spawn(process.execPath, [ZMQCHAT_BIN, "--user", "bob", "daemon"], {
      env: {
        ...process.env,
        ZMQCHAT_HOME: join(stack.dir, "homes", "bob"),
        ZMQCHAT_ENDPOINT: stack.endpoint,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    second.stderr!.on("data", (x) => {
      err += x;
    });
    const code = await new Promise((resolve) => second.once("exit", resolve));
    assert.equal(code, 4);
    assert.match(err, /a daemon already runs for bob/);
    await d.stop("SIGKILL");
    assert.ok(existsSync(d.socket), "the killed daemon left its socket file");
    const sent = await stack.cli("bob", ["send", "alice", "after the crash"]);
    assert.equal(sent.code, 0, sent.stderr);
    const again = await startDaemon(stack, "bob");
    try {
      const p = await Peer.socket(again.socket);
      assert.ok(Array.isArray((await p.call("groups")).result));
      p.close();
    } finally {
      assert.equal(await again.stop(), 0);
    }
  });

  it("sendFile and download by absolute path over the socket; refused over TCP even with the token", async () => {
    const d = await startDaemon(stack, "dave", ["--tcp", "127.0.0.1:0"]);
    try {
      const secret = randomBytes(300_000);
      const path = join(stack.dir, "dave-report.bin");
      writeFileSync(path, secret);
      const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
      const code = (r: Reply) => [r.error?.data?.code, r.error?.data?.exit];

      // Over TCP (authorized with the token) a caller may not make the daemon read or write local files.
      const port = Number(/listening on tcp 127\.0\.0\.1:(\d+)/.exec(d.stderr())![1]);
      const t = await Peer.tcp(port);
      const token = readFileSync(
        join(stack.dir, "homes", "dave", "users", "dave", "daemon.token"),
        "utf8",
      ).trim();
      assert.deepEqual((await t.call("auth", { token })).result, { authorized: true });
      assert.deepEqual(code(await t.call("sendFile", { to: "bob", path })), ["forbidden", 4]);
      assert.deepEqual(code(await t.call("download", { id: randomUUID(), out: "/tmp" })), ["forbidden", 4]);
      t.close();

      // Positive control: the same call over the socket sends the file; bob's CLI fetches it whole.
      const p = await Peer.socket(d.socket);
      assert.deepEqual(code(await p.call("sendFile", { to: "bob", path: "relative.bin" })), [
        "bad_request",
        2,
      ]);
      const sent = await p.call("sendFile", { to: "bob", path, text: "the report" });
      assert.equal(sent.error, undefined, JSON.stringify(sent.error));
      const id = (sent.result as { id: string }).id;
      assert.match(id, UUID);
      const bobDir = join(stack.dir, "bob-daemon-dl");
      mkdirSync(bobDir);
      const got = await stack.cli("bob", ["download", id, "--out", bobDir]);
      assert.equal(got.code, 0, got.stderr);
      assert.equal(sha(readFileSync(got.stdout.trim())), sha(secret));

      // And the daemon downloads: dave saves the file he sent.
      const out = join(stack.dir, "dave-copy.bin");
      const saved = await p.call("download", { id, out });
      assert.equal(saved.error, undefined, JSON.stringify(saved.error));
      assert.deepEqual(saved.result, { path: out, bytes: secret.length });
      assert.equal(sha(readFileSync(out)), sha(secret));
      assert.deepEqual(
        code(await p.call("download", { id, out })),
        ["conflict", 4],
        "never replaced without force",
      );
      p.close();
    } finally {
      await d.stop();
    }
  });

  it("TCP: loopback only unless --allow-remote; every connection must present the token (0600 file)", async () => {
    const home = join(stack.dir, "homes", "carol");
    const remote = await stack.cli("carol", ["daemon", "--tcp", "0.0.0.0:0"]);
    assert.equal(remote.code, 2);
    assert.match(remote.stderr, /not loopback/);
    const d = await startDaemon(stack, "carol", ["--tcp", "127.0.0.1:0"]);
    try {
      const port = Number(/listening on tcp 127\.0\.0\.1:(\d+)/.exec(d.stderr())![1]);
      const tokenFile = join(home, "users", "carol", "daemon.token");
      assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
      const p = await Peer.tcp(port);
      assert.equal((await p.call("contacts")).error?.data?.code, "unauthorized");
      assert.equal((await p.call("auth", { token: "guess" })).error?.data?.code, "unauthorized");
      assert.equal((await p.call("contacts")).error?.data?.code, "unauthorized");
      const token = readFileSync(tokenFile, "utf8").trim();
      assert.deepEqual((await p.call("auth", { token })).result, { authorized: true });
      assert.ok(Array.isArray((await p.call("contacts")).result));
      p.close();
    } finally {
      await d.stop();
    }
  });
});
