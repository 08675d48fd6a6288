/** A server as the balancer sees it. */
export interface WorkerState {
  id: string;
  version: string;
  lastSeen: number;
  inFlight: number;
  draining: boolean;
}

/**
 * How many more requests in flight than the least busy server a client's own server may have and
 * still take its next request: one client's send window (4) plus one.
 */
export const AFFINITY_SLACK = 5;
/**
 * A client's server with requests in flight that has said nothing for this long is not kept:
 * the client's next request (often the retry of one it is not answering) goes elsewhere, as
 * without affinity. A false alarm under load only costs the affinity.
 */
export const AFFINITY_STALL_MS = 250;
/** Clients whose server is remembered, at most (least recently dispatched forgotten first). */
export const MAX_AFFINITIES = 100_000;

/**
 * Pure dispatch rules: which servers are alive, and which one takes the next request. A client's
 * requests stay with the server that took its last one while that server is alive, not draining,
 * and at most AFFINITY_SLACK requests busier than the least busy one; otherwise the server with
 * the fewest in flight takes it (ties go round-robin) and becomes the client's. One client's
 * consecutive requests then meet in one server's group commit instead of waiting for each other
 * across servers for the store's write lock. No sockets, no clock of its own.
 */
export class Dispatcher {
  private readonly workers = new Map<string, WorkerState>();
  private turn = 0;
  /** Client → the server of its last request; Map order is dispatch order (oldest first). */
  private readonly affinity = new Map<string, string>();

  constructor(private readonly expiryMs: number) {}

  ready(id: string, version: string, now: number): void {
    const w = this.workers.get(id);
    if (w) {
      w.lastSeen = now;
      w.version = version;
      w.draining = false;
    } else {
      this.workers.set(id, { id, version, lastSeen: now, inFlight: 0, draining: false });
    }
  }

  /** Any message from a server proves it alive. Returns false for a server that is not known. */
  seen(id: string, now: number): boolean {
    const w = this.workers.get(id);
    if (!w) return false;
    w.lastSeen = now;
    return true;
  }

  drain(id: string): void {
    const w = this.workers.get(id);
    if (w) w.draining = true;
  }

  remove(id: string): void {
    this.workers.delete(id);
  }

  /** Drops servers silent for longer than the expiry; returns their ids. */
  expire(now: number): string[] {
    const dead: string[] = [];
    for (const w of this.workers.values()) {
      if (now - w.lastSeen > this.expiryMs) dead.push(w.id);
    }
    for (const id of dead) this.workers.delete(id);
    return dead;
  }

  /**
   * The server for the next request (of `client`, when given, at `now`), or null when none is
   * alive and taking requests.
   */
  pick(client?: string, now = 0): string | null {
    let best: WorkerState | null = null;
    const all = [...this.workers.values()];
    const n = all.length;
    for (let i = 0; i < n; i++) {
      const w = all[(this.turn + i) % n]!;
      if (w.draining) continue;
      if (!best || w.inFlight < best.inFlight) best = w;
    }
    this.turn = (this.turn + 1) % Math.max(n, 1);
    if (best && client !== undefined) {
      const own = this.workers.get(this.affinity.get(client) ?? "");
      const stalled = own !== undefined && own.inFlight > 0 && now - own.lastSeen > AFFINITY_STALL_MS;
      if (own && !own.draining && !stalled && own.inFlight <= best.inFlight + AFFINITY_SLACK) best = own;
      this.affinity.delete(client);
      this.affinity.set(client, best.id);
      if (this.affinity.size > MAX_AFFINITIES) this.affinity.delete(this.affinity.keys().next().value!);
    }
    if (best) best.inFlight++;
    return best?.id ?? null;
  }

  /** Forgets a client's server (it went quiet). */
  forget(client: string): void {
    this.affinity.delete(client);
  }

  done(id: string): void {
    const w = this.workers.get(id);
    if (w && w.inFlight > 0) w.inFlight--;
  }

  live(): WorkerState[] {
    return [...this.workers.values()];
  }

  ids(): string[] {
    return [...this.workers.keys()];
  }
}
