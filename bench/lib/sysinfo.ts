import { readFileSync } from "node:fs";

/** Kernel clock ticks per second for /proc/PID/stat times; 100 on every Linux we run on. */
const CLK_TCK = 100;

/** CPU time (user + system, all threads) a process has used so far, in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces; fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / CLK_TCK;
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** CPU time used by several processes together between `start()` and `stop()`. */
export class CpuMeter {
  private readonly before: number[];

  constructor(private readonly pids: number[]) {
    this.before = pids.map(cpuMicros);
  }

  /** Microseconds used since construction, summed over the processes. */
  used(): number {
    return this.pids.reduce((sum, pid, i) => sum + cpuMicros(pid) - this.before[i]!, 0);
  }
}
