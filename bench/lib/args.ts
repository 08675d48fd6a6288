import { join } from "node:path";

/** The bench's command line (`npm run bench -- …`), parsed without side effects so it can be tested. */
export const WORKLOADS = [
  "crypto",
  "tui",
  "raw",
  "chat",
  "light",
  "group",
  "recovery",
  "scale",
  "influx",
  "daemon",
  "files",
] as const;
export type Workload = (typeof WORKLOADS)[number];

/** The workloads that have InfluxDB variants, run when `influx` is among the workloads. */
const WITH_INFLUX_VARIANTS: readonly Workload[] = ["chat", "light", "recovery"];

export interface Args {
  quick: boolean;
  runs: number;
  only: Set<Workload>;
  /** Which stores' stacks to start (default both; `--stores influx` skips the SQLite runs). */
  stores: Set<"sqlite" | "influx">;
  out: string;
}

export const USAGE = `usage: npm run bench -- [--quick] [--runs N] [--only ${WORKLOADS.join(",")}] [--stores sqlite,influx] [--out FILE]
  --quick   small sizes, one run each (a smoke check, under a minute); writes bench/results/quick.json
  --runs    runs per figure (default 3; 1 with --quick)
  --only    run only these workloads ("influx" adds the InfluxDB variants of chat, light and recovery)
  --stores  start only these stores' stacks (default both); naming influx here runs the InfluxDB
            variants of the chosen workloads, as "influx" in --only does
  --out     where to write the JSON results (default bench/results/latest.json)`;

/** A command line the bench does not take (`problem`), or a request for the usage text (null). */
export class BenchUsage extends Error {
  constructor(readonly problem: string | null) {
    super(problem ?? "usage");
  }
}

/** Parses the bench's arguments; `resultsDir` is where the default output goes. Throws BenchUsage. */
export function parseArgs(argv: string[], resultsDir: string): Args {
  let quick = false;
  let runs: number | null = null;
  let only: Set<Workload> = new Set(WORKLOADS);
  let out: string | null = null;
  let stores = new Set<"sqlite" | "influx">(["sqlite", "influx"]);
  let storesNamed = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new BenchUsage(`${a} needs a value`);
      return v;
    };
    if (a === "--quick") quick = true;
    else if (a === "--runs") {
      runs = Number(value());
      if (!Number.isInteger(runs) || runs < 1) throw new BenchUsage("--runs takes a whole number ≥ 1");
    } else if (a === "--only") {
      const names = value().split(",");
      for (const n of names)
        if (!(WORKLOADS as readonly string[]).includes(n)) throw new BenchUsage(`unknown workload ${n}`);
      only = new Set(names as Workload[]);
    } else if (a === "--stores") {
      const names = value().split(",");
      for (const n of names) if (n !== "sqlite" && n !== "influx") throw new BenchUsage(`unknown store ${n}`);
      stores = new Set(names as Array<"sqlite" | "influx">);
      storesNamed = true;
    } else if (a === "--out") out = value();
    else if (a === "--help" || a === "-h") throw new BenchUsage(null);
    else throw new BenchUsage(`unknown option ${a}`);
  }
  // `--only light --stores influx` used to start no InfluxDB stack and run nothing: the InfluxDB
  // variants needed "influx" in --only as well. Naming the store is asking for them.
  if (storesNamed && stores.has("influx") && WITH_INFLUX_VARIANTS.some((w) => only.has(w)))
    only.add("influx");
  return {
    quick,
    runs: runs ?? (quick ? 1 : 3),
    only,
    stores,
    out: out ?? join(resultsDir, quick ? "quick.json" : "latest.json"),
  };
}
