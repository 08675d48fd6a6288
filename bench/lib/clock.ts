/**
 * Milliseconds since the epoch with sub-millisecond resolution. Comparable across the bench's
 * processes on one machine, so a send time taken in alice's process and an arrival time taken
 * in bob's can be subtracted.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
