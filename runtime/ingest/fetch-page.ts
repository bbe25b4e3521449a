/** GET one page of users; 429, 5xx and time-outs are retried with backoff and jitter. */
import { retry, RetryableError, type RetryPolicy } from "../lib/retry";
import { apiPageSchema, zodReason } from "./source-record";

export interface FetchPageArgs {
  baseUrl: string;
  seed: string;
  page: number;
  results: number;
  timeoutMs: number;
  policy: RetryPolicy;
  signal?: AbortSignal;
  onRetry?: (reason: string, attempt: number, delayMs: number) => void;
}

export interface FetchedPage {
  results: unknown[];
  fetchedAt: number;
  retries: number;
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** Retry-After in either form (RFC 9110): delay-seconds, or an HTTP-date. */
export function retryAfterMs(h: string | null, now: number = Date.now()): number | undefined {
  if (!h) return undefined;
  const t = h.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const at = Date.parse(t);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export function pageUrl(baseUrl: string, seed: string, page: number, results: number): string {
  const q = new URLSearchParams({ results: String(results), seed, page: String(page) });
  return `${baseUrl.replace(/\/+$/, "")}/api/?${q}`;
}

export async function fetchPage(a: FetchPageArgs): Promise<FetchedPage> {
  let retries = 0;
  const url = pageUrl(a.baseUrl, a.seed, a.page, a.results);
  const body = await retry(
    async () => {
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(a.timeoutMs), headers: { accept: "application/json" } });
      } catch (e) {
        // time-outs and connection errors
        throw new RetryableError(`GET ${url}: ${(e as Error).message}`);
      }
      if (!res.ok) {
        const text = await res.text().catch(() => "");
        const msg = `GET ${url}: HTTP ${res.status} ${text.slice(0, 200)}`;
        if (isRetryableStatus(res.status)) {
          throw new RetryableError(msg, retryAfterMs(res.headers.get("retry-after")));
        }
        throw new Error(msg);
      }
      try {
        return (await res.json()) as unknown;
      } catch (e) {
        throw new RetryableError(`GET ${url}: body is not JSON: ${(e as Error).message}`);
      }
    },
    {
      ...a.policy,
      signal: a.signal,
      onRetry: (err, attempt, delay) => {
        retries++;
        a.onRetry?.((err as Error).message, attempt, delay);
      },
    },
  );
  const page = apiPageSchema.safeParse(body);
  // the API's fault, not ours: fetched again after a backoff (the caller waits, never exits)
  if (!page.success) throw new RetryableError(`GET ${url}: not a randomuser page: ${zodReason(page.error)}`);
  return { results: page.data.results, fetchedAt: Date.now(), retries };
}
