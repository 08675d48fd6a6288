import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { ClientEvent } from "../../core/client/client.js";
import { zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

type Client = Awaited<ReturnType<typeof zeromqClient>>;

/**
 * Joining a group is an invitation the user accepts; anyone but the owner may leave; nothing
 * from a group one declined or left reaches one, neither stored nor live.
 */
describe("group consent: invitations, accept, decline, leave (CLI and clients, real processes)", () => {
  let stack: RealStack;
  const clients: Client[] = [];
  before(async () => {
    stack = await startStack({ servers: 2 });
    for (const u of ["alice", "bob", "carol", "dave"]) {
      const r = await stack.cli(u, ["register"]);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    for (const c of clients) await c.dispose().catch(() => {});
    await stack?.stop();
  });

  /** Copies of group messages in `owner`'s mailbox, straight from the store. */
  function stored(owner: string, group: string): number {
    const db = new Database(stack.store.replace(/^sqlite:/, ""), { readonly: true });
    try {
      const rows = db.prepare("SELECT envelope FROM mailbox WHERE owner = ?").all(owner) as Array<{
        envelope: string;
      }>;
      return rows.filter((r) => (JSON.parse(r.envelope) as { group: string | null }).group === group).length;
    } finally {
      db.close();
    }
  }

  const groupsOf = async (u: string) =>
    (await stack.cli(u, ["groups", "--json"])).stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { name: string; state: string; members: string[]; invited: string[] });

  it("create invites; an invitee sees the invitation, cannot post, and gets nothing until accepting", async () => {
    const c = await stack.cli("alice", ["group", "create", "crew", "bob", "carol"]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /crew: alice; invited: bob, carol/);
    assert.deepEqual(await groupsOf("bob"), [
      { name: "crew", owner: "alice", members: ["alice"], state: "invited", invited: ["bob", "carol"] },
    ]);
    const text = await stack.cli("bob", ["groups"]);
    assert.match(text.stdout, /you are invited: zmqchat group accept crew/);
    const post = await stack.cli("bob", ["send", "--group", "crew", "not yet"]);
    assert.equal(post.code, 4, post.stderr);
    assert.equal((await stack.cli("alice", ["send", "--group", "crew", "before anyone joined"])).code, 0);
    assert.equal(stored("bob", "crew"), 0, "an invitation stores nothing for the invitee");
    const accept = await stack.cli("bob", ["group", "accept", "crew"]);
    assert.equal(accept.code, 0, accept.stderr);
    assert.equal(accept.stdout.trim(), "joined crew");
    assert.equal((await stack.cli("alice", ["send", "--group", "crew", "welcome bob"])).code, 0);
    // Positive control: the same query sees a member's copy.
    assert.equal(stored("bob", "crew"), 1);
    const history = await stack.cli("bob", ["history", "--group", "crew", "--json"]);
    assert.deepEqual(
      history.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { text: string; system: unknown })
        // Messages only: the group's system lines (issue 17) are rows with `system` set.
        .filter((m) => m.system === null)
        .map((m) => m.text),
      ["welcome bob"],
    );
    assert.equal((await stack.cli("bob", ["send", "--group", "crew", "hi all"])).code, 0);
  });

  it("decline: the invitation is gone and nothing from the group reaches the user", async () => {
    const d = await stack.cli("carol", ["group", "decline", "crew"]);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout.trim(), "declined crew");
    assert.deepEqual(await groupsOf("carol"), []);
    assert.equal((await stack.cli("alice", ["send", "--group", "crew", "after carol declined"])).code, 0);
    assert.equal(stored("carol", "crew"), 0);
    const again = await stack.cli("carol", ["group", "accept", "crew"]);
    assert.equal(again.code, 5, "no invitation left to accept");
    assert.match(again.stderr, /no invitation to crew/);
  });

  it("leave: a member leaves, is not stored for nor sent live; members are told; the owner cannot leave", async () => {
    const dave = await zeromqClient(stack.dir, "dave", stack.endpoints, { register: false });
    const alice = await zeromqClient(stack.dir, "alice", stack.endpoints, { register: false });
    clients.push(dave, alice);
    const aliceEvents: ClientEvent[] = [];
    const daveEvents: ClientEvent[] = [];
    alice.on((e) => aliceEvents.push(e));
    dave.on((e) => daveEvents.push(e));
    await alice.goLive();
    await dave.goLive();
    await alice.groupChange("add", "crew", ["dave"]);
    await waitFor("dave to be told of his invitation", () =>
      daveEvents.some((e) => e.type === "group" && e.notice.change === "invited" && e.notice.user === "dave"),
    );
    await dave.groupAnswer("crew", "accept");
    await waitFor("alice to be told dave joined", () =>
      aliceEvents.some((e) => e.type === "group" && e.notice.change === "joined" && e.notice.user === "dave"),
    );
    await alice.send({ group: "crew" }, "dave is in");
    await waitFor("dave to get the group message live", () =>
      daveEvents.some((e) => e.type === "message" && e.message.text === "dave is in"),
    );
    const before = stored("dave", "crew");
    const leave = await stack.cli("dave", ["group", "leave", "crew"]);
    assert.equal(leave.code, 0, leave.stderr);
    await waitFor("alice to be told dave left", () =>
      aliceEvents.some((e) => e.type === "group" && e.notice.change === "left" && e.notice.user === "dave"),
    );
    const seen = daveEvents.length;
    await alice.send({ group: "crew" }, "after dave left");
    const bob = await zeromqClient(stack.dir, "bob", stack.endpoints, { register: false });
    clients.push(bob);
    await bob.sync();
    assert.ok(
      bob.cache.history("g:crew", 50).some((m) => m.text === "after dave left"),
      "bob, a member, got it",
    );
    assert.equal(stored("dave", "crew"), before, "nothing stored for dave after he left");
    assert.equal(
      daveEvents.slice(seen).filter((e) => e.type === "message").length,
      0,
      "nothing delivered live to dave",
    );
    const owner = await stack.cli("alice", ["group", "leave", "crew"]);
    assert.equal(owner.code, 4, owner.stderr);
    assert.match(owner.stderr, /owner cannot leave/);
  });
});
