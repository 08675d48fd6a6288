/** A token bucket: `rate` tokens a second, at most `burst` saved up. */
export interface BucketRule {
  rate: number;
  burst: number;
}

/** Buckets kept per kind; beyond it, the ones idle longest are forgotten (a forgotten bucket is full). */
const MAX_BUCKETS = 100_000;

/**
 * Buckets by key, pure: the caller passes the time. Memory is bounded: a bucket idle long
 * enough to be full again is the same as no bucket, so those go first when the map is full.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rule: BucketRule,
    private readonly maxKeys = MAX_BUCKETS,
  ) {}

  /** Takes `cost` tokens for `key`; when too few are left, takes none and says how long until enough are. */
  take(key: string, now: number, cost = 1): { ok: true } | { ok: false; retryAfterMs: number } {
    const { rate, burst } = this.rule;
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
      b.at = now;
      // Keep the map in last-used order, so the front holds the buckets idle longest.
      this.buckets.delete(key);
    } else {
      b = { tokens: burst, at: now };
      this.evict();
    }
    this.buckets.set(key, b);
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.max(1, Math.ceil(((cost - b.tokens) / rate) * 1000)) };
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(): void {
    while (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
    }
  }
}
