/** A server as the balancer sees it. */
export interface WorkerState {
  id: string;
  version: string;
  lastSeen: number;
  inFlight: number;
  draining: boolean;
}

/**
 * Pure dispatch rules: which servers are alive, and which one takes the next request
 * (fewest requests in flight; ties go round-robin). No sockets, no clock of its own.
 */
export class Dispatcher {
  private readonly workers = new Map<string, WorkerState>();
  private turn = 0;

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

  /** The server for the next request, or null when none is alive and taking requests. */
  pick(): string | null {
    let best: WorkerState | null = null;
    const all = [...this.workers.values()];
    const n = all.length;
    for (let i = 0; i < n; i++) {
      const w = all[(this.turn + i) % n]!;
      if (w.draining) continue;
      if (!best || w.inFlight < best.inFlight) best = w;
    }
    this.turn = (this.turn + 1) % Math.max(n, 1);
    if (best) best.inFlight++;
    return best?.id ?? null;
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
