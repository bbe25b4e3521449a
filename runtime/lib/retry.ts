/**
 * Retry with exponential backoff and full jitter: delay(n) = random(0, min(max, base * 2^n)),
 * or the server's Retry-After when it asks for more.
 */
import { classify, describe, InfrastructureError } from "./errors";
import { markFailing, markHealthy } from "./health";
import { sleep } from "./sleep";

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  baseMs: number;
  maxMs: number;
}

/** A dependency's failure that another attempt may cure, and after how long at least. */
export class RetryableError extends InfrastructureError {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "RetryableError";
  }
}

export function backoffDelay(
  attempt: number,
  p: Pick<RetryPolicy, "baseMs" | "maxMs">,
  random: () => number = Math.random,
): number {
  const cap = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

export const RETRY_AFTER_MAX_MS = 120_000;

export interface RetryOptions extends RetryPolicy {
  retryAfterMaxMs?: number;
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
        // the server knows best: honour its Retry-After up to retryAfterMaxMs (2 min), not maxMs
        delay = Math.max(delay, Math.min(err.retryAfterMs, o.retryAfterMaxMs ?? RETRY_AFTER_MAX_MS));
      }
      o.onRetry?.(err, attempt + 1, delay);
      await sleep(delay, o.signal);
      if (o.signal?.aborted) throw err;
    }
  }
}

/**
 * The policy for dependencies (kafkajs style: initial 200 ms, doubling, full jitter, capped at
 * 2 s so a worker notices a dependency back within about 2 s; no retry budget: a worker waits
 * for its dependency as long as it takes, it never exits for it).
 */
export const INFRA_RETRY: Pick<RetryPolicy, "baseMs" | "maxMs"> = { baseMs: 200, maxMs: 2_000 };

export interface UntilAvailableOptions {
  signal?: AbortSignal;
  /** health key marked failing while it fails (e.g. "relay[0]") */
  health?: string;
  log?: { warn(obj: object, msg: string): void };
  policy?: Pick<RetryPolicy, "baseMs" | "maxMs">;
  /** called after each infrastructure failure (rebuild a client, count a retry) */
  onFailure?: (err: unknown, attempt: number) => void | Promise<void>;
}

/**
 * Run `fn` until it succeeds, retrying infrastructure errors forever with backoff (the loop is
 * marked unhealthy meanwhile); content and programming errors are thrown at once. When the signal
 * aborts, the last error is thrown.
 */
export async function untilAvailable<T>(what: string, fn: () => Promise<T>, o: UntilAvailableOptions = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fn();
      if (attempt > 0 && o.health) markHealthy(o.health);
      return r;
    } catch (err) {
      if (classify(err) !== "infrastructure" || o.signal?.aborted) throw err;
      if (o.health) markFailing(o.health, `${what}: ${describe(err)}`);
      await o.onFailure?.(err, attempt + 1);
      const delay = backoffDelay(attempt, o.policy ?? INFRA_RETRY) + 50;
      o.log?.warn(
        { err: describe(err), attempt: attempt + 1, delayMs: delay },
        `${what} failed (infrastructure); retrying`,
      );
      await sleep(delay, o.signal);
      if (o.signal?.aborted) throw err;
    }
  }
}
