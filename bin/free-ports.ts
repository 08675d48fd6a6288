import { readFileSync } from "node:fs";
import { createServer } from "node:net";

function free(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function osPort(host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen({ port: 0, host, exclusive: true }, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The first port of the OS's ephemeral range (Linux: ip_local_port_range; 32768 elsewhere). */
export function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 1024 ? low : 32768;
  } catch {
    return 32768;
  }
}

export interface FreeRunOptions {
  tries?: number;
  /** Where a first port comes from (tests replace it); the OS's choice by default. */
  first?: (host: string) => Promise<number>;
}

/**
 * A base port P with P..P+count-1 all free on `host` just now, for a process whose ports must
 * stay together (the balancer's four). Another process may still take one before we bind:
 * callers retry on EADDRINUSE. The first tries take the OS's choice, so it is in its range for
 * ephemeral ports and unlikely to be a configured one. But Linux hands bind(0) odd ports and
 * connect() even ones, so on a host with many outgoing connections P+1 and P+3 are often taken:
 * the later tries pick a base at random in the 8,000 ports just below the ephemeral range, which
 * outgoing connections never use.
 */
export async function freeRun(host: string, count: number, opts: FreeRunOptions = {}): Promise<number> {
  const tries = opts.tries ?? 50;
  const first = opts.first ?? osPort;
  const low = ephemeralLow();
  for (let i = 0; i < tries; i++) {
    const base =
      i < Math.ceil(tries / 5)
        ? await first(host)
        : Math.max(1025, low - 8000) +
          Math.floor(Math.random() * Math.max(1, Math.min(8000, low - 1025) - count));
    if (base + count - 1 > 65535) continue;
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await free(host, p);
    if (ok) return base;
  }
  throw new Error(`no ${count} free consecutive ports on ${host}`);
}
