import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { ChatClient, ClientEvent } from "../../core/client/client.js";
import { ZmqchatError } from "../../core/errors.js";
import { SIGNAL_RULE } from "../../server/ephemeral.js";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

type Client = ChatClient & { dispose(): Promise<void> };

/**
 * Typing and presence (issue 17) on a real stack: signals relayed live by the server
 * (server/ephemeral.ts), sealed and signed by the sender, never stored, rate-limited per sender.
 */
describe("ephemeral signals: typing and presence (real stack, three users)", () => {
  let stack: RealStack;
  const clients: Client[] = [];
  const events = new Map<string, ClientEvent[]>();
  const client = async (name: string) => {
    const c = await zeromqClient(stack.dir, name, stack.endpoints);
    clients.push(c);
    const seen: ClientEvent[] = [];
    events.set(name, seen);
    c.on((e) => seen.push(e));
    return c;
  };
  const typingSeen = (name: string, from: string, conv: string) =>
    events.get(name)!.find((e) => e.type === "typing" && e.from === from && e.conv === conv);
  const mailboxRows = (): number => {
    const db = new Database(stack.store.replace(/^sqlite:/, ""), { readonly: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM mailbox").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  let alice: Client;
  let bob: Client;
  let carol: Client;

  before(async () => {
    stack = await startStack({ servers: 1 });
    alice = await client("alice");
    bob = await client("bob");
    carol = await client("carol");
    await alice.groupCreate("team", ["bob", "carol"]);
    await bob.groupAnswer("team", "accept");
    await carol.groupAnswer("team", "accept");
    // Contacts know each other's keys from a first message, as after any conversation.
    await alice.send({ group: "team" }, "hello team");
    await bob.send({ user: "alice" }, "hi alice");
    for (const c of [alice, bob, carol]) await c.goLive();
  });
  after(async () => {
    for (const c of clients) await c.dispose().catch(() => {});
    await stack?.stop();
  });

  it("typing: reaches the peer (1:1) and the other members (group) live; nothing is stored", async () => {
    // The receipts of what goLive synced go out first, so the count below sees only signals.
    for (const c of [alice, bob, carol]) await c.flushReceipts();
    const rows = mailboxRows();
    await alice.typing({ user: "bob" });
    const t = await waitFor("bob sees alice typing", () => typingSeen("bob", "alice", "u:alice"), 20_000);
    assert.ok(Date.parse((t as { until: string }).until) > Date.now(), "shown for a while from now");
    await bob.typing({ group: "team" });
    await waitFor("alice sees bob typing in team", () => typingSeen("alice", "bob", "g:team"), 20_000);
    await waitFor("carol sees bob typing in team", () => typingSeen("carol", "bob", "g:team"), 20_000);
    assert.equal(typingSeen("bob", "bob", "g:team"), undefined, "not echoed to the sender");
    assert.equal(mailboxRows(), rows, "signals are never stored");
  });

  it("a message sent resets the typing throttle: the next key announces typing again at once", async () => {
    const seen = () =>
      events.get("alice")!.filter((e) => e.type === "typing" && e.from === "carol" && e.conv === "u:carol")
        .length;
    const before = seen();
    await carol.typing({ user: "alice" });
    // Within the throttle (3 s): not announced again (positive control of the throttle).
    await carol.typing({ user: "alice" });
    await carol.send({ user: "alice" }, "here it is");
    await carol.typing({ user: "alice" });
    await waitFor(
      "alice sees carol typing after her message",
      () => (seen() >= before + 2 ? true : undefined),
      20_000,
    );
    // The last signal arrived after the throttled one would have: there were two, not three.
    assert.equal(seen(), before + 2);
  });

  it("a signal relayed by someone else than its signer, or for another conversation, is dropped", async () => {
    // carol takes an envelope alice sealed for bob and relays it as her own: the relay says from
    // carol, the signature says alice; bob drops it.
    const sealSignal = (c: ChatClient, target: { user: string } | { group: string }, text: string) =>
      (c as unknown as { sealSignal(t: typeof target, x: string): Promise<unknown> }).sealSignal(
        target,
        text,
      );
    const stolen = await sealSignal(alice, { user: "bob" }, JSON.stringify({ kind: "typing" }));
    const sealed = Buffer.from(JSON.stringify(stolen)).toString("base64url");
    const before = events.get("bob")!.length;
    await carol.request("signal", { to: "bob", group: null, sealed });
    // alice's own envelope for bob, relayed to the team instead: routing differs from what she signed.
    await alice.request("signal", { to: null, group: "team", sealed });
    // Positive control last: carol's own typing signal arrives, so the two above had time to.
    await carol.typing({ user: "bob" });
    await waitFor("bob sees carol typing", () => typingSeen("bob", "carol", "u:carol"), 20_000);
    const after = events.get("bob")!.slice(before);
    assert.equal(
      after.filter((e) => e.type === "typing" && e.from === "alice").length,
      0,
      JSON.stringify(after),
    );
    assert.equal(typingSeen("carol", "alice", "g:team"), undefined);
  });

  it("a flood of signals is cut (rate_limited) and other users' signals still go through", async () => {
    const sealed = Buffer.from("x".repeat(64)).toString("base64url");
    let limited = 0;
    let relayed = 0;
    const started = Date.now();
    // Bounded: 400 requests at once, each to one recipient. The client waits out a refusal's
    // retry-after within its deadline, so a short deadline lets the refusals show.
    await Promise.all(
      Array.from({ length: 400 }, async () => {
        try {
          await carol.request("signal", { to: "alice", group: null, sealed }, { timeoutMs: 2000 });
          relayed++;
        } catch (err) {
          assert.ok(err instanceof ZmqchatError, String(err));
          if (err.code === "rate_limited") limited++;
          else assert.equal(err.code, "timeout", err.message);
        }
      }),
    );
    // The server's rule (SIGNAL_RULE): 200 at once, then 20 a second; the rest refused (and not waited out).
    const allowed = SIGNAL_RULE.burst + (SIGNAL_RULE.rate * (Date.now() - started)) / 1000;
    assert.ok(relayed <= allowed + 1, `${relayed} relayed, at most ${allowed} allowed`);
    assert.ok(
      relayed < 400,
      `the flood was cut (${relayed} relayed, ${limited} refused, the rest timed out)`,
    );
    // bob is not carol: his signal is relayed at once.
    const r = (await bob.request("signal", { to: "alice", group: null, sealed })) as { relayed: number };
    assert.equal(r.relayed, 1);
    const before = events.get("alice")!.length;
    await bob.typing({ user: "alice" });
    await waitFor(
      "alice sees bob typing during carol's flood",
      () =>
        events
          .get("alice")!
          .slice(before)
          .find((e) => e.type === "typing" && e.from === "bob"),
      20_000,
    );
  });

  it("presence: contacts --json shows online while bob's listen runs, offline after, null for one who shares none", async () => {
    // The in-process clients share the CLI profiles: close them so the CLI runs are the only users.
    for (const c of clients.splice(0)) await c.dispose();
    await ok("dave", ["register"]);
    const aliceListen = listen(stack, "alice");
    const bobListen = listen(stack, "bob");
    try {
      const presence = async (env: NodeJS.ProcessEnv = {}) => {
        const r = await stack.cli("alice", ["contacts", "--json"], { timeoutMs: 60_000, env });
        assert.equal(r.code, 0, r.stderr);
        const rows = r.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { name: string; presence: string | null });
        return Object.fromEntries(rows.map((x) => [x.name, x.presence]));
      };
      await waitFor("alice sees bob online", async () => (await presence()).bob === "online", 60_000);
      const now = await presence();
      assert.equal(now.dave, null, "dave never shared presence");
      assert.equal(now.alice, null, "no presence for yourself");
      assert.deepEqual(
        Object.keys(JSON.parse((await stack.cli("alice", ["contacts", "--json"])).stdout.split("\n")[0]!)),
        ["name", "status", "verified", "fingerprint", "presence"],
        "presence is added after the existing keys",
      );
      // Turned off in config: none shown.
      assert.equal((await presence({ ZMQCHAT_PRESENCE: "false" })).bob, null);
      await bobListen.stop();
      await waitFor("alice sees bob offline", async () => (await presence()).bob === "offline", 60_000);
    } finally {
      await bobListen.stop();
      await aliceListen.stop();
    }
  });

  const ok = async (user: string, args: string[]) => {
    const r = await stack.cli(user, args, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${user} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
});

/** `zmqchat listen` for `user` as a child process, stopped with SIGTERM. */
function listen(stack: RealStack, user: string) {
  const child: ChildProcess = spawn(process.execPath, [ZMQCHAT_BIN, "--user", user, "listen"], {
    env: { ...process.env, ZMQCHAT_HOME: join(stack.dir, "homes", user), ZMQCHAT_ENDPOINT: stack.endpoint },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr!.resume();
  const exited = new Promise((r) => child.once("exit", r));
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
