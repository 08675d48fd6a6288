import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";

/** How long an endpoint that did not answer is tried last. */
export const SILENT_ENDPOINT_MS = 10 * 60_000;

/**
 * What a client remembers about balancer endpoints between commands: those that did not
 * answer are tried after the others for a while, so one dead balancer in a list of several
 * does not cost every new command a timeout.
 */
export interface EndpointMemory {
  /** The endpoints in the order to try them. */
  order(endpoints: string[]): string[];
  /** The endpoint did not answer (refused, or silent for a whole attempt). */
  silent(endpoint: string): void;
  /** The endpoint answered. */
  answered(endpoint: string): void;
}

/**
 * Endpoints not remembered as silent first, in their listed order, then the silent ones,
 * the longest silent first (the likeliest to have come back). Pure.
 */
export function orderEndpoints(
  endpoints: string[],
  silentAt: Readonly<Record<string, number>>,
  now: number,
  forMs = SILENT_ENDPOINT_MS,
): string[] {
  const isSilent = (e: string) => {
    const at = silentAt[e];
    return at !== undefined && now - at < forMs && at <= now;
  };
  const live = endpoints.filter((e) => !isSilent(e));
  const silent = endpoints.filter(isSilent).sort((a, b) => (silentAt[a] ?? 0) - (silentAt[b] ?? 0));
  return [...live, ...silent];
}

/** An endpoint memory kept in a small JSON file of the user's profile (mode 0600). */
export class FileEndpointMemory implements EndpointMemory {
  constructor(
    private readonly path: string,
    private readonly now: () => number = Date.now,
    private readonly forMs = SILENT_ENDPOINT_MS,
  ) {}

  order(endpoints: string[]): string[] {
    return orderEndpoints(endpoints, this.read(), this.now(), this.forMs);
  }

  silent(endpoint: string): void {
    const map = this.read();
    // Keep the first time it went silent: the order puts the longest silent first.
    const at = map[endpoint];
    if (at !== undefined && this.now() - at < this.forMs) return;
    map[endpoint] = this.now();
    this.write(map);
  }

  answered(endpoint: string): void {
    const map = this.read();
    if (!(endpoint in map)) return;
    delete map[endpoint];
    this.write(map);
  }

  private read(): Record<string, number> {
    if (!existsSync(this.path)) return {};
    try {
      const parsed = JSON.parse(readFileSync(this.path, "utf8")) as { silent?: unknown };
      const out: Record<string, number> = {};
      if (parsed && typeof parsed.silent === "object" && parsed.silent !== null) {
        for (const [k, v] of Object.entries(parsed.silent)) if (typeof v === "number") out[k] = v;
      }
      return out;
    } catch {
      // A damaged memory is only a hint: start afresh.
      return {};
    }
  }

  private write(map: Record<string, number>): void {
    const now = this.now();
    const kept = Object.fromEntries(Object.entries(map).filter(([, at]) => now - at < this.forMs));
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify({ silent: kept })}\n`, { mode: 0o600 });
      renameSync(tmp, this.path);
    } catch {
      // Best effort: a read-only profile only loses the hint.
    }
  }
}
