/** A request handed to a server, waiting for its one reply. */
export interface Ticket {
  worker: string;
  peer: string;
  at: number;
}

/** What a reply from a server turns out to be. */
export type ReplyVerdict =
  | { kind: "ok"; peer: string }
  /** A ticket of an earlier balancer process (we restarted): not ours to judge; discarded. */
  | { kind: "stale" }
  /** The server that was asked, answering after the TTL (it was paused): discarded, not held against it. */
  | { kind: "late" }
  /** A request this server was never given, or one answered already: the server is rogue. */
  | { kind: "unsolicited" };

/**
 * Which server was given which request: the balancer names each request it forwards with a
 * ticket of its own, and accepts one reply per ticket, from the server it went to.
 * Pure: no sockets, no clock of its own. Tickets are kept `ttlMs` (a server that was paused
 * and dropped may still answer late), then for another `ttlMs` only to recognise a late answer
 * from the server that was asked, and then forgotten.
 */
export class Tickets {
  private readonly open = new Map<string, Ticket>();
  private readonly expired = new Map<string, Ticket>();
  private seq = 0;

  /** `instance` tells this balancer process's tickets from those of an earlier one. */
  constructor(
    private readonly instance: string,
    private readonly ttlMs: number,
  ) {}

  issue(worker: string, peer: string, now: number): string {
    const ticket = `${this.instance}.${(this.seq++).toString(36)}`;
    this.open.set(ticket, { worker, peer, at: now });
    return ticket;
  }

  /** Takes a ticket back without a reply (the request could not be delivered). */
  cancel(ticket: string): Ticket | null {
    const t = this.open.get(ticket) ?? null;
    this.open.delete(ticket);
    return t;
  }

  /** Judges a reply from `worker` naming `ticket`; a valid one closes the ticket. */
  reply(worker: string, ticket: string): ReplyVerdict {
    const t = this.open.get(ticket);
    if (t && t.worker === worker) {
      this.open.delete(ticket);
      return { kind: "ok", peer: t.peer };
    }
    if (!t && this.expired.get(ticket)?.worker === worker) {
      this.expired.delete(ticket);
      return { kind: "late" };
    }
    if (!t && !ticket.startsWith(`${this.instance}.`) && /^[0-9a-z]{1,32}\.[0-9a-z]{1,16}$/.test(ticket)) {
      return { kind: "stale" };
    }
    return { kind: "unsolicited" };
  }

  /** Forgets tickets older than the TTL. */
  expire(now: number): void {
    for (const [ticket, t] of this.expired) {
      if (now - t.at <= 2 * this.ttlMs) break;
      this.expired.delete(ticket);
    }
    for (const [ticket, t] of this.open) {
      if (now - t.at <= this.ttlMs) break;
      this.open.delete(ticket);
      this.expired.set(ticket, t);
    }
  }

  /** Forgets every ticket of a server that is gone for good. */
  forget(worker: string): void {
    for (const [ticket, t] of this.open) if (t.worker === worker) this.open.delete(ticket);
    for (const [ticket, t] of this.expired) if (t.worker === worker) this.expired.delete(ticket);
  }

  get size(): number {
    return this.open.size;
  }
}
