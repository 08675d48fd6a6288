import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { isAlive, type StackState, stackPaths } from "./local-stack.js";

/**
 * Guards of the local stack that outlive its supervisor: what a dead supervisor left running,
 * who holds a port, and the modes of the stack's files (everything under HOME/stack is the
 * user's alone: directories 0700, files 0600).
 */

/** A process's command line (Linux /proc), or null when it is gone or unreadable. */
export function commandLine(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return null;
  }
}

/** Whether `pid` still runs the zmqchat script (not a reused pid of something else). */
function runsScript(pid: number, script: string): boolean {
  return commandLine(pid)?.includes(script) === true;
}

/** The processes of a stack state that still run the zmqchat script: the supervisor and its children. */
export function recordedProcesses(state: StackState, script: string): Array<{ name: string; pid: number }> {
  const all = [
    { name: "supervisor", pid: state.supervisorPid },
    ...state.processes.flatMap((p) => (p.pid ? [{ name: p.name, pid: p.pid }] : [])),
  ];
  return all.filter((p) => isAlive(p.pid) && runsScript(p.pid, script));
}

/**
 * Stops the recorded processes of a stack (SIGTERM, then SIGKILL after `graceMs`), the
 * supervisor first so it restarts nothing. Returns those it stopped.
 */
export async function stopRecorded(
  state: StackState,
  script: string,
  graceMs = 5000,
): Promise<Array<{ name: string; pid: number }>> {
  const targets = recordedProcesses(state, script);
  const signal = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // gone already
    }
  };
  const sup = targets.find((t) => t.name === "supervisor");
  if (sup) signal(sup.pid, "SIGTERM");
  for (const t of targets) if (t !== sup) signal(t.pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (targets.some((t) => isAlive(t.pid)) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  for (const t of targets) if (isAlive(t.pid)) signal(t.pid, "SIGKILL");
  const killDeadline = Date.now() + 2000;
  while (targets.some((t) => isAlive(t.pid)) && Date.now() < killDeadline)
    await new Promise((r) => setTimeout(r, 20));
  return targets;
}

/** The socket inodes listening on a TCP port (IPv4 and IPv6), from /proc/net/tcp*. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth field.
      if (f.length > 9 && f[1]?.endsWith(`:${hexPort}`) && f[3] === "0A") inodes.add(f[9]!);
    }
  }
  return inodes;
}

/** Who listens on a TCP port of this machine: a pid and its command line, when /proc lets us see it. */
export function whoListens(port: number): { pid: number; argv: string[] } | null {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return null;
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) return { pid: Number(pid), argv: commandLine(Number(pid)) ?? [] };
    }
  }
  return null;
}

/** Makes every directory under HOME/stack 0700 and every file 0600 (files made by older versions included). */
export function tightenStackFiles(home: string): void {
  const walk = (path: string) => {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(path);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      if ((st.mode & 0o777) !== 0o700) chmodSync(path, 0o700);
      for (const name of readdirSync(path)) walk(join(path, name));
    } else if (st.isFile() && (st.mode & 0o777) !== 0o600) {
      chmodSync(path, 0o600);
    }
  };
  const dir = stackPaths(home).dir;
  if (existsSync(dir)) walk(dir);
}
