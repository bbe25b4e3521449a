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
          const ra = Number(res.headers.get("retry-after"));
          throw new RetryableError(msg, Number.isFinite(ra) && ra > 0 ? ra * 1000 : undefined);
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
