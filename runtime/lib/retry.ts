/**
 * Retry with exponential backoff and full jitter: delay(n) = random(0, min(max, base * 2^n)),
 * or the server's Retry-After when it asks for more.
 */
import { sleep } from "./sleep";

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  baseMs: number;
  maxMs: number;
}

/** An error that says whether another attempt may succeed, and after how long at least. */
export class RetryableError extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
    this.name = "RetryableError";
  }
}

export function backoffDelay(attempt: number, p: Pick<RetryPolicy, "baseMs" | "maxMs">, random: () => number = Math.random): number {
  const cap = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

export interface RetryOptions extends RetryPolicy {
  isRetryable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
  random?: () => number;
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const isRetryable = o.isRetryable ?? ((e: unknown) => e instanceof RetryableError);
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= o.retries || !isRetryable(err) || o.signal?.aborted) throw err;
      let delay = backoffDelay(attempt, o, o.random);
      if (err instanceof RetryableError && err.retryAfterMs !== undefined) {
        delay = Math.max(delay, Math.min(err.retryAfterMs, o.maxMs));
      }
      o.onRetry?.(err, attempt + 1, delay);
      await sleep(delay, o.signal);
      if (o.signal?.aborted) throw err;
    }
  }
}
