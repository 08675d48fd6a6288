import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SETTING_ENV } from "../../core/config/config.js";
import { ZMQCHAT_BIN } from "../helpers/cli.js";

/** Runs the built CLI with exactly this environment (no ZMQCHAT_* leaking in from the caller). */
function zmqchat(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ZMQCHAT_")));
  const r = spawnSync(process.execPath, [ZMQCHAT_BIN, ...args], {
    env: { ...clean, ...env },
    encoding: "utf8",
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

type Shown = Record<string, { value: unknown; source: string; from: string; exists?: boolean }>;

describe("zmqchat config show (built CLI)", () => {
  let dir: string;
  let home: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "zmqchat-config-cli-"));
    home = join(dir, "home");
    mkdirSync(home);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("shows defaults, the home and the config file path with their sources", () => {
    const r = zmqchat(["--home", home, "config", "show", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as Shown;
    assert.deepEqual(shown.home, { value: home, source: "flag", from: "--home" });
    assert.deepEqual(shown.configFile, {
      value: join(home, "config.json"),
      source: "default",
      from: "default",
      exists: false,
    });
    assert.deepEqual(shown.user, { value: null, source: "default", from: "default" });
    assert.deepEqual(shown.endpoint, { value: "tcp://127.0.0.1:5570", source: "default", from: "default" });
    assert.deepEqual(shown.bell, { value: true, source: "default", from: "default" });
    assert.deepEqual(shown.logLevel, { value: "info", source: "default", from: "default" });
  });

  it("merges flag > env > file > default field by field and says where each value came from", () => {
    const file = join(home, "config.json");
    writeFileSync(
      file,
      JSON.stringify({ user: "filey", endpoint: "tcp://file:1", bell: false, logLevel: "error" }),
    );
    const r = zmqchat(["--user", "flaggy", "config", "show", "--json"], {
      ZMQCHAT_HOME: home,
      ZMQCHAT_ENDPOINT: "tcp://env:2",
      ZMQCHAT_USER: "envy",
      ZMQCHAT_LOG_LEVEL: "warn",
    });
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as Shown;
    assert.deepEqual(shown.home, { value: home, source: "env", from: "ZMQCHAT_HOME" });
    assert.deepEqual(shown.configFile, { value: file, source: "default", from: "default", exists: true });
    assert.deepEqual(shown.user, { value: "flaggy", source: "flag", from: "--user" });
    assert.deepEqual(shown.endpoint, { value: "tcp://env:2", source: "env", from: "ZMQCHAT_ENDPOINT" });
    assert.deepEqual(shown.logLevel, { value: "warn", source: "env", from: "ZMQCHAT_LOG_LEVEL" });
    assert.deepEqual(shown.bell, { value: false, source: "file", from: file });
  });

  it("reads the file --config or ZMQCHAT_CONFIG names, the flag first", () => {
    const a = join(dir, "a.json");
    const b = join(dir, "b.json");
    writeFileSync(a, JSON.stringify({ user: "from-a" }));
    writeFileSync(b, JSON.stringify({ user: "from-b" }));
    const byFlag = JSON.parse(
      zmqchat(["--home", home, "--config", a, "config", "show", "--json"], { ZMQCHAT_CONFIG: b }).stdout,
    ) as Shown;
    assert.deepEqual(byFlag.configFile, { value: a, source: "flag", from: "--config", exists: true });
    assert.deepEqual(byFlag.user, { value: "from-a", source: "file", from: a });
    const byEnv = JSON.parse(
      zmqchat(["--home", home, "config", "show", "--json"], { ZMQCHAT_CONFIG: b }).stdout,
    ) as Shown;
    assert.deepEqual(byEnv.configFile, { value: b, source: "env", from: "ZMQCHAT_CONFIG", exists: true });
    assert.equal(byEnv.user?.value, "from-b");
  });

  it("prints one aligned line per setting for people", () => {
    const r = zmqchat(["--home", home, "--user", "alice", "config", "show"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.deepEqual(
      lines.map((l) => l.split(/\s+/)[0]),
      ["home", "configFile", ...Object.keys(SETTING_ENV)],
    );
    assert.match(r.stdout, /^user\s+alice\s+\(flag --user\)$/m);
    assert.match(r.stdout, /^home\s+\S+\s+\(flag --home\)$/m);
    assert.match(r.stdout, /^bell\s+false\s+\(file .*config\.json\)$/m);
    assert.match(r.stdout, /^endpoint\s+tcp:\/\/file:1\s+\(file .*config\.json\)$/m);
  });

  it("fails with exit 2 and one error naming every bad key", () => {
    const bad = join(dir, "bad.json");
    writeFileSync(
      bad,
      JSON.stringify({ user: "Bad Name", bell: "yes", colour: "red", endpoint: "http://x" }),
    );
    for (const args of [
      ["--config", bad, "config", "show"],
      ["--config", bad, "history", "alice"],
    ]) {
      const r = zmqchat(["--home", home, ...args], { ZMQCHAT_LOG_LEVEL: "shouty" });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, "");
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines[0], "zmqchat: invalid configuration:");
      assert.equal(lines.length, 6, r.stderr);
      assert.match(r.stderr, /unknown key "colour"/);
      assert.match(r.stderr, /user: .*"Bad Name"/);
      assert.match(r.stderr, /bell: .*"yes"/);
      assert.match(r.stderr, /endpoint: .*"http:\/\/x"/);
      assert.match(r.stderr, /ZMQCHAT_LOG_LEVEL: .*"shouty"/);
    }
  });

  it("requestTimeout: 10s by default, set by flag, env or file, checked, and used by commands", () => {
    const defaults = JSON.parse(zmqchat(["--home", home, "config", "show", "--json"]).stdout) as Shown;
    assert.deepEqual(defaults.requestTimeout, { value: "10s", source: "default", from: "default" });
    const byEnv = JSON.parse(
      zmqchat(["--home", home, "config", "show", "--json"], { ZMQCHAT_REQUEST_TIMEOUT: "45s" }).stdout,
    ) as Shown;
    assert.deepEqual(byEnv.requestTimeout, { value: "45s", source: "env", from: "ZMQCHAT_REQUEST_TIMEOUT" });
    const byFlag = JSON.parse(
      zmqchat(["--home", home, "--request-timeout", "2m", "config", "show", "--json"], {
        ZMQCHAT_REQUEST_TIMEOUT: "45s",
      }).stdout,
    ) as Shown;
    assert.deepEqual(byFlag.requestTimeout, { value: "2m", source: "flag", from: "--request-timeout" });
    for (const bad of ["soon", "0s", "2d", "-1"]) {
      const r = zmqchat(["--home", home, "--request-timeout", bad, "config", "show"]);
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /--request-timeout: a duration such as 10s/);
    }
    // A command with nothing to answer it gives up after the time set and says how long it waited
    // (exit 3, timed out); two settings, so the figure is the setting's, not a constant.
    const dead = "tcp://127.0.0.1:9";
    for (const [flag, said] of [
      ["1s", "waited 1 s"],
      ["1500ms", "waited 1.5 s"],
    ] as const) {
      const r = zmqchat(
        [
          "--home",
          home,
          "--user",
          `timeouty${flag}`,
          "--endpoint",
          dead,
          "--request-timeout",
          flag,
          "register",
        ],
        { ZMQCHAT_PASSPHRASE: "correct horse battery staple ukulele" },
      );
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /did not answer in time/);
      assert.ok(r.stderr.includes(`${said}, --request-timeout changes that`), r.stderr);
    }
  });

  it("fails with exit 2 for a --config file that is missing or not JSON", () => {
    const missing = zmqchat(["--home", home, "--config", join(dir, "nope.json"), "config", "show"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.json does not exist/);
    const broken = join(dir, "broken.json");
    writeFileSync(broken, "{ user: ");
    const notJson = zmqchat(["--home", home, "--config", broken, "config", "show"]);
    assert.equal(notJson.code, 2);
    assert.match(notJson.stderr, /broken\.json is not valid JSON/);
  });
});
