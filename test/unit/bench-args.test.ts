import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BenchUsage, parseArgs, WORKLOADS } from "../../bench/lib/args.js";

const DIR = "/results";
const parse = (...argv: string[]) => parseArgs(argv, DIR);
const refusal = (...argv: string[]) => {
  try {
    parse(...argv);
  } catch (err) {
    assert.ok(err instanceof BenchUsage);
    return err.problem;
  }
  assert.fail(`accepted ${argv.join(" ")}`);
};

describe("bench command line", () => {
  it("runs everything on both stores by default, three runs (one with --quick), into bench/results", () => {
    const a = parse();
    assert.deepEqual([...a.only].sort(), [...WORKLOADS].sort());
    assert.deepEqual([...a.stores].sort(), ["influx", "sqlite"]);
    assert.equal(a.runs, 3);
    assert.equal(a.out, join(DIR, "latest.json"));
    const q = parse("--quick");
    assert.equal(q.runs, 1);
    assert.equal(q.out, join(DIR, "quick.json"));
    assert.equal(parse("--quick", "--runs", "2", "--out", "/tmp/x.json").runs, 2);
  });

  it("naming influx in --stores runs the InfluxDB variants of the chosen workloads", () => {
    // Until now `--only light --stores influx` started no InfluxDB stack: it ran nothing at all.
    assert.ok(parse("--only", "light", "--stores", "influx").only.has("influx"));
    assert.ok(parse("--stores", "sqlite,influx", "--only", "chat,recovery").only.has("influx"));
    // Controls: not without the store named, not with SQLite alone, not for workloads without variants.
    assert.ok(!parse("--only", "light").only.has("influx"));
    assert.ok(!parse("--only", "light", "--stores", "sqlite").only.has("influx"));
    assert.deepEqual([...parse("--only", "scale", "--stores", "influx").only], ["scale"]);
  });

  it("refuses what it does not take, saying what", () => {
    assert.equal(refusal("--only", "chat,nope"), "unknown workload nope");
    assert.equal(refusal("--stores", "postgres"), "unknown store postgres");
    assert.equal(refusal("--runs", "0"), "--runs takes a whole number ≥ 1");
    assert.equal(refusal("--runs", "1.5"), "--runs takes a whole number ≥ 1");
    assert.equal(refusal("--out"), "--out needs a value");
    assert.equal(refusal("--fast"), "unknown option --fast");
    assert.equal(refusal("--help"), null);
  });

  it("exits 2 with the usage on stderr for a bad option, 0 with it on stdout for --help, starting nothing", () => {
    const run = (...argv: string[]) =>
      spawnSync(process.execPath, ["--import", "tsx", "bench/run.ts", ...argv], {
        encoding: "utf8",
        timeout: 60_000,
      });
    const bad = run("--only", "nope");
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /^bench: unknown workload nope\nusage: npm run bench/);
    assert.equal(bad.stdout, "");
    const help = run("--help");
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: npm run bench -- \[--quick\]/);
  });
});
