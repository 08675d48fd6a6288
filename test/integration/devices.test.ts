import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

interface Line {
  id: string;
  from: string;
  to: string | null;
  text: string;
  verified: boolean;
}
interface DeviceLine {
  id: string;
  name: string;
  added: string;
  lastSeen: string | null;
  current: boolean;
  revoked: string | null;
}
const parse = <T>(s: string): T[] =>
  s
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as T);

describe("devices: link, list, revoke (issue #19)", () => {
  let stack: RealStack;
  const laptop = () => join(stack.dir, "homes", "alice-laptop");
  before(async () => {
    stack = await startStack({ servers: 2 });
    for (const u of ["alice", "bob", "carol"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
  });
  after(async () => {
    await stack?.stop();
  });

  const ok = async (user: string, args: string[], home?: string) => {
    const r = await stack.cli(user, args, { home, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const history = async (user: string, peer: string, home?: string) =>
    parse<Line>(await ok(user, ["history", peer, "--json", "--limit", "1000"], home));
  const addCode = async (user: string, extra: string[] = []) =>
    JSON.parse(await ok(user, ["devices", "add", "--json", ...extra])) as {
      code: string;
      expires: string;
      device: string;
      fingerprint: string;
    };
  const listen = (home: string) => {
    const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", "alice", "listen", "--json"], {
      env: { ...process.env, ZMQCHAT_HOME: home, ZMQCHAT_ENDPOINT: stack.endpoint },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const seen = { out: "" };
    child.stdout!.on("data", (d) => {
      seen.out += d;
    });
    return { child, seen };
  };
  const stop = async (child: ChildProcess) => {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGINT");
    await exited;
  };

  it("a linked device gets the history, bob's messages live and after being away, alice's own sends; revoked, it is cut off while the others carry on verified", async () => {
    await ok("alice", ["send", "bob", "one, before the link"]);
    await ok("bob", ["send", "alice", "two, before the link"]);
    const fp = JSON.parse(await ok("alice", ["keys", "show", "--json"])) as { fingerprint: string };

    const offer = await addCode("alice", ["--name", "laptop"]);
    assert.match(offer.code, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
    assert.equal(offer.fingerprint, fp.fingerprint);
    const linked = await ok("alice", ["devices", "link", offer.code.toLowerCase()], laptop());
    assert.ok(linked.includes(fp.fingerprint), "the new device shows the same safety number");
    assert.match(linked, /recovered 2 message/);
    assert.deepEqual(
      (await history("alice", "bob", laptop())).map((m) => [m.from, m.text, m.verified]),
      [
        ["alice", "one, before the link", true],
        ["bob", "two, before the link", true],
      ],
    );

    // Live on both devices.
    const d1 = listen(join(stack.dir, "homes", "alice"));
    const d2 = listen(laptop());
    try {
      await waitFor(
        "both listening",
        () => d1.seen.out.includes("two, before") && d2.seen.out.includes("two, before"),
        30_000,
      );
      await ok("bob", ["send", "alice", "three, live"]);
      await waitFor(
        "bob's live message on both devices",
        () => d1.seen.out.includes("three, live") && d2.seen.out.includes("three, live"),
        15_000,
      );
    } finally {
      await stop(d1.child);
      await stop(d2.child);
    }

    // What alice sends from device 1 shows on device 2 as hers (listen prints only others' messages).
    await ok("alice", ["send", "bob", "four, from device 1"]);
    const mine = (await history("alice", "bob", laptop())).find((m) => m.text === "four, from device 1");
    assert.deepEqual([mine?.from, mine?.to, mine?.verified], ["alice", "bob", true]);

    // Away: both devices recover what was sent meanwhile.
    await ok("bob", ["send", "alice", "five, while away"]);
    for (const home of [undefined, laptop()])
      assert.ok(
        (await history("alice", "bob", home)).some((m) => m.text === "five, while away" && m.verified),
      );

    const list = parse<DeviceLine>(await ok("alice", ["devices", "--json"]));
    assert.equal(list.length, 2, JSON.stringify(list));
    const current = list.find((d) => d.current)!;
    const other = list.find((d) => !d.current)!;
    assert.equal(other.id, offer.device);
    assert.equal(other.name, "laptop");
    assert.ok(other.lastSeen !== null && current.lastSeen !== null);
    assert.deepEqual(Object.keys(current), ["id", "name", "added", "lastSeen", "current", "revoked"]);
    const fromLaptop = parse<DeviceLine>(await ok("alice", ["devices", "--json"], laptop()));
    assert.equal(fromLaptop.find((d) => d.current)?.id, offer.device, "the laptop marks itself");

    // A third device, the desk, linked too: after the revocation it gets the new keys pushed to it.
    const desk = join(stack.dir, "homes", "alice-desk");
    await ok("alice", ["devices", "link", (await addCode("alice", ["--name", "desk"])).code], desk);

    // Revoke the laptop from device 1.
    const revoked = await ok("alice", ["devices", "revoke", offer.device]);
    assert.match(revoked, /revoked/);
    assert.match(revoked, /pushed the new keys/);
    // The desk holds the rotated-out keys: its login is refused, it takes the pushed keys and carries on.
    const carried = await stack.cli("alice", ["sync"], { home: desk });
    assert.equal(carried.code, 0, carried.stderr);
    assert.match(carried.stderr, /took the new keys another device of yours pushed here/);
    await ok("alice", ["sync"], desk);
    const again = await ok("alice", ["devices", "fetch-keys"], desk);
    assert.match(again, /already has your newest keys/, "fetch-keys still works (nothing new to take)");
    const cut = await stack.cli("alice", ["sync"], { home: laptop() });
    assert.equal(cut.code, 4, cut.stderr);
    // The revoked device posing as a new device, with the keys it held: refused too (the keys rotated).
    const file = join(laptop(), "users", "alice", "identity.json");
    const id = JSON.parse(readFileSync(file, "utf8")) as { device: string };
    writeFileSync(file, JSON.stringify({ ...id, device: "00000000000000aa" }), { mode: 0o600 });
    const posing = await stack.cli("alice", ["sync"], { home: laptop() });
    assert.equal(posing.code, 4, posing.stderr);

    // Bob sees a signed rotation (a normal key change), trusts it, and both carry on verified.
    await ok("alice", ["send", "bob", "seven, after the revocation"]);
    const held = await stack.cli("bob", ["send", "alice", "six, after the revocation"]);
    assert.equal(held.code, 4, "bob's sends wait until he trusts alice's new keys");
    const fpBob = await ok("bob", ["keys", "fingerprint", "alice"]);
    assert.match(fpBob, /signed by their previous key/);
    await ok("bob", ["keys", "trust", "alice"]);
    await ok("bob", ["send", "alice", "six, after the revocation"]);
    const aliceView = await history("alice", "bob");
    assert.ok(aliceView.every((m) => m.verified));
    assert.ok(aliceView.some((m) => m.text === "six, after the revocation"));
    const bobView = await history("bob", "alice");
    assert.ok(bobView.every((m) => m.verified));
    assert.ok(bobView.some((m) => m.text === "seven, after the revocation"));
    await ok("alice", ["verify-history", "bob"]);
    const deskView = await history("alice", "bob", desk);
    assert.ok(
      deskView.some((m) => m.text === "six, after the revocation" && m.verified),
      "the desk carries on",
    );
    await ok("alice", ["verify-history", "bob"], desk);
    await ok("bob", ["verify-history", "alice"]);

    // The laptop never sees a later message: its history (offline cache) stops before the revocation.
    const late = await stack.cli("alice", ["history", "bob", "--json"], { home: laptop() });
    assert.ok(!late.stdout.includes("after the revocation"), late.stdout);
    const after2 = parse<DeviceLine>(await ok("alice", ["devices", "--json"]));
    assert.ok(after2.find((d) => d.id === offer.device)?.revoked, "listed as revoked");
  });

  it("every device registers its own key when it logs in: one made by `keys restore`, which ran no devices command, gets the keys pushed after a revocation", async () => {
    const home = (n: string) => join(stack.dir, "homes", `erin-${n}`);
    const pass = "orbit tangerine cellar votive\n";
    await ok("erin", ["register"], home("first"));
    const backup = await stack.cli("erin", ["keys", "backup"], { home: home("first"), stdin: pass });
    assert.equal(backup.code, 0, backup.stderr);
    const restore = await stack.cli("erin", ["keys", "restore"], { home: home("restored"), stdin: pass });
    assert.equal(restore.code, 0, restore.stderr);
    await ok("erin", ["sync"], home("restored"));
    // A third device, linked, to revoke from the first.
    const offer = JSON.parse(await ok("erin", ["devices", "add", "--json"], home("first"))) as {
      code: string;
      device: string;
    };
    await ok("erin", ["devices", "link", offer.code], home("linked"));
    const revoked = await ok("erin", ["devices", "revoke", offer.device], home("first"));
    const restoredId = (
      JSON.parse(readFileSync(join(home("restored"), "users", "erin", "identity.json"), "utf8")) as {
        device: string;
      }
    ).device;
    assert.match(revoked, new RegExp(`pushed the new keys, sealed, to [^\\n]*${restoredId}`), revoked);
    const carried = await stack.cli("erin", ["sync"], { home: home("restored") });
    assert.equal(carried.code, 0, carried.stderr);
    assert.match(carried.stderr, /took the new keys another device of yours pushed here/);
  });

  it("devices rename names this device or another; another user cannot rename yours; bad input exits 2, an unknown id 5", async () => {
    const home = (n: string) => join(stack.dir, "homes", `frank-${n}`);
    await ok("frank", ["register"], home("a"));
    const offer = JSON.parse(
      await ok("frank", ["devices", "add", "--json", "--name", "old name"], home("a")),
    ) as {
      code: string;
      device: string;
    };
    await ok("frank", ["devices", "link", offer.code], home("b"));
    const names = async () =>
      Object.fromEntries(
        parse<DeviceLine>(await ok("frank", ["devices", "--json"], home("a"))).map((d) => [d.id, d.name]),
      );
    assert.equal((await names())[offer.device], "old name");
    assert.match(await ok("frank", ["devices", "rename", offer.device, "the laptop"], home("a")), /renamed/);
    const own = parse<DeviceLine>(await ok("frank", ["devices", "--json"], home("b"))).find(
      (d) => d.current,
    )!;
    await ok("frank", ["devices", "rename", own.id, "laptop, as it calls itself"], home("b"));
    assert.equal((await names())[offer.device], "laptop, as it calls itself");
    // carol, who knows the id, cannot rename frank's device: it is not hers (positive control above).
    const carol = await stack.cli("carol", ["devices", "rename", offer.device, "pwned"]);
    assert.equal(carol.code, 5, carol.stderr);
    assert.equal((await names())[offer.device], "laptop, as it calls itself");
    const bad = await stack.cli("frank", ["devices", "rename", offer.device, "two\nlines"], {
      home: home("a"),
    });
    assert.equal(bad.code, 2, bad.stderr);
    const badId = await stack.cli("frank", ["devices", "rename", "laptop", "x"], { home: home("a") });
    assert.equal(badId.code, 2, badId.stderr);
    const unknown = await stack.cli("frank", ["devices", "rename", "0000000000000000", "x"], {
      home: home("a"),
    });
    assert.equal(unknown.code, 5, unknown.stderr);
  });

  it("a wrong, an expired and a reused code are refused with exit 4; guessing voids a code", async () => {
    const home = (n: string) => join(stack.dir, "homes", `carol-${n}`);
    const wrongSecret = (code: string) => {
      const c = code.replace(/-/g, "");
      const flipped = c.slice(0, 4) + [...c.slice(4)].map((ch) => (ch === "0" ? "1" : "0")).join("");
      return flipped.match(/.{4}/g)!.join("-");
    };

    // Wrong: right slot, wrong secret. Then the right code still works once (one miss does not void it)…
    const a = await addCode("carol");
    const wrong = await stack.cli("carol", ["devices", "link", wrongSecret(a.code)], { home: home("a") });
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.match(wrong.stderr, /wrong link code/);
    const right = await stack.cli("carol", ["devices", "link", a.code], {
      home: home("a2"),
      timeoutMs: 60_000,
    });
    assert.equal(right.code, 0, right.stderr);
    // …and never twice.
    const reused = await stack.cli("carol", ["devices", "link", a.code], {
      home: home("a3"),
      timeoutMs: 60_000,
    });
    assert.equal(reused.code, 4, reused.stderr);

    // Expired.
    const b = await addCode("carol", ["--ttl", "1"]);
    await waitFor("the code to expire", () => Date.now() > Date.parse(b.expires) + 250, 10_000);
    const expired = await stack.cli("carol", ["devices", "link", b.code], { home: home("b") });
    assert.equal(expired.code, 4, expired.stderr);

    // Guessing: five wrong secrets for a slot void the code, so the right one is refused after.
    const c = await addCode("carol");
    for (let i = 0; i < 5; i++) {
      const guess =
        c.code.slice(0, 5) +
        String(i)
          .repeat(14)
          .replace(/(.{4})(?=.)/g, "$1-")
          .slice(0, 14);
      const g = await stack.cli("carol", ["devices", "link", guess], { home: home(`g${i}`) });
      assert.equal(g.code, 4, g.stderr);
    }
    const late = await stack.cli("carol", ["devices", "link", c.code], {
      home: home("c"),
      timeoutMs: 60_000,
    });
    assert.equal(late.code, 4, late.stderr);
    assert.match(late.stderr, /void/);

    const malformed = await stack.cli("carol", ["devices", "link", "ABC"], { home: home("m") });
    assert.equal(malformed.code, 2, malformed.stderr);
  });
});
