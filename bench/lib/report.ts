import { median } from "./stats.js";

export type Better = "higher" | "lower";

export interface Target {
  /** What the target is about: the figure's median, or its ratio to the baseline. */
  on: "median" | "ratio";
  /** The issue's target, e.g. `>= 10000` messages/s. */
  op: ">=" | "<=";
  value: number;
  met: boolean | null;
  /** The issues that set it (the table names them: `#15 >= 5000`). */
  issues?: number[];
}

/** One measured figure: every run's value, their median and range, and how it compares. */
export interface Figure {
  id: string;
  workload: string;
  label: string;
  unit: string;
  better: Better;
  runs: number[];
  median: number;
  min: number;
  max: number;
  /** The id of the baseline figure this one is compared with, and median / baseline median. */
  baseline?: string;
  ratioToBaseline?: number;
  /** The peer system's figure for the same baseline (Mosquitto's), and median / its median. */
  peer?: string;
  ratioToPeer?: number;
  targets?: Target[];
  note?: string;
  /** Set instead of values when the figure could not be measured here, with the reason. */
  notAvailable?: string;
}

/** Collects figures as runs come in; ratios and targets are settled in `finish`. */
export class Results {
  private readonly figures = new Map<string, Figure>();
  readonly notes: string[] = [];
  readonly failures: string[] = [];
  /** Baseline figure id → the peer's figure for the same measure (see comparePeer). */
  private readonly peers = new Map<string, string>();

  /** Every figure compared with `baseline` is also compared with the peer's figure `peer`. */
  comparePeer(baseline: string, peer: string): void {
    this.peers.set(baseline, peer);
  }

  add(
    id: string,
    value: number,
    meta: Pick<Figure, "workload" | "label" | "unit" | "better"> & { baseline?: string; note?: string },
  ): void {
    let f = this.figures.get(id);
    if (!f) {
      f = { id, ...meta, runs: [], median: Number.NaN, min: Number.NaN, max: Number.NaN };
      this.figures.set(id, f);
    }
    if (meta.note) f.note = meta.note;
    f.runs.push(value);
  }

  unavailable(id: string, meta: Pick<Figure, "workload" | "label" | "unit" | "better">, why: string): void {
    if (this.figures.get(id)?.runs.length) return;
    this.figures.set(id, {
      id,
      ...meta,
      runs: [],
      median: Number.NaN,
      min: Number.NaN,
      max: Number.NaN,
      notAvailable: why,
    });
  }

  target(id: string, op: ">=" | "<=", value: number, on: Target["on"] = "median", issues?: number[]): void {
    const f = this.figures.get(id);
    if (!f) return;
    f.targets = [...(f.targets ?? []), { on, op, value, met: null, ...(issues ? { issues } : {}) }];
  }

  /** A workload lost or duplicated a message: the bench will exit non-zero. */
  fail(what: string): void {
    this.failures.push(what);
  }

  get(id: string): Figure | undefined {
    return this.figures.get(id);
  }

  finish(): Figure[] {
    const all = [...this.figures.values()];
    for (const f of all) {
      if (f.runs.length > 0) {
        f.median = median(f.runs);
        f.min = Math.min(...f.runs);
        f.max = Math.max(...f.runs);
      }
    }
    for (const f of all) {
      const base = f.baseline ? this.figures.get(f.baseline) : undefined;
      if (base && f.runs.length > 0 && base.runs.length > 0 && base.median !== 0) {
        f.ratioToBaseline = f.median / base.median;
      }
      const peerId = f.baseline ? this.peers.get(f.baseline) : undefined;
      const peer = peerId ? this.figures.get(peerId) : undefined;
      if (peer && f.runs.length > 0 && peer.runs.length > 0 && peer.median !== 0) {
        f.peer = peerId;
        f.ratioToPeer = f.median / peer.median;
      }
      for (const t of f.targets ?? []) {
        const v = t.on === "median" ? f.median : (f.ratioToBaseline ?? Number.NaN);
        t.met = Number.isNaN(v) ? null : t.op === ">=" ? v >= t.value : v <= t.value;
      }
    }
    return all;
  }
}

function fmt(v: number): string {
  if (Number.isNaN(v)) return "-";
  const a = Math.abs(v);
  if (a >= 10_000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** The figures as a fixed-width table. */
export function table(figures: Figure[]): string {
  const rows: string[][] = [
    ["workload", "figure", "median", "min–max", "unit", "runs", "× baseline", "× mosquitto", "target"],
  ];
  for (const f of figures) {
    if (f.notAvailable) {
      rows.push([f.workload, f.label, "n/a", "", f.unit, "0", "", "", `not available: ${f.notAvailable}`]);
      continue;
    }
    const target = (f.targets ?? [])
      .map(
        (t) =>
          `${t.issues ? `${t.issues.map((n) => `#${n}`).join(" ")} ` : ""}${t.on === "ratio" ? "ratio " : ""}${t.op} ${fmt(t.value)}: ${t.met === null ? "?" : t.met ? "met" : "NOT met"}`,
      )
      .join("; ");
    rows.push([
      f.workload,
      f.label,
      fmt(f.median),
      `${fmt(f.min)}–${fmt(f.max)}`,
      f.unit,
      String(f.runs.length),
      f.ratioToBaseline === undefined ? "" : `${fmt(f.ratioToBaseline)}×`,
      f.ratioToPeer === undefined ? "" : `${fmt(f.ratioToPeer)}×`,
      target,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (c === 8 ? 0 : r[c]!.length))));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (c === 8 ? cell : cell.padEnd(widths[c]!))).join("  ");
      return i === 0 ? `${line}\n${"-".repeat(line.length)}` : line;
    })
    .join("\n");
}
