/** A server as the balancer sees it. */
export interface WorkerState {
  id: string;
  version: string;
  lastSeen: number;
  inFlight: number;
  draining: boolean;
}

/**
 * How many more requests in flight than the least busy server the lead server (or, past that, a
 * client's own server) may have and still take the next request: one client's send window (4)
 * plus one.
 */
export const AFFINITY_SLACK = 5;
/**
 * A lead or a client's server with requests in flight that has said nothing for this long is not
 * kept: the next request (often the retry of one it is not answering) goes elsewhere. A false
 * alarm under load only costs the packing.
 */
export const AFFINITY_STALL_MS = 250;
/** Clients whose server is remembered, at most (least recently dispatched forgotten first). */
export const MAX_AFFINITIES = 100_000;

/**
 * Pure dispatch rules: which servers are alive, and which one takes the next request. Requests are
 * packed, not spread: they go to one lead server while it is alive, not draining, answering, and at
 * most AFFINITY_SLACK requests busier than the least busy one. Past that (the lead is saturated) a
 * client's requests stay with the server that took its last one under the same conditions, else
 * the server with the fewest in flight takes it (ties go round-robin). A lead that drains, goes or
 * stalls is replaced by the least busy server. Requests that meet on one server meet in its group
 * commit: one commit, one log sync, instead of one per server, and on SQLite no wait for the other
 * server's write lock (two servers sharing a file each committing half the load waited in 10-20 %
 * of their commits). No sockets, no clock of its own.
 */
export class Dispatcher {
  private readonly workers = new Map<string, WorkerState>();
  private turn = 0;
  /** The server requests go to while it can take them (see the class comment); "" before any. */
  private lead = "";
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
    if (!best) return null;
    const usable = (w: WorkerState | undefined): w is WorkerState =>
      w !== undefined && !w.draining && !(w.inFlight > 0 && now - w.lastSeen > AFFINITY_STALL_MS);
    let lead = this.workers.get(this.lead);
    if (!usable(lead)) {
      lead = best;
      this.lead = best.id;
    }
    const own = client === undefined ? undefined : this.workers.get(this.affinity.get(client) ?? "");
    let chosen = best;
    if (lead.inFlight <= best.inFlight + AFFINITY_SLACK) chosen = lead;
    else if (usable(own) && own.inFlight <= best.inFlight + AFFINITY_SLACK) chosen = own;
    if (client !== undefined) {
      this.affinity.delete(client);
      this.affinity.set(client, chosen.id);
      if (this.affinity.size > MAX_AFFINITIES) this.affinity.delete(this.affinity.keys().next().value!);
    }
    chosen.inFlight++;
    return chosen.id;
  }

  /** The lead server (see the class comment), or null before the first request or once it is gone. */
  leadId(): string | null {
    return this.workers.has(this.lead) ? this.lead : null;
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
