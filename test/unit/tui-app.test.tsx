/** The whole TUI (controller, store, panes) over the memory transport with real clients and servers. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cache } from "../../core/client/cache.js";
import type { ChatClient } from "../../core/client/client.js";
import { ensureIdentity, profilePaths } from "../../core/client/profile.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { contactList } from "../../tui/state.js";
import { startMemoryStack } from "../helpers/memory-stack.js";
import { KEYS, type MemoryStack, startTui } from "../helpers/tui-harness.js";

describe("the TUI over the memory transport", () => {
  let stack: MemoryStack;
  let bob: ChatClient;
  let carol: ChatClient;
  let homes = 0;
  const home = () => join(stack.dir, `tui-home-${++homes}`);

  before(async () => {
    stack = await startMemoryStack({ servers: 1 });
    bob = await stack.client("bob");
    carol = await stack.client("carol");
  });
  after(async () => {
    await stack.stop();
  });

  it("signs up on first run: asks for a name, refuses a taken one, registers a free one", async () => {
    const h = home();
    const t = await startTui(stack, { home: h });
    try {
      await t.waitFor("Choose your user name");
      await t.type("bob");
      await t.press(KEYS.enter);
      await t.waitFor("the name bob is taken; pick another");
      assert.equal(existsSync(profilePaths(h, "bob").identity), false, "the refused profile is removed");
      await t.press(KEYS.backspace, KEYS.backspace, KEYS.backspace);
      await t.type("dora");
      await t.press(KEYS.enter);
      await t.waitFor(/dora ● online memory:\/\/hub · fp \d{5} \d{5}/);
      assert.match(t.frame(), /welcome, dora! you are registered/);
    } finally {
      await t.close();
    }
  });

  it("chats 1:1: Ctrl-N opens a chat, Enter sends (✓ once stored), replies arrive; other chats count unread and ring", async () => {
    const t = await startTui(stack, { home: home(), user: "ann" });
    try {
      await t.waitFor("ann ● online");
      await t.press(KEYS.ctrlN);
      await t.waitFor("New chat with");
      await t.type("bob");
      await t.press(KEYS.enter);
      await t.waitFor("Message bob");
      await t.type("hello bob");
      await t.press(KEYS.enter);
      await t.waitFor(/✓ {2}ann {2}hello bob/);
      await bob.sync();
      assert.equal(bob.cache.history("u:ann", 1)[0]?.text, "hello bob");
      await bob.send({ user: "ann" }, "hi ann");
      await t.waitFor(/bob {2}hi ann/);
      assert.equal(t.rings(), 0, "no bell for the open conversation");
      await carol.send({ user: "ann" }, "psst");
      await t.waitFor((f) => /carol\s+(\? )?1[│║]/.test(f) && f.includes("1 unread"));
      assert.equal(t.rings(), 1, "a bell for a message elsewhere");
      assert.doesNotMatch(t.frame(), /psst/, "it stays out of the open conversation");
    } finally {
      await t.close();
    }
  });

  it("navigates: Tab and Shift-Tab between panes, j/k and Enter in lists, Esc back, '/' to the composer", async () => {
    const t = await startTui(stack, { home: home(), user: "nav" });
    try {
      await t.waitFor(/Contacts[\s\S]*bob[\s\S]*carol/);
      assert.equal(t.controller.state.focus, "contacts", "starts in Contacts, where ? is help");
      assert.match(t.frame(), /╔═+╗/, "the focused pane has a double border (no colour needed)");
      assert.match(t.frame(), /▶ Contacts/);
      const list = contactList(t.controller.state);
      await t.press("G", "g", "j", "j", "k");
      assert.equal(t.controller.state.selected.contacts, list[1]);
      await t.press(KEYS.down, KEYS.enter);
      await t.waitFor(`Message ${list[2]}`);
      assert.equal(t.controller.state.focus, "composer");
      await t.press(KEYS.shiftTab);
      assert.equal(t.controller.state.focus, "history");
      await t.press(KEYS.esc);
      await t.waitFor(() => t.controller.state.focus === "contacts");
      await t.press("/");
      assert.equal(t.controller.state.focus, "composer");
      assert.equal(t.controller.state.composer.text, "/");
      await t.press(KEYS.backspace, KEYS.tab, KEYS.tab, "?");
      await t.waitFor("Help — Esc, q or Enter closes");
      await t.press("q");
      await t.waitFor((f) => !f.includes("Help — Esc"));
    } finally {
      await t.close();
    }
  });

  it("composes multi-line messages: Alt-Enter and Ctrl-J add lines, a bracketed paste keeps its lines", async () => {
    const t = await startTui(stack, { home: home(), user: "poet" });
    try {
      await t.waitFor("poet ● online");
      await t.press("/msg bob\r");
      await t.waitFor("Message bob");
      await t.type("roses");
      await t.press(KEYS.altEnter);
      await t.type("violets");
      await t.press(KEYS.ctrlJ);
      await t.press(`${KEYS.pasteStart}pasted one\rpasted two${KEYS.pasteEnd}`);
      assert.equal(t.controller.state.composer.text, "roses\nviolets\npasted one\npasted two");
      await t.press(KEYS.enter);
      await t.waitFor(/✓ {2}poet {2}roses/);
      await bob.sync();
      assert.equal(bob.cache.history("u:poet", 1)[0]?.text, "roses\nviolets\npasted one\npasted two");
      const f = t.frame();
      for (const line of ["violets", "pasted one", "pasted two"])
        assert.ok(f.includes(line), `shows ${line}`);
    } finally {
      await t.close();
    }
  });

  it("runs slash commands: /group create|add|remove, /members, /msg, /fingerprint, /help, unknown ones, /quit", async () => {
    const t = await startTui(stack, { home: home(), user: "olga" });
    try {
      await t.waitFor("olga ● online");
      await t.press("/group create crew bob\r");
      await t.waitFor("created #crew: olga; invited bob");
      await t.waitFor(/Groups[\s\S]*▸#crew/);
      await bob.groupAnswer("crew", "accept");
      await t.waitFor("bob joined #crew");
      await t.press("/group add crew carol\r");
      await t.waitFor("#crew now has: olga, bob; invited carol");
      await carol.groupAnswer("crew", "accept");
      await t.waitFor("carol joined #crew");
      await t.press("/members\r");
      await t.waitFor("#crew: olga (owner), bob, carol");
      await t.press("hello crew\r");
      await t.waitFor(/✓ {2}olga {2}hello crew/);
      await carol.sync();
      assert.equal(carol.cache.history("g:crew", 1)[0]?.text, "hello crew");
      await t.press("/group remove crew carol\r");
      await t.waitFor("#crew is left with: olga, bob");
      await t.press("/msg nobody\r");
      await t.waitFor("no user named nobody");
      await t.press("/frobnicate\r");
      await t.waitFor("unknown command /frobnicate; /help lists them");
      await t.press("/fingerprint\r");
      await t.waitFor(/your fingerprint: (\d{5} ){11}\d{5}/);
      await t.press("/help\r");
      await t.waitFor("Help — Esc, q or Enter closes");
      await t.press(KEYS.esc);
      await t.waitFor((f) => !f.includes("Help — Esc"));
      await t.press("//not a command\r");
      await t.waitFor(/✓ {2}olga {2}\/not a command/);
      await t.press("/quit\r");
      await t.waitFor(() => t.exited());
    } finally {
      await t.close();
    }
  });

  it("invitations: marked in Groups with a prompt; a accepts, /decline declines, /leave leaves", async () => {
    const t = await startTui(stack, { home: home(), user: "pia", columns: 120 });
    try {
      await t.waitFor("pia ● online");
      await bob.groupCreate("band", ["pia"]);
      // Told live, or found when the lists are fetched (the invitation may precede the subscription).
      await t.waitFor(/#band\s+✉/);
      await t.waitFor("✉ 1 invited");
      await bob.send({ group: "band" }, "before pia joined");
      // Groups (one Tab from Contacts, where focus starts): select the invitation and accept it with a.
      await t.press(KEYS.tab);
      await t.press("j");
      await t.press("a");
      await t.waitFor("you joined #band");
      await t.waitFor((f) => !/#band\s+✉/.test(f));
      await t.press(KEYS.enter);
      await bob.send({ group: "band" }, "welcome pia");
      await t.waitFor("welcome pia");
      assert.ok(!t.frame().includes("before pia joined"), "nothing from before the invitation was accepted");
      await carol.groupCreate("choir", ["pia"]);
      await t.waitFor("carol invites you to #choir: /accept choir or /decline choir");
      await t.press("/");
      await t.type("decline choir");
      await t.press(KEYS.enter);
      await t.waitFor("you declined #choir");
      await t.waitFor((f) => !/│\s*▸?#choir/.test(f));
      await t.press("/leave band\r");
      await t.waitFor("you left #band");
      await t.waitFor("bob");
      const seen = t.frame();
      await bob.send({ group: "band" }, "after pia left");
      await bob.sync();
      assert.ok(bob.cache.history("g:band", 10).some((m) => m.text === "after pia left"));
      assert.ok(!t.frame().includes("after pia left") && !seen.includes("after pia left"));
    } finally {
      await t.close();
    }
  });

  it("warns loudly when a contact's keys change, holds messages to them, and /trust releases them", async () => {
    const h = home();
    // Pin keys for bob that are not his: the service's real ones then look like a change.
    const paths = profilePaths(h, "kim");
    ensureIdentity(paths, "kim");
    const cache = new Cache(paths.cache);
    cache.see("bob", generateIdentity("bob").publicKeys);
    await cache.close();
    const t = await startTui(stack, { home: h, user: "kim", columns: 120 });
    try {
      await t.waitFor((f) => f.includes("⚠ keys changed: bob") && /bob\s+⚠/.test(f));
      await t.press("/msg bob hello?\r");
      await t.waitFor(/✗ {2}kim {2}hello\?/);
      await t.waitFor(
        "not sent: bob's keys changed. Compare fingerprints (/fingerprint bob), then /trust bob",
      );
      assert.match(t.frame(), /⚠ bob's keys changed: \/fingerprint bob, then \/trust bob/);
      await t.press("/fingerprint bob\r");
      await t.waitFor(/bob's new keys \(untrusted\): (\d{5} ){11}\d{5}/);
      await t.press("/trust bob\r");
      await t.waitFor(/trusted bob's new keys; fingerprint [\d ]+/);
      assert.doesNotMatch(t.frame(), /keys changed: bob/);
      await t.press("hello again\r");
      await t.waitFor(/✓ {2}kim {2}hello again/);
      // The one refused before the trust goes with a key: Ctrl-R sends it again.
      assert.match(t.frame(), /✗ {2}kim {2}hello\?/);
      await t.press("\x12");
      await t.waitFor((f) => /✓ {2}kim {2}hello\?/.test(f) && !/✗ kim/.test(f));
      await bob.sync();
      assert.ok(
        bob.cache.history("u:kim", 10).some((m) => m.text === "hello?"),
        "bob got the resent one",
      );
    } finally {
      await t.close();
    }
  });

  it("scrolls a long history with PgUp/PgDn and Home/End, drawing only the visible rows", async () => {
    const lots = await stack.client("lots");
    await stack.client("reader");
    for (let i = 1; i <= 250; i++) await lots.send({ user: "reader" }, `line ${i}`);
    const t = await startTui(stack, {
      home: join(stack.dir, "homes", "reader"),
      user: "reader",
      pageSize: 100,
      rows: 20,
    });
    try {
      await t.waitFor(/lots\s+(\? )?99\+[│║]/);
      await t.press("/msg lots\r");
      await t.waitFor(/lots {2}line 250/);
      assert.doesNotMatch(t.frame(), /line 200\b/);
      await t.press(KEYS.pageUp, KEYS.pageUp);
      await t.waitFor("more below (End)");
      assert.doesNotMatch(t.frame(), /line 250/);
      await t.press(KEYS.end);
      await t.press(KEYS.shiftTab);
      await t.press(KEYS.end);
      await t.waitFor(/line 250/);
      await t.press(KEYS.home);
      await t.waitFor((f) => /lots {2}line 1\n/.test(f) || /lots {2}line 1 /.test(f));
      assert.match(t.frame(), /start of conversation/);
      assert.ok(t.controller.state.history!.items.length >= 250, "Home loaded the older pages");
      await t.press(KEYS.pageDown);
      await t.waitFor(/line 1[0-9]\b/);
    } finally {
      await t.close();
    }
  });

  it("/search jumps to a match far up a long conversation and marks it; n steps to older ones; says when nothing matches", async () => {
    const far = await stack.client("far");
    await stack.client("finder");
    for (let i = 1; i <= 300; i++) {
      await far.send({ user: "finder" }, i === 5 || i === 10 ? `line ${i} walrus` : `line ${i}`);
    }
    const t = await startTui(stack, {
      home: join(stack.dir, "homes", "finder"),
      user: "finder",
      pageSize: 100,
      rows: 20,
    });
    try {
      await t.waitFor(
        (f) =>
          /far\s+(\? )?99\+[│║]/.test(f) && t.controller.client?.cache.history("u:far", 1000).length === 300,
      );
      await t.press("/search zebra\r");
      await t.waitFor('no messages match "zebra"');
      assert.equal(t.controller.state.open, null, "nothing opened");
      await t.press("/search");
      await t.press("\r");
      await t.waitFor("usage: /search WORDS");
      await t.press("/search WALRUS\r");
      const f = await t.waitFor(/▶\d\d:\d\d\s+far {2}line 10 walrus/);
      assert.match(f, /2 matches for "WALRUS"; showing the newest \(1\/2\)/);
      assert.doesNotMatch(f, /line 300\b/, "scrolled far up");
      assert.match(f, /more below \(End\)/);
      assert.equal(t.controller.state.open, "u:far");
      await t.press("n");
      await t.waitFor(/▶\d\d:\d\d\s+far {2}line 5 walrus/);
      assert.doesNotMatch(t.frame(), /▶\d\d:\d\d\s+far {2}line 10/, "one mark at a time");
      assert.match(t.frame(), /showing the oldest \(2\/2\)/);
      await t.press("/search WALRUS\r");
      await t.waitFor(/▶\d\d:\d\d\s+far {2}line 10 walrus/);
      assert.match(t.frame(), /back at the newest/);
    } finally {
      await t.close();
    }
  });

  it("shares its profile with other processes: what they send or fetch shows up here", async () => {
    const h = home();
    const t = await startTui(stack, { home: h, user: "sam" });
    try {
      await t.waitFor("sam ● online");
      await t.press("/msg bob\r");
      await t.waitFor("Message bob");
      // A second client on the same profile (as `zmqchat send` would be), same cache file.
      const other = await stack.client("sam", { home: h });
      await other.send({ user: "bob" }, "sent by the CLI");
      await t.waitFor(/✓ {2}sam {2}sent by the CLI/);
      await bob.send({ user: "sam" }, "to both");
      await other.sync();
      await t.waitFor(/bob {2}to both/);
    } finally {
      await t.close();
    }
  });

  it("says when the terminal is too small and redraws on resize", async () => {
    const t = await startTui(stack, { home: home(), user: "tiny", columns: 50, rows: 12 });
    try {
      await t.waitFor("The terminal is too small (50×12)");
      await t.press("j", "\r");
      assert.equal(t.controller.state.composer.text, "", "keys other than Ctrl-C do nothing");
      t.stdout.resize(100, 30);
      await t.waitFor(/Contacts[\s\S]*tiny ● online/);
      t.stdout.resize(60, 16);
      await t.waitFor((f) => f.includes("Contacts") && f.split("\n").length <= 17);
      t.stdout.resize(59, 16);
      await t.waitFor("too small (59×16)");
      await t.press(KEYS.ctrlC);
      await t.waitFor(() => t.exited());
    } finally {
      await t.close();
    }
  });

  it("marks messages that fail verification", async () => {
    const h = home();
    const paths = profilePaths(h, "vera");
    ensureIdentity(paths, "vera");
    const cache = new Cache(paths.cache);
    cache.addMessages(
      [
        {
          id: "01900000-0000-7000-8000-000000000001",
          conv: "u:bob",
          from: "bob",
          to: "vera",
          group: null,
          text: "",
          sentAt: new Date().toISOString(),
          serverTime: new Date().toISOString(),
          cursor: "1",
          verified: false,
          problem: "bad signature: altered or forged",
          seq: 1,
          device: "0123456789abcdef",
        },
      ],
      null,
    );
    await cache.close();
    const t = await startTui(stack, { home: h, user: "vera" });
    try {
      await t.waitFor("vera ● online");
      await t.press("/msg bob\r");
      await t.waitFor(/⚠ {2}bob {2}\[not verified: bad signature: altered or forged\]/);
    } finally {
      await t.close();
    }
  });
});
