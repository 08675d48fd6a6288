import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  DEFAULT_ENDPOINT,
  readConfigFile,
  resolveHome,
  resolveSettings,
  type SettingsInput,
} from "../../core/config/config.js";
import { ZmqchatError } from "../../core/errors.js";

const FILE = "/cfg/config.json";

function resolve(parts: Partial<SettingsInput>) {
  return resolveSettings(
    { flags: {}, env: {}, file: null, configFile: FILE, home: "/h", ...parts },
    "default",
  );
}

/** Checks the sources of the settings named in `want` (settings added later are not this test's business). */
function assertSources(s: { sources: Record<string, string> }, want: Record<string, string>): void {
  assert.deepEqual(Object.fromEntries(Object.keys(want).map((k) => [k, s.sources[k]])), want);
}

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ZmqchatError, String(e));
    assert.equal(e.code, "usage");
    return e.message;
  }
  assert.fail("expected a usage error");
}

describe("configuration: flags > ZMQCHAT_* env > config file > defaults", () => {
  it("uses the defaults when nothing is given", () => {
    const s = resolve({});
    assert.equal(s.user, undefined);
    assert.deepEqual(s.endpoints, [DEFAULT_ENDPOINT]);
    assert.equal(s.bell, true);
    assert.equal(s.logLevel, "info");
    assertSources(s, {
      home: "default",
      user: "default",
      endpoint: "default",
      bell: "default",
      logLevel: "default",
    });
  });

  it("takes each layer over the ones below it, for every field", () => {
    const file = { user: "filey", endpoint: "tcp://file:1", bell: false, logLevel: "error" };
    const env = {
      ZMQCHAT_USER: "envy",
      ZMQCHAT_ENDPOINT: "tcp://env:2",
      ZMQCHAT_BELL: "on",
      ZMQCHAT_LOG_LEVEL: "warn",
    };
    const flags = { user: "flaggy", endpoint: "tcp://flag:3" };
    const fromFile = resolve({ file });
    assert.deepEqual(
      [fromFile.user, fromFile.endpoints, fromFile.bell, fromFile.logLevel],
      ["filey", ["tcp://file:1"], false, "error"],
    );
    const fromEnv = resolve({ file, env });
    assert.deepEqual(
      [fromEnv.user, fromEnv.endpoints, fromEnv.bell, fromEnv.logLevel],
      ["envy", ["tcp://env:2"], true, "warn"],
    );
    const fromFlags = resolve({ file, env, flags });
    assert.deepEqual(
      [fromFlags.user, fromFlags.endpoints, fromFlags.bell, fromFlags.logLevel],
      ["flaggy", ["tcp://flag:3"], true, "warn"],
    );
    assertSources(fromFlags, {
      home: "default",
      user: "flag",
      endpoint: "flag",
      bell: "env",
      logLevel: "env",
    });
  });

  it("merges field by field: each setting from its own highest layer", () => {
    const s = resolve({
      flags: { user: "alice" },
      env: { ZMQCHAT_ENDPOINT: "tcp://a:1, tcp://b:2" },
      file: { bell: false },
    });
    assert.equal(s.user, "alice");
    assert.deepEqual(s.endpoints, ["tcp://a:1", "tcp://b:2"]);
    assert.equal(s.bell, false);
    assert.equal(s.logLevel, "info");
    assertSources(s, {
      home: "default",
      user: "flag",
      endpoint: "env",
      bell: "file",
      logLevel: "default",
    });
    assert.equal(s.configFile, FILE);
  });

  it("treats an empty environment variable as unset", () => {
    const s = resolve({ env: { ZMQCHAT_USER: "", ZMQCHAT_ENDPOINT: "" }, file: { user: "filey" } });
    assert.equal(s.user, "filey");
    assert.equal(s.sources.user, "file");
    assert.equal(s.sources.endpoint, "default");
  });

  it("reads booleans from the environment in the usual spellings", () => {
    for (const v of ["1", "true", "YES", "on"])
      assert.equal(resolve({ env: { ZMQCHAT_BELL: v } }).bell, true);
    for (const v of ["0", "false", "No", "off"])
      assert.equal(resolve({ env: { ZMQCHAT_BELL: v } }).bell, false);
  });

  it("resolves the home: flag > ZMQCHAT_HOME > ~/.zmqchat", () => {
    assert.deepEqual(resolveHome({ home: "/f" }, { ZMQCHAT_HOME: "/e" }), { home: "/f", source: "flag" });
    assert.deepEqual(resolveHome({}, { ZMQCHAT_HOME: "/e" }), { home: "/e", source: "env" });
    assert.deepEqual(resolveHome({}, {}), { home: join(homedir(), ".zmqchat"), source: "default" });
  });
});

describe("configuration errors", () => {
  it("lists every bad key at once, naming where each came from", () => {
    const message = usageError(() =>
      resolve({
        flags: { user: "Not A Name" },
        env: { ZMQCHAT_ENDPOINT: "http://nope", ZMQCHAT_BELL: "maybe" },
        file: { logLevel: "loud", colour: "red", theme: 1 },
      }),
    );
    const lines = message.split("\n").slice(1);
    assert.match(message, /^invalid configuration:/);
    assert.equal(lines.length, 6, message);
    assert.match(message, /--user: .*\(got "Not A Name"\)/);
    assert.match(message, /ZMQCHAT_ENDPOINT: .*tcp:\/\/HOST:PORT.*\(got "http:\/\/nope"\)/);
    assert.match(message, /ZMQCHAT_BELL: .*\(got "maybe"\)/);
    assert.match(message, /\/cfg\/config\.json: logLevel: .*\(got "loud"\)/);
    assert.match(message, /\/cfg\/config\.json: unknown key "colour"/);
    assert.match(message, /\/cfg\/config\.json: unknown key "theme"/);
  });

  it("checks a value only where it is taken from: a bad file value under a good flag is no error", () => {
    const s = resolve({ flags: { user: "alice" }, file: { user: "Bad Name" } });
    assert.equal(s.user, "alice");
  });

  it("rejects wrong types in the file", () => {
    const message = usageError(() => resolve({ file: { bell: "yes", endpoint: 5570, user: ["a"] } }));
    assert.equal(message.split("\n").length, 4, message);
  });

  it("reads a config file: a missing default file is fine, a missing --config file or bad JSON is not", () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-config-"));
    try {
      assert.equal(readConfigFile(join(dir, "absent.json"), false), null);
      assert.match(
        usageError(() => readConfigFile(join(dir, "absent.json"), true)),
        /does not exist/,
      );
      writeFileSync(join(dir, "broken.json"), "{ user: alice ");
      assert.match(
        usageError(() => readConfigFile(join(dir, "broken.json"), false)),
        /not valid JSON/,
      );
      writeFileSync(join(dir, "array.json"), "[1, 2]");
      assert.match(
        usageError(() => readConfigFile(join(dir, "array.json"), false)),
        /not a JSON object/,
      );
      writeFileSync(join(dir, "ok.json"), '{"user": "alice", "bell": false}');
      assert.deepEqual(readConfigFile(join(dir, "ok.json"), true), { user: "alice", bell: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
