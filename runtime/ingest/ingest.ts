/**
 * The ingest worker: page after page of users from the API into PostgreSQL (users + outbox),
 * remembering the next page per seed in ingest_cursor so a re-run continues where it stopped.
 */
import { setImmediate } from "node:timers/promises";
import type { Pool } from "pg";
import type { IngestConfig } from "../lib/config";
import { createLogger, type Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { createPgPool } from "../lib/pg";
import { migrate } from "../lib/pg-schema";
import { classify, describe } from "../lib/errors";
import { backoffDelay, untilAvailable } from "../lib/retry";
import { markFailing, markHealthy } from "../lib/health";
import { sleep } from "../lib/sleep";
import type { UserCreated } from "../contracts/user-created";
import { ApiRequestRefused, BadPageError, fetchPage, type FetchedPage } from "./fetch-page";
import { normalizeUser } from "./normalize";
import {
  nextPage,
  prepareUsers,
  recordPageFailure,
  recordPageRecovered,
  runPages,
  storeBatch,
  type PreparedUsers,
  type Rejected,
} from "./store-batch";

/** A page, or the reason it was given up. */
type Fetched =
  | (FetchedPage & { split: ReturnType<typeof splitRecords>; prepared: PreparedUsers })
  | { failed: { reason: string; attempts: number } };

/** The longest pause between two rounds of fetching a page the API keeps refusing. */
const PAGE_BACKOFF_MAX_MS = 60_000;

export interface IngestSummary {
  seed: string;
  batches: number;
  fetched: number;
  staged: number;
  outboxed: number;
  rejected: number;
  /** pages given up (wrongly shaped, not JSON, over the size cap): rows in ingest_page_failures */
  failedPages: number;
  retries: number;
  nextPage: number;
  seconds: number;
  /** true when a stop signal ended the run before all batches were done. */
  interrupted: boolean;
  /** INGEST_RUN_ID, when given */
  run?: string;
  /** pages of that run stored by its earlier tries (not fetched again) */
  earlierPages?: number;
}

export interface IngestOptions {
  config: IngestConfig;
  log?: Logger;
  signal?: AbortSignal;
  /** A pool to use (not closed); else one is created from config and closed at the end. */
  pool?: Pool;
  /** Batches for runIngestOnce; default config.INGEST_BATCHES. */
  batches?: number;
}

/**
 * Split a page into normalized users and rejected records. The same id twice in a page: the last
 * one is kept, each earlier one is rejected with a reason (it would otherwise vanish unrecorded).
 */
export function splitRecords(results: unknown[], fetchedAt: number): { users: UserCreated[]; rejected: Rejected[] } {
  const ok: { idx: number; raw: unknown; user: UserCreated }[] = [];
  const rejected: Rejected[] = [];
  results.forEach((raw, idx) => {
    const n = normalizeUser(raw, fetchedAt);
    if (n.ok) ok.push({ idx, raw, user: n.user });
    else rejected.push({ idx, raw, reason: n.reason });
  });
  const lastIdx = new Map<string, number>();
  for (const r of ok) lastIdx.set(r.user.id, r.idx);
  const users: UserCreated[] = [];
  for (const r of ok) {
    const last = lastIdx.get(r.user.id) as number;
    if (last === r.idx) users.push(r.user);
    else
      rejected.push({
        idx: r.idx,
        raw: r.raw,
        reason: `login.uuid: duplicate id ${r.user.id} in the page; record ${last} kept`,
      });
  }
  rejected.sort((a, b) => a.idx - b.idx);
  return { users, rejected };
}

async function withPool<T>(o: IngestOptions, fn: (pool: Pool, log: Logger) => Promise<T>): Promise<T> {
  const log = o.log ?? createLogger("ingest", o.config.LOG_LEVEL);
  const pool = o.pool ?? createPgPool(o.config, 2, log);
  try {
    // PostgreSQL down at start: wait for it (never exit for a dependency)
    await untilAvailable("postgres: migrate", () => migrate(pool), { signal: o.signal, log, health: "ingest" });
    return await fn(pool, log);
  } finally {
    if (!o.pool) await pool.end();
  }
}

/**
 * `maxBatches` pages from the seed's cursor on. With `run`, they are that run's pages: the pages
 * its earlier tries stored count, and a try never stores more than the run's share.
 */
async function ingestBatches(
  pool: Pool,
  log: Logger,
  o: IngestOptions,
  maxBatches: number,
  pauseMs: number,
  run?: string,
): Promise<IngestSummary> {
  const c = o.config;
  const m = metrics();
  const t0 = Date.now();
  const s: IngestSummary = {
    seed: c.INGEST_SEED,
    batches: 0,
    fetched: 0,
    staged: 0,
    outboxed: 0,
    rejected: 0,
    failedPages: 0,
    retries: 0,
    nextPage: 1,
    seconds: 0,
    interrupted: false,
  };
  const wait = { signal: o.signal, log, health: "ingest" };
  let todo = maxBatches;
  if (run !== undefined) {
    const earlier = await untilAvailable("postgres: run", () => runPages(pool, run), wait);
    Object.assign(s, { run, earlierPages: earlier });
    todo = Math.max(0, maxBatches - earlier);
    if (earlier > 0)
      log.info(
        { run, earlierPages: earlier, pages: todo },
        "a retried run: the pages its earlier tries stored are not fetched again",
      );
  }
  const fetchOnce = (page: number) =>
    fetchPage({
      baseUrl: c.API_BASE_URL,
      seed: c.INGEST_SEED,
      page,
      results: c.INGEST_BATCH_SIZE,
      timeoutMs: c.INGEST_HTTP_TIMEOUT_MS,
      policy: { retries: c.INGEST_RETRIES, baseMs: c.INGEST_RETRY_BASE_MS, maxMs: c.INGEST_RETRY_MAX_MS },
      maxBytes: c.INGEST_MAX_RESPONSE_BYTES,
      signal: o.signal,
      onRetry: (reason, attempt, delayMs) => {
        s.retries++;
        m.retries.inc({ worker: "ingest" });
        log.warn({ page, attempt, delayMs, reason }, "fetch failed, retrying");
      },
    });
  /**
   * A page, or why it cannot be had. When the retry budget is spent: a bad page (content) is
   * given up, recorded with its reason when the cursor passes it; a storm (the API down, 429/5xx)
   * is recorded in ingest_page_failures, and the same page is asked again after a longer backoff,
   * as long as it takes. Never an exit.
   */
  const fetchOrGiveUp = async (page: number): Promise<Fetched> => {
    const tries = c.INGEST_RETRIES + 1;
    for (let round = 0; ; round++) {
      try {
        const f = await fetchOnce(page);
        // Between the synchronous pieces (parse, validation, parameters: 5-15 ms each a page), the
        // event loop is let go once: the current page's transaction is a chain of round trips, and
        // a reply that waits behind a whole page's work holds PostgreSQL idle meanwhile.
        await setImmediate();
        const split = splitRecords(f.results, f.fetchedAt);
        await setImmediate();
        // the upsert's parameters too: built here, during the previous page's transaction
        const prepared = prepareUsers(split.users);
        if (round > 0) {
          markHealthy("ingest");
          await untilAvailable("postgres: page recovered", () => recordPageRecovered(pool, c.INGEST_SEED, page), wait);
        }
        return { ...f, split, prepared };
      } catch (e) {
        if (o.signal?.aborted) throw e;
        if (e instanceof BadPageError) {
          const attempts = e.final ? 1 : tries;
          log.warn({ page, attempts, reason: e.reason }, "bad page: recorded in ingest_page_failures and skipped");
          return { failed: { reason: e.reason, attempts } };
        }
        if (e instanceof ApiRequestRefused) {
          // our configuration: skipping would skip every page. Recorded (not skipped), then exit 2
          markFailing("ingest", `page ${page}: ${e.reason}`);
          await untilAvailable(
            "postgres: record page failure",
            () => recordPageFailure(pool, c.INGEST_SEED, page, e.reason, 1, false),
            wait,
          );
          log.error(
            { page, status: e.status, reason: e.reason },
            "the API refuses ingest's request: a configuration error; stopping",
          );
          throw e;
        }
        if (classify(e) !== "infrastructure") throw e;
        const reason = describe(e);
        markFailing("ingest", `page ${page}: ${reason}`);
        await untilAvailable(
          "postgres: record page failure",
          () => recordPageFailure(pool, c.INGEST_SEED, page, reason, tries, false),
          wait,
        );
        const delay =
          backoffDelay(round, { baseMs: c.INGEST_RETRY_MAX_MS, maxMs: PAGE_BACKOFF_MAX_MS }) + c.INGEST_RETRY_BASE_MS;
        log.warn(
          { page, attempts: tries, delay, reason },
          "page not fetched within the retry budget: recorded in ingest_page_failures; backing off, then the same page again",
        );
        await sleep(delay, o.signal);
        if (o.signal?.aborted) throw e;
      }
    }
  };
  const fetchFor = (page: number) => {
    const p = fetchOrGiveUp(page);
    p.catch(() => undefined); // awaited below, or dropped on stop
    return p;
  };
  // While a page is stored, the next one is already being fetched, parsed, validated and turned
  // into the upsert's parameters (one-shot mode, no pause): fetchFor does all that as soon as the
  // page arrives, during the current transaction.
  const prefetch = pauseMs === 0;
  let page = await untilAvailable("postgres: cursor", () => nextPage(pool, c.INGEST_SEED), wait);
  let inflight = todo > 0 ? fetchFor(page) : undefined;
  while (inflight && s.batches < todo) {
    if (o.signal?.aborted) {
      s.interrupted = true;
      break;
    }
    const end = m.batchSeconds.startTimer({ worker: "ingest" });
    let fetched;
    try {
      fetched = await inflight;
    } catch (e) {
      if (o.signal?.aborted) {
        s.interrupted = true;
        break;
      }
      throw e;
    }
    const more = s.batches + 1 < todo;
    let next: Promise<Fetched> | undefined = prefetch && more ? fetchFor(page + 1) : undefined;
    // From here the batch in hand is finished even if a stop signal arrives: one transaction.
    const results = "failed" in fetched ? [] : fetched.results;
    const { users, rejected } = "failed" in fetched ? { users: [], rejected: [] } : fetched.split;
    m.recordsIn.inc({ worker: "ingest" }, results.length);
    const failed = "failed" in fetched ? fetched.failed : undefined;
    // PostgreSQL restarting: the same page again once it is back (one transaction: all or nothing)
    const r = await untilAvailable(
      `postgres: store page ${page}`,
      () =>
        storeBatch(pool, {
          seed: c.INGEST_SEED,
          page,
          users,
          rejected,
          failed,
          prepared: "failed" in fetched ? undefined : fetched.prepared,
          run: run === undefined ? undefined : { id: run, pages: maxBatches },
        }),
      wait,
    );
    end();
    if (r.runComplete) {
      log.info({ run, page }, "the run has all its pages (another try of it stored them); stopping");
      break;
    }
    if (!r.stored) {
      log.info({ page }, "page already stored by another ingest; moving on");
      page = await untilAvailable("postgres: cursor", () => nextPage(pool, c.INGEST_SEED), wait);
      inflight = fetchFor(page);
      continue;
    }
    s.batches++;
    if (failed) {
      s.failedPages++;
      m.recordsFailed.inc({ worker: "ingest", reason: "bad_page" });
    }
    s.fetched += results.length;
    s.staged += r.upserted;
    s.outboxed += r.outboxed;
    s.rejected += r.rejected;
    m.recordsOut.inc({ worker: "ingest" }, r.upserted);
    if (r.rejected > 0) m.recordsFailed.inc({ worker: "ingest", reason: "invalid" }, r.rejected);
    log.info(
      {
        page,
        fetched: results.length,
        staged: r.upserted,
        outboxed: r.outboxed,
        rejected: r.rejected,
        retries: "failed" in fetched ? undefined : fetched.retries,
        failed: failed?.reason,
      },
      "batch stored",
    );
    if (!more) break;
    page++;
    if (!next) {
      if (pauseMs > 0) await sleep(pauseMs, o.signal);
      if (o.signal?.aborted) continue;
      next = fetchFor(page);
    }
    inflight = next;
  }
  s.nextPage = await untilAvailable("postgres: cursor", () => nextPage(pool, c.INGEST_SEED), wait).catch(
    (e: unknown) => {
      if (classify(e) !== "infrastructure") throw e;
      log.warn({ err: describe(e) }, "cursor not read at stop");
      return -1;
    },
  );
  s.seconds = (Date.now() - t0) / 1000;
  return s;
}

/** One-shot: `batches` pages (default INGEST_BATCHES), then a summary. */
export function runIngestOnce(o: IngestOptions): Promise<IngestSummary> {
  return withPool(o, (pool, log) =>
    ingestBatches(pool, log, o, o.batches ?? o.config.INGEST_BATCHES, 0, o.config.INGEST_RUN_ID),
  );
}

/** Loop: a page every INGEST_INTERVAL_MS until the signal aborts. */
export function runIngestLoop(o: IngestOptions): Promise<IngestSummary> {
  return withPool(o, (pool, log) =>
    ingestBatches(pool, log, o, o.batches ?? Number.POSITIVE_INFINITY, o.config.INGEST_INTERVAL_MS),
  );
}
