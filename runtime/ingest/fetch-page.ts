/**
 * GET one page of users. Whose fault each answer is (classifyStatus):
 *  - 408, 425, 429, 5xx, time-outs, connection errors: infrastructure, retried with backoff and
 *    jitter (Retry-After honoured);
 *  - a page that is not a randomuser page (not JSON, wrongly shaped, larger than the cap) is a
 *    BadPageError: retried within the same budget (a proxy may have garbled it once), then the
 *    caller records it with its reason and goes on (ingest.ts); 410 Gone and 451 say at once
 *    that this page will never be given: a BadPageError not retried;
 *  - any other 4xx refuses the request itself (randomuser serves every page: a wrong base URL,
 *    batch size or seed, or no access): an ApiRequestRefused, a configuration error (exit 2).
 */
import { setImmediate } from "node:timers/promises";
import { ConfigError } from "../lib/config";
import { ContentError } from "../lib/errors";
import { pgTextCut } from "../lib/pg-text";
import { retry, RetryableError, type RetryPolicy } from "../lib/retry";
import { apiPageSchema, zodReason } from "./source-record";

export interface FetchPageArgs {
  baseUrl: string;
  seed: string;
  page: number;
  results: number;
  timeoutMs: number;
  policy: RetryPolicy;
  /** the largest response body read; a larger one is a BadPageError (never buffered whole) */
  maxBytes?: number;
  signal?: AbortSignal;
  onRetry?: (reason: string, attempt: number, delayMs: number) => void;
}

export interface FetchedPage {
  results: unknown[];
  fetchedAt: number;
  retries: number;
}

/** The API's page itself is bad (content): recorded with this reason, never a crash. */
export class BadPageError extends ContentError {
  /** final: the API said it will never give this page (410, 451): not retried. */
  constructor(
    reason: string,
    readonly final = false,
  ) {
    super(reason);
    this.name = "BadPageError";
  }
}

/** The API refuses our request whatever the page: our configuration (or access) is wrong. */
export class ApiRequestRefused extends ConfigError {
  constructor(
    readonly reason: string,
    readonly status: number,
  ) {
    super([
      `${reason}: the API refuses the request itself (HTTP ${status}), not one page: check API_BASE_URL (the API's base, ` +
        "without /api/), INGEST_BATCH_SIZE, INGEST_SEED and the API's access",
    ]);
    this.name = "ApiRequestRefused";
  }
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 << 20;

/** The body as text, at most maxBytes: a larger one is cancelled as soon as it is seen. */
export async function readCapped(res: Response, maxBytes: number, what: string): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new BadPageError(
      `${what}: response of ${declared} bytes, larger than the cap of ${maxBytes} (INGEST_MAX_RESPONSE_BYTES)`,
    );
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new BadPageError(`${what}: response larger than the cap of ${maxBytes} bytes (INGEST_MAX_RESPONSE_BYTES)`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status === 425 || status >= 500;
}

/**
 * What a status other than 2xx means for the page: retry (infrastructure), gone (the page, never
 * to be given: skipped with its reason), refused (our request: a configuration error).
 */
export function classifyStatus(status: number): "retry" | "gone" | "refused" {
  if (isRetryableStatus(status)) return "retry";
  if (status === 410 || status === 451) return "gone";
  return "refused";
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
        // the body's first characters, a NUL or half a surrogate pair escaped: the reason is stored
        const msg = `GET ${url}: HTTP ${res.status} ${pgTextCut(text, 200)}`;
        const kind = classifyStatus(res.status);
        if (kind === "retry") throw new RetryableError(msg, retryAfterMs(res.headers.get("retry-after")));
        if (kind === "gone") throw new BadPageError(msg, true);
        throw new ApiRequestRefused(msg, res.status);
      }
      let text: string;
      try {
        text = await readCapped(res, a.maxBytes ?? DEFAULT_MAX_RESPONSE_BYTES, `GET ${url}`);
      } catch (e) {
        if (e instanceof BadPageError) throw e;
        throw new RetryableError(`GET ${url}: reading the body: ${(e as Error).message}`);
      }
      // let a pending reply (the current page's transaction) run before the parse of the page (~15 ms)
      await setImmediate();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (e) {
        // V8's message quotes the body around the error, bad bytes included: escaped
        throw new BadPageError(pgTextCut(`GET ${url}: body is not JSON: ${(e as Error).message}`, 2000));
      }
      const page = apiPageSchema.safeParse(body);
      if (!page.success) throw new BadPageError(`GET ${url}: not a randomuser page: ${zodReason(page.error)}`);
      return page.data;
    },
    {
      ...a.policy,
      isRetryable: (e) => e instanceof RetryableError || (e instanceof BadPageError && !e.final),
      signal: a.signal,
      onRetry: (err, attempt, delay) => {
        retries++;
        a.onRetry?.((err as Error).message, attempt, delay);
      },
    },
  );
  return { results: body.results, fetchedAt: Date.now(), retries };
}
