/** Message actions from the other side, live in the TUI over the memory transport (issue 17). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ChatClient } from "../../core/client/client.js";
import { startMemoryStack } from "../helpers/memory-stack.js";
import { KEYS, type MemoryStack, startTui } from "../helpers/tui-harness.js";

describe("actions arriving live in the TUI", () => {
  let stack: MemoryStack;
  let bob: ChatClient;

  before(async () => {
    stack = await startMemoryStack({ servers: 1 });
    bob = await stack.client("bob");
    await bob.goLive();
  });
  after(async () => {
    await stack.stop();
  });

  it("an edit, a reaction and a delete from bob change ann's open history in place; bob's forged edit of ann's message changes nothing", async () => {
    const notified: string[] = [];
    const t = await startTui(stack, {
      home: join(stack.dir, "tui-live-actions"),
      user: "ann",
      notify: (text) => notified.push(text),
    });
    try {
      await t.waitFor("ann ● online");
      await t.type("/msg bob");
      await t.press(KEYS.enter);
      await t.waitFor("Message bob");
      await t.type("my own words");
      await t.press(KEYS.enter);
      await t.waitFor(/✓ {2}ann {2}my own words/);
      const mine = t.controller.state.history!.items.find((i) => i.text === "my own words")!;
      const theirs = await bob.send({ user: "ann" }, "bob's first words");
      await t.waitFor(/bob {2}bob's first words/);

      await bob.send(
        { user: "ann" },
        "bob's better words",
        {},
        { action: { kind: "edit", target: theirs.id } },
      );
      await t.waitFor(/bob {2}bob's better words \(edited\)/);
      await bob.send(
        { user: "ann" },
        "🎉",
        {},
        {
          action: { kind: "react", target: mine.id, emoji: "🎉", remove: false },
        },
      );
      await t.waitFor(/🎉 bob/);

      // Attack: bob signs an edit of ann's message. It is stored (the server cannot tell), and
      // the TUI shows ann's words unchanged. Positive control: bob's own edit above did show.
      await bob.send(
        { user: "ann" },
        "words ann never wrote",
        {},
        { action: { kind: "edit", target: mine.id } },
      );
      await bob.send(
        { user: "ann" },
        "(deleted a message)",
        {},
        { action: { kind: "delete", target: theirs.id } },
      );
      await t.waitFor(/bob {2}\(message deleted\)/);
      assert.match(t.frame(), /ann {2}my own words/);
      assert.doesNotMatch(t.frame(), /never wrote/);
      assert.equal(t.controller.state.history!.items.length, 2, "actions add no rows of their own");

      // A mention rings and asks for a desktop notification.
      await bob.send({ user: "ann" }, "hey @ann, look");
      await t.waitFor(/hey @ann, look/);
      assert.deepEqual(notified, ["zmqchat: bob mentioned you in bob"]);
    } finally {
      await t.close();
    }
  });
});
