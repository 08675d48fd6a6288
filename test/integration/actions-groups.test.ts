import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type RealStack, startStack } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  text: string;
  system: { kind: string; users: string[] } | null;
}

/**
 * Group system lines (issue 17) on a real stack with the built CLI: alice owns team, bob and carol
 * are members, carol offline the whole time; dave is added, joins, is removed; bob leaves.
 */
describe("group system lines: added, joined, removed, left (real stack)", () => {
  let stack: RealStack;
  const ok = async (user: string, args: string[]) => {
    const r = await stack.cli(user, args, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${user} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const history = async (user: string) =>
    (await ok(user, ["history", "--group", "team", "--json"]))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);

  before(async () => {
    stack = await startStack({ servers: 1 });
    for (const u of ["alice", "bob", "carol", "dave"]) await ok(u, ["register"]);
    await ok("alice", ["group", "create", "team", "bob", "carol"]);
    await ok("bob", ["group", "accept", "team"]);
    await ok("carol", ["group", "accept", "team"]);
  });
  after(async () => {
    await stack?.stop();
  });

  it("every change is a signed line in every member's history; carol, offline the whole time, recovers them all", async () => {
    await ok("alice", ["send", "--group", "team", "welcome"]);
    await ok("alice", ["group", "add", "team", "dave"]);
    await ok("dave", ["group", "accept", "team"]);
    await ok("alice", ["group", "remove", "team", "dave"]);
    await ok("bob", ["group", "leave", "team"]);
    // The owner cannot leave: refused, and no line says she did.
    const owner = await stack.cli("alice", ["group", "leave", "team"]);
    assert.equal(owner.code, 4, owner.stderr);
    const expected = [
      ["alice", "added", ["dave"], "alice added dave"],
      ["dave", "joined", [], "dave joined"],
      ["alice", "removed", ["dave"], "alice removed dave"],
      ["bob", "left", [], "bob left"],
    ];
    for (const user of ["carol", "alice"]) {
      const lines = await history(user);
      const system = lines.filter((l) => l.system !== null);
      assert.deepEqual(
        system.map((l) => [l.from, l.system!.kind, l.system!.users, l.text]),
        expected,
        `${user}'s history`,
      );
      assert.equal(lines.find((l) => l.text === "welcome")!.system, null, "an ordinary message has system null");
    }
    // Lines are numbered with the messages: carol's history verifies.
    const v = await stack.cli("carol", ["verify-history", "--group", "team"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    // bob, who left, kept what he had: the lines up to his own.
    const bobLines = (await stack.cli("bob", ["history", "--group", "team", "--json"])).stdout;
    assert.match(bobLines, /alice removed dave/);
  });
});
