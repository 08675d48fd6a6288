import type { Results } from "./report.js";

/** Workload sizes: the in a full run, small but real ones with --quick. */
export interface Sizes {
  rawCount: number;
  chatCount: number;
  textBytes: number;
  maxUnacked: number;
  lightRate: number;
  lightMs: number;
  groupMembers: number;
  groupMessages: number;
  recoveryDirect: number;
  recoveryGroup: number;
  recoveryGroupMembers: number;
  cryptoMs: number;
  scaleSteps: number[];
  scaleProcesses: number;
  tuiMessages: number;
  /** How long a receiver may see nothing new before its missing messages count as lost. */
  stallMs: number;
}

export const FULL: Sizes = {
  rawCount: 20_000,
  chatCount: 20_000,
  textBytes: 200,
  maxUnacked: 100,
  lightRate: 1000,
  lightMs: 10_000,
  groupMembers: 50,
  groupMessages: 2000,
  recoveryDirect: 50_000,
  recoveryGroup: 50_000,
  recoveryGroupMembers: 3,
  cryptoMs: 1000,
  scaleSteps: [1000, 5000],
  scaleProcesses: 5,
  tuiMessages: 10_000,
  stallMs: 60_000,
};

export const QUICK: Sizes = {
  rawCount: 2000,
  chatCount: 500,
  textBytes: 200,
  maxUnacked: 100,
  lightRate: 200,
  lightMs: 1500,
  groupMembers: 8,
  groupMessages: 100,
  // 800 in all: a sync page holds up to 1,000, and 1,000 of these are right at the 1 MiB frame limit.
  recoveryDirect: 400,
  recoveryGroup: 400,
  recoveryGroupMembers: 3,
  cryptoMs: 150,
  scaleSteps: [50, 100],
  scaleProcesses: 1,
  tuiMessages: 1000,
  stallMs: 30_000,
};

export interface BenchContext {
  quick: boolean;
  runs: number;
  sizes: Sizes;
  results: Results;
  /** A temporary directory for homes, caches and stores; removed at the end. */
  tmp: string;
  log(line: string): void;
}
