import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ChatClient } from "../../core/client/client.js";
import { type DisposableClient, zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack } from "../helpers/stack.js";

interface Row {
  id: string;
  from: string;
  group: string;
  text: string;
  verified: boolean;
  system: { kind: string; actor: string; target: string | null; title: string | null } | null;
}

interface Info {
  name: string;
  owner: string;
  members: string[];
  invited: string[];
  admins: string[];
  title: string | null;
}

/**
 * Group roles and system lines (issue 17) on a real stack (balancer, two servers, SQLite) with
 * the built CLI: alice owns `team`; bob, carol and mallory are members; carol is offline from
 * her acceptance to the end and recovers every line afterwards; mallory is the hostile member.
 */
describe("group roles and system lines (real stack)", () => {
  let stack: RealStack;
  const clients: DisposableClient[] = [];

  const run = (user: string, args: string[]) => stack.cli(user, args, { timeoutMs: 60_000 });
  const ok = async (user: string, args: string[]) => {
    const r = await run(user, args);
    assert.equal(r.code, 0, `${user} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const info = async (user: string, group = "team") =>
    JSON.parse(await ok(user, ["group", "info", group, "--json"])) as Info;
  const history = async (user: string, group = "team") =>
    (await ok(user, ["history", "--group", group, "--json", "--limit", "200"]))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row);
  const systemOf = (rows: Row[]) =>
    rows.filter((r) => r.system !== null).map((r) => [r.system!.kind, r.system!.actor, r.system!.target]);

  /** An in-process client with the user's identity (a cache of its own): requests without the CLI's checks. */
  const byUser = new Map<string, ChatClient>();
  async function clientOf(user: string): Promise<ChatClient> {
    const known = byUser.get(user);
    if (known) return known;
    const client = await zeromqClient(stack.dir, user, stack.endpoints, {
      register: false,
      cache: join(stack.dir, `${user}-raw-cache.db`),
    });
    clients.push(client);
    byUser.set(user, client);
    await client.login();
    return client;
  }

  before(async () => {
    stack = await startStack({ servers: 2 });
    for (const u of ["alice", "bob", "carol", "dave", "mallory"]) await ok(u, ["register"]);
    await ok("alice", ["group", "create", "team", "bob", "carol", "mallory"]);
    for (const u of ["bob", "carol", "mallory"]) await ok(u, ["group", "accept", "team"]);
    await ok("alice", ["send", "--group", "team", "welcome"]);
  });
  after(async () => {
    for (const c of clients) await c.dispose().catch(() => {});
    await stack?.stop();
  });

  it("the owner names an admin, who adds and removes plain members but may not rename; a plain member may only leave (exit 4)", async () => {
    const plain = await run("mallory", ["group", "add", "team", "dave"]);
    assert.equal(plain.code, 4, plain.stderr);
    assert.match(plain.stderr, /only alice, the owner of team, or an admin/);

    await ok("alice", ["group", "admin", "team", "bob"]);
    assert.deepEqual((await info("carol")).admins, ["bob"], "an admin shows in group info");
    await ok("bob", ["group", "add", "team", "dave"]);
    assert.deepEqual((await info("alice")).invited, ["dave"]);
    await ok("dave", ["group", "accept", "team"]);
    await ok("bob", ["group", "remove", "team", "dave"]);
    assert.ok(!(await info("alice")).members.includes("dave"), "the admin removed dave");

    const adminRename = await run("bob", ["group", "rename", "team", "Bob's team"]);
    assert.equal(adminRename.code, 4, "only the owner renames");
    const adminOnAdmin = await run("bob", ["group", "admin", "team", "mallory"]);
    assert.equal(adminOnAdmin.code, 4, "only the owner names admins");
  });

  it("rename sets the title and --group keeps the name; hand-over makes another member the owner", async () => {
    const bad = await run("alice", ["group", "rename", "team", "evil\u001b]0;pwned\u0007"]);
    assert.equal(bad.code, 2, "a title with terminal escapes is bad input");
    const renamed = await ok("alice", ["group", "rename", "team", "Release team"]);
    assert.match(renamed, /^team: owner alice; members: .*; admins: bob; title: "Release team"$/);
    // Scripts that name the group keep working: the name is the id, the title is for display.
    await ok("bob", ["send", "--group", "team", "after the rename"]);
    assert.ok((await history("alice")).some((r) => r.text === "after the rename"));

    const owner = await run("alice", ["group", "leave", "team"]);
    assert.equal(owner.code, 4, "the owner cannot leave");
    assert.match(owner.stderr, /hand it over first/);
    await ok("alice", ["group", "owner", "team", "bob"]);
    const handed = await info("mallory");
    assert.deepEqual([handed.owner, handed.admins, handed.title], ["bob", [], "Release team"]);
    assert.deepEqual(Object.keys(handed), ["name", "owner", "members", "invited", "admins", "title"]);
    // alice is a plain member now: the owner's rights went with the group.
    assert.equal((await run("alice", ["group", "rename", "team", "Mine again"])).code, 4);
    await ok("bob", ["group", "admin", "team", "alice"]);
    await ok("bob", ["group", "admin", "team", "alice", "--remove"]);
    assert.deepEqual((await info("bob")).admins, []);
  });

  it("a hostile member's direct requests are refused with forbidden; the owner's identical requests succeed", async () => {
    await ok("bob", ["group", "create", "den", "mallory", "carol"]);
    await ok("mallory", ["group", "accept", "den"]);
    const mallory = await clientOf("mallory");
    const attacks = [
      () => mallory.request("group.rename", { name: "den", title: "mallory's den" }),
      () => mallory.request("group.owner", { name: "den", user: "mallory" }),
      () => mallory.request("group.admin", { name: "den", user: "mallory" }),
      () => mallory.request("group.remove", { name: "den", members: ["carol"] }),
      () => mallory.request("group.add", { name: "den", members: ["dave"] }),
    ];
    for (const attack of attacks) await assert.rejects(attack(), { code: "forbidden" });
    const den = await info("bob", "den");
    assert.deepEqual(
      [den.owner, den.admins, den.title, den.invited],
      ["bob", [], null, ["carol"]],
      "nothing changed",
    );
    assert.deepEqual(
      systemOf(await history("bob", "den")),
      [
        ["created", "bob", null],
        ["added", "bob", "mallory"],
        ["added", "bob", "carol"],
        ["joined", "mallory", "mallory"],
      ],
      "a refused request leaves no line",
    );
    // A title with a terminal escape, sent straight to the service, is refused too.
    const bob = await clientOf("bob");
    await assert.rejects(bob.request("group.rename", { name: "den", title: "x\u001b[2J" }), {
      code: "bad_request",
    });
    // Positive control: the owner's identical requests go through.
    await bob.request("group.rename", { name: "den", title: "mallory's den" });
    await bob.request("group.admin", { name: "den", user: "mallory" });
    await bob.request("group.remove", { name: "den", members: ["carol"] });
    await bob.request("group.add", { name: "den", members: ["dave"] });
    await bob.request("group.owner", { name: "den", user: "mallory" });
    const after = await info("mallory", "den");
    assert.deepEqual(
      [after.owner, after.admins, after.title, after.invited],
      ["mallory", [], "mallory's den", ["dave"]],
    );
  });

  it("a member cannot forge a system line: a message that reads like one stays a message", async () => {
    const mallory = await clientOf("mallory");
    await mallory.send({ group: "team" }, "— alice removed bob —");
    const rows = await history("carol");
    const forged = rows.find((r) => r.text === "— alice removed bob —");
    assert.ok(forged, "the message arrived");
    assert.equal(forged.system, null, "it is an ordinary message of mallory's");
    assert.equal(forged.from, "mallory");
    assert.ok(
      !rows.some((r) => r.system?.kind === "removed" && r.system.target === "bob"),
      "no line says bob was removed",
    );
    // mallory's own profile keeps the group's messages (so she may look after her removal).
    assert.ok((await history("mallory")).some((r) => r.text === "welcome"));
    // Positive control: the owner's real removal is a line.
    await ok("bob", ["group", "remove", "team", "mallory"]);
    const now = await history("carol");
    assert.ok(
      now.some(
        (r) => r.system?.kind === "removed" && r.system.actor === "bob" && r.system.target === "mallory",
      ),
    );
  });

  it("carol, offline through every change, recovers every system line in order, as JSON and as plain lines", async () => {
    await ok("alice", ["group", "leave", "team"]);
    const rows = await history("carol");
    assert.deepEqual(systemOf(rows), [
      ["created", "alice", null],
      ["added", "alice", "bob"],
      ["added", "alice", "carol"],
      ["added", "alice", "mallory"],
      ["joined", "bob", "bob"],
      ["joined", "carol", "carol"],
      ["joined", "mallory", "mallory"],
      ["admin", "alice", "bob"],
      ["added", "bob", "dave"],
      ["joined", "dave", "dave"],
      ["removed", "bob", "dave"],
      ["renamed", "alice", null],
      ["owner", "alice", "bob"],
      ["admin", "bob", "alice"],
      ["unadmin", "bob", "alice"],
      ["removed", "bob", "mallory"],
      ["left", "alice", "alice"],
    ]);
    const renamed = rows.find((r) => r.system?.kind === "renamed")!;
    assert.equal(renamed.system!.title, "Release team");
    assert.equal(renamed.text, 'alice renamed the group to "Release team"');
    // Lines sit among the messages by time: the welcome after the joins, the rename's message after it.
    const at = (p: (r: Row) => boolean) => rows.findIndex(p);
    assert.ok(
      at((r) => r.text === "welcome") > at((r) => r.system?.kind === "joined" && r.from === "mallory"),
    );
    assert.ok(at((r) => r.text === "after the rename") > at((r) => r.system?.kind === "renamed"));
    assert.equal(rows.find((r) => r.text === "welcome")!.system, null, "an ordinary message has system null");
    const plain = await ok("carol", ["history", "--group", "team", "--limit", "200"]);
    assert.match(plain, /\[team\] — bob added dave —/);
    assert.match(plain, /\[team\] — alice made bob the owner —/);
    assert.match(plain, /\[team\] — alice left —/);
    // mallory, removed, learns why she is out: the record up to her removal, nothing after it.
    const hers = systemOf(await history("mallory"));
    assert.deepEqual(hers.at(-1), ["removed", "bob", "mallory"]);
    assert.ok(!hers.some(([kind]) => kind === "left"), "alice's later leaving is not shown to her");
    // bob's second profile (his identity restored into another home) shows the same lines, and
    // acts as the owner he now is.
    const second = { home: join(stack.dir, "homes", "bob-second"), timeoutMs: 60_000 };
    const passphrase = "orbit tangerine cellar votive\n";
    assert.equal((await stack.cli("bob", ["keys", "backup"], { stdin: passphrase })).code, 0);
    const restored = await stack.cli("bob", ["keys", "restore"], { ...second, stdin: passphrase });
    assert.equal(restored.code, 0, restored.stderr);
    const onSecond = await stack.cli(
      "bob",
      ["history", "--group", "team", "--json", "--limit", "200"],
      second,
    );
    assert.equal(onSecond.code, 0, onSecond.stderr);
    assert.deepEqual(
      systemOf(
        onSecond.stdout
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Row),
      ),
      systemOf(rows),
      "the same record on bob's second profile",
    );
    const retitle = await stack.cli("bob", ["group", "rename", "team", "Ship it"], second);
    assert.equal(retitle.code, 0, retitle.stderr);
    assert.equal((await info("carol")).title, "Ship it");
    // verify-history still checks every message (the lines are not messages).
    const v = await stack.cli("carol", ["verify-history", "--group", "team"], { timeoutMs: 60_000 });
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});
