/**
 * The InfluxDB store alone, as the 1:1 chat workload drives it: two stores (two servers) on one
 * private influxd, appends of `--batch` messages (alice → bob, two mailbox copies each) sent to
 * the stores in turn with at most `--inflight` batches outstanding. Reports CPU per message of
 * this process (both stores) and of influxd, the HTTP requests per message by kind, and the
 * append latency. A quick loop for the store's own costs, without the rest of the stack:
 *
 *   node --import tsx bench/influx-store.ts [--messages 20000] [--batch 50] [--inflight 2]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { uuidv7 } from "../core/protocol/ids.js";
import { InfluxStore } from "../server/store/influx.js";
import type { AppendInput } from "../server/store/store.js";
import { startInfluxd } from "../test/helpers/influxd.js";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "20000" },
    batch: { type: "string", default: "50" },
    inflight: { type: "string", default: "2" },
    stores: { type: "string", default: "2" },
    read: { type: "boolean", default: false },
  },
});
const N = Number(values.messages);
const B = Number(values.batch);
const INFLIGHT = Number(values.inflight);
const STORES = Number(values.stores);

function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(f[11]) + Number(f[12])) / 100) * 1e6;
}

function envelope(id: string, to: string): string {
  const b = (n: number) => "A".repeat(n);
  return JSON.stringify({
    v: 3,
    suite: "x25519-hkdf-sha256-aes256gcm/v3",
    id,
    from: "alice",
    device: "0123456789abcdef",
    to: "bob",
    group: null,
    seq: 1,
    sentAt: new Date().toISOString(),
    nonce: b(16),
    ct: b(290),
    keys: [{ to, wk: b(100) }],
    fromKey: b(16),
    toKey: b(16),
    kc: b(43),
  });
}

const counts = new Map<string, number>();
function count(kind: string, n = 1) {
  counts.set(kind, (counts.get(kind) ?? 0) + n);
}

/** Time spent per phase of an append (ms, summed): the group commit's write, the settling wait. */
const phases = new Map<string, { n: number; ms: number }>();
function timed<T>(kind: string, p: Promise<T>): Promise<T> {
  const t = performance.now();
  return p.finally(() => {
    const e = phases.get(kind) ?? { n: 0, ms: 0 };
    e.n++;
    e.ms += performance.now() - t;
    phases.set(kind, e);
  });
}

