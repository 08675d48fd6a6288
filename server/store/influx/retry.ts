import { setTimeout as delay } from "node:timers/promises";
import { ZmqchatError } from "../../../core/errors.js";
import { InfluxHttpError, storeError } from "./http.js";

export interface RetryPolicy {
  /** How long retryable failures are retried (with backoff) before the caller gets `unavailable`. */
  retryForMs: number;
  /** Names the database in error messages (V1Http.description). */
  where: string;
}

/**
 * The one retry loop of the InfluxDB store. Runs `fn`; a retryable failure (no answer, 5xx, 429:
 * {@link InfluxHttpError.retryable}) is tried again with jittered exponential backoff (50 ms
 * doubling to 1 s) until `retryForMs` has passed. Anything else, and the last failure, comes out
 * as a ZmqchatError (`storeError`); a ZmqchatError thrown by `fn` itself passes through untouched.
 * `hint` replaces the hint of a failure that is neither retryable nor about credentials.
 */
export async function retrying<T>(
  policy: RetryPolicy,
  what: string,
  fn: () => Promise<T>,
  extra: { hint?: string } = {},
): Promise<T> {
  const deadline = Date.now() + policy.retryForMs;
  let backoff = 50;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ZmqchatError) throw err;
      const e = InfluxHttpError.from(err);
      if (!e.retryable || Date.now() + backoff > deadline) {
        const failure = storeError(e, what, policy.where);
        if (extra.hint && !e.retryable && e.status !== 401 && e.status !== 403) {
          throw new ZmqchatError(failure.code, failure.message, { cause: e, hint: extra.hint });
        }
        throw failure;
      }
      await delay(backoff * (0.5 + Math.random() / 2));
      backoff = Math.min(backoff * 2, 1000);
    }
  }
}
