import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Command, CommanderError } from "commander";
import { buildProgram } from "../../bin/main.js";
import { joinDashValues } from "../../bin/option-values.js";
import { ZmqchatError } from "../../core/errors.js";
import { quietIo as quiet, runCli } from "../helpers/cli.js";

/** The real command tree with `server`'s action replaced: it hands back what it was given. */
function program(): { program: Command; got: () => Record<string, unknown> | null } {
  const p = buildProgram(quiet, () => {});
  p.exitOverride();
  for (const c of p.commands) c.exitOverride();
  let got: Record<string, unknown> | null = null;
  p.commands
    .find((c) => c.name() === "server")!
    .action((opts: Record<string, unknown>) => {
      got = opts;
    });
  return { program: p, got: () => got };
}

const base = [
  "server",
  "--balancer",
  "tcp://127.0.0.1:1",
  "--store",
  "sqlite:/nonexistent",
  "--curve-keys",
  "k",
];
// Values as a Z85 key may begin: with the program's -V, -u or -e (commander took those), -h, or --.
const KEYS = ["-Vabcdefghijklmnopqrstuvwxyz0123456789AB", "-hx", "-ualice", "-etcp://x:1", "--double"];

describe("option values that start with a dash (a Z85 key may)", () => {
  it("without the join, commander gives such a value to the program's own option (positive control)", async () => {
    const { program: p, got } = program();
    await assert.rejects(
      p.parseAsync([...base, "--curve-balancer-key", KEYS[0]!], { from: "user" }),
      (e: unknown) => e instanceof CommanderError && e.code === "commander.version",
    );
    assert.equal(got(), null, "the server command never ran");
    const other = program();
    await other.program
      .parseAsync([...base, "--curve-balancer-key", "-ualice"], { from: "user" })
      .catch(() => {});
    assert.equal(other.program.opts().user, "alice", "-ualice became --user alice");
  });

  it("joined, every such value reaches the command's option and nothing else", async () => {
    for (const key of KEYS) {
      const { program: p, got } = program();
      await p.parseAsync(joinDashValues(p, [...base, "--curve-balancer-key", key]), { from: "user" });
      assert.equal(got()?.curveBalancerKey, key, key);
      assert.equal(p.opts().user, undefined, key);
      assert.equal(p.opts().endpoint, undefined, key);
    }
  });

  it("leaves everything else as it was: the program's options, values after them, '--', the = form", () => {
    const { program: p } = program();
    const same = [
      ["--user", "-Vx", "server", "--curve-balancer-key=-Vx"],
      ["-u", "alice", "send", "bob", "hi", "--reply-to", "0190aaaa"],
      ["send", "bob", "--", "--curve-balancer-key", "-Vx"],
      ["send", "bob", "-", "-g", "team"],
    ];
    for (const args of same) assert.deepEqual(joinDashValues(p, args), args);
    assert.deepEqual(joinDashValues(p, ["--user", "bob", "send", "-g", "-x", "hi"]), [
      "--user",
      "bob",
      "send",
      "-g-x",
      "hi",
    ]);
  });

  it("a text after the command that begins like -V is refused (exit 2), not taken for --version (exit 0)", async () => {
    const { program: p } = program();
    // Positive control: commander alone prints the version for it, and the command never runs.
    await assert.rejects(
      p.parseAsync(["send", "bob", "-Very well"], { from: "user" }),
      (e: unknown) => e instanceof CommanderError && e.code === "commander.version",
    );
    assert.throws(
      () => joinDashValues(p, ["--user", "alice", "send", "bob", "-Very well"]),
      (e: unknown) => e instanceof ZmqchatError && e.code === "usage" && /--version/.test(e.message),
    );
    // Still as before: -V itself, a text after --, -u with its value joined (commander's own form).
    assert.deepEqual(joinDashValues(p, ["send", "-V"]), ["send", "-V"]);
    assert.deepEqual(joinDashValues(p, ["send", "bob", "--", "-Very well"]), [
      "send",
      "bob",
      "--",
      "-Very well",
    ]);
    assert.deepEqual(joinDashValues(p, ["send", "bob", "hi", "-ualice"]), ["send", "bob", "hi", "-ualice"]);
    const home = mkdtempSync(join(tmpdir(), "zc-optval-"));
    after(() => rmSync(home, { recursive: true, force: true }));
    const r = await runCli(["--user", "alice", "send", "bob", "-Very well"], { home });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /^\d+\.\d+\.\d+/);
    assert.match(r.stderr, /-Very well would be read as --version/);
    assert.match(r.stderr, /put -- before .*: zmqchat send … -- '-Very well'/);
  });

  it("the zmqchat command itself: a server given such a key reports the bad key, not its version", async () => {
    const home = mkdtempSync(join(tmpdir(), "zc-optval-"));
    after(() => rmSync(home, { recursive: true, force: true }));
    const args = ["server", "--balancer", "tcp://127.0.0.1:1", "--store", `sqlite:${join(home, "s.db")}`];
    const r = await runCli(
      [...args, "--curve-keys", join(home, "none.curve"), "--curve-balancer-key", KEYS[0]!],
      {
        home,
        env: { ZMQCHAT_CLUSTER_SECRET: "0123456789abcdef0123456789abcdef" },
      },
    );
    assert.notEqual(r.code, 0, r.stdout);
    assert.doesNotMatch(r.stdout, /^\d+\.\d+\.\d+/);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot read the CURVE key file .*none\.curve/);
  });
});
