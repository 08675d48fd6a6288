import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SqliteStore } from "../../server/store/sqlite.js";
import { startMemoryStack } from "../helpers/memory-stack.js";

/**
 * A `send.many` to one group reads the group (and its member list) once per request, not once
 * per envelope (group fan-out profile, bench `group`); membership is still read fresh for every
 * request, so a member removed before a request cannot post in it.
 */
describe("send.many to a group", () => {
  it("reads the group once per request; every message arrives; a removed member is refused at the next request", async () => {
    const store = new SqliteStore(":memory:");
    let groupReads = 0;
    let appends = 0;
    const getGroup = store.getGroup.bind(store);
    store.getGroup = (name: string) => {
      groupReads++;
      return getGroup(name);
    };
    const appendMany = store.appendMany.bind(store);
    store.appendMany = (inputs) => {
      appends++;
      return appendMany(inputs);
    };
    const stack = await startMemoryStack({ store });
    try {
      const [alice, bob, carol] = [
        await stack.client("alice"),
        await stack.client("bob"),
        await stack.client("carol"),
      ];
      await alice.groupCreate("team", ["bob", "carol"]);
      await bob.groupAnswer("team", "accept");
      await carol.groupAnswer("team", "accept");
      groupReads = 0;
      appends = 0;
      const texts = Array.from({ length: 40 }, (_, i) => `burst ${i}`);
      await Promise.all(texts.map((t) => alice.send({ group: "team" }, t)));
      assert.ok(appends < texts.length, `the sends were batched (${appends} requests for ${texts.length})`);
      // One read per send request, and the one the sender's client makes to learn the members it seals for.
      assert.ok(groupReads <= appends + 1, `${groupReads} group reads for ${appends} send requests`);
      await bob.sync();
      assert.deepEqual(
        bob.cache
          .history("g:team", 100)
          .filter((m) => m.text.startsWith("burst"))
          .map((m) => m.text),
        texts,
      );
      await alice.groupChange("remove", "team", ["carol"]);
      await assert.rejects(carol.send({ group: "team" }, "still here?"), { code: "forbidden" });
    } finally {
      await stack.stop();
    }
  });
});
