/** The worker's timers, all cleared at once when the TUI stops (none keeps the process alive). */
export class Timers {
  private readonly live = new Set<NodeJS.Timeout>();

  /** Runs `fn` once after `ms`. */
  after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.live.delete(t);
      fn();
    }, ms);
    t.unref();
    this.live.add(t);
  }

  /** Runs `fn` every `ms` until cleared or until the returned function is called. */
  every(ms: number, fn: () => void): () => void {
    const t = setInterval(fn, ms);
    t.unref();
    this.live.add(t);
    return () => {
      clearInterval(t);
      this.live.delete(t);
    };
  }

  /** Resolves after `ms` (or never, once cleared: whoever waits checks `stopped` first anyway). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  clear(): void {
    for (const t of this.live) clearTimeout(t);
    this.live.clear();
  }
}