function instrument(store: InfluxStore) {
  // biome-ignore lint/suspicious/noExplicitAny: a bench peeks at the store's parts
  const parts = store as any;
  // What an append waits for: its batch's commit (lookup and writes), then until the other
  // processes' watermarks show its copies visible (the floor polls), then the predecessors.
  const commits = parts.commits;
  const commit = commits.commit.bind(commits);
  commits.commit = (batch: unknown[]) => timed("commit (lookup + writes)", commit(batch));
  const marks = parts.watermarks;
  if (marks) {
    const waitVisible = marks.waitVisible.bind(marks);
    marks.waitVisible = (...args: unknown[]) => timed("settle: wait until visible", waitVisible(...args));
  }
  const http = parts.ctx.http;
  const write = http.write.bind(http);
  const query = http.query.bind(http);
  http.write = (lines: string) => {
    const m = lines.slice(0, lines.indexOf(",")) || "?";
    count(`write ${m}`);
    count(`  points ${m}`, lines.split("\n").length);
    return write(lines);
  };
  const send = http.send.bind(http);
  http.send = async (...args: unknown[]) => {
    const out: string = await send(...args);
    const path = args.find((a) => typeof a === "string" && a.startsWith("/")) as string;
    const body = String(args[args.indexOf(path) + 1]);
    if (path.startsWith("/query")) {
      const q = new URLSearchParams(body).get("q") ?? "";
      const kinds = q
        .split("; ")
        .map((st) => (st.match(/FROM ([^ ]+)/)?.[1] ?? st.slice(0, 20)).replace(/"/g, ""));
      count(`  answer bytes [${[...new Set(kinds)].join(",")}]`, out.length);
    }
    return out;
  };
  http.query = (q: string, o?: unknown) => {
    const kinds = q
      .split("; ")
      .map((s) => (s.match(/FROM ([^ ]+)/)?.[1] ?? s.slice(0, 20)).replace(/"/g, ""));
    const caller = !process.env.CALLERS
      ? ""
      : (new Error().stack ?? "")
          .split("\n")
          .slice(2, 5)
          .map((l) =>
            l
              .trim()
              .replace(/^at /, "")
              .replace(/ \(.*\/([^/]+:\d+):\d+\)/, " $1"),
          )
          .join(" < ");
    count(`query [${[...new Set(kinds)].join(",")}] ${caller}`);
    count("  statements", kinds.length);
    return query(q, o);
  };
}

async function main() {
  const influxd = await startInfluxd();
  const stores: InfluxStore[] = [];
  try {
    for (let i = 0; i < STORES; i++) {
      const s = InfluxStore.fromUrl(influxd.storeUrl("micro"), {});
      await s.init();
      instrument(s);
      stores.push(s);
    }
    const run = async (n: number, measure: boolean) => {
      counts.clear();
      phases.clear();
      const inputs: AppendInput[][] = [];
      for (let i = 0; i < n; i += B) {
        const batch: AppendInput[] = [];
        for (let k = i; k < Math.min(n, i + B); k++) {
          const id = uuidv7();
          const copies = new Map([
            ["alice", envelope(id, "alice")],
            ["bob", envelope(id, "bob")],
          ]);
          batch.push({ id, owners: ["bob", "alice"], envelope: copies.get("bob")!, copies });
        }
        inputs.push(batch);
      }
      const lat: number[] = [];
      const cpu0 = process.cpuUsage();
      const icpu0 = cpuOf(influxd.pid);
      const t0 = performance.now();
      let next = 0;
      let prevMissing = 0;
      const worker = async () => {
        for (;;) {
          const i = next++;
          if (i >= inputs.length) return;
          const t = performance.now();
          const res = await stores[i % stores.length]!.appendMany(inputs[i]!);
          for (const r of res) for (const p of r.placed.values()) if (p.prev === undefined) prevMissing++;
          lat.push(performance.now() - t);
        }
      };
      await Promise.all(Array.from({ length: INFLIGHT }, () => worker()));
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const icpu = cpuOf(influxd.pid) - icpu0;
      if (!measure) return;
      lat.sort((a, b) => a - b);
      const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(1);
      console.log(
        `${n} msgs in ${wall.toFixed(2)} s = ${(n / wall).toFixed(0)} msg/s; node ${((cpu.user + cpu.system) / n).toFixed(1)} µs/msg (user ${(cpu.user / n).toFixed(1)}), influxd ${(icpu / n).toFixed(1)} µs/msg; append p50 ${q(0.5)} p99 ${q(0.99)} ms; copies without prev ${prevMissing}`,
      );
      const appendMs = lat.reduce((x, y) => x + y, 0) / lat.length;
      console.log(`  append latency mean ${appendMs.toFixed(1)} ms, of which per batch (mean):`);
      for (const [k, v] of phases) console.log(`    ${k}: ${(v.ms / v.n).toFixed(1)} ms (${v.n} times)`);
      for (const [k, v] of [...counts].sort())
        console.log(`  ${k}: ${v} (${((v / n) * 1000).toFixed(1)} per 1000 msgs)`);
    };
    await run(2000, false);
    await run(N, true);
    if (values.read) {
      // Recovery: bob's whole mailbox, page by page, as a fresh client's sync reads it.
      for (let round = 0; round < 2; round++) {
        counts.clear();
        const cpu0 = process.cpuUsage();
        const icpu0 = cpuOf(influxd.pid);
        const t0 = performance.now();
        let after: string | null = null;
        let items = 0;
        for (;;) {
          const page = await stores[0]!.read("bob", after, 2000, 256 * 1024);
          items += page.items.length;
          if (page.items.length > 0) after = page.items.at(-1)!.cursor;
          if (!page.more) break;
        }
        const wall = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const icpu = cpuOf(influxd.pid) - icpu0;
        console.log(
          `read ${items} items in ${wall.toFixed(2)} s = ${(items / wall).toFixed(0)}/s; node ${((cpu.user + cpu.system) / items).toFixed(1)} µs/item, influxd ${(icpu / items).toFixed(1)} µs/item`,
        );
      }
    }
  } finally {
    for (const s of stores) await s.close();
    await influxd.stop();
  }
}

await main();
