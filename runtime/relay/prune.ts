/**
 * Outbox retention. A published row is history once it is on the topic: it leaves when it was
 * both staged and published more than the retention ago. Deletes go in batches (one short
 * autocommit statement each, through the index on created_at, a pause between), so they hold no
 * lock the relay's claims wait for (a claim locks pending rows only, and a pruned row is never
 * pending) and leave PostgreSQL to the pipeline while a backlog of millions goes.
 *
 * Never deleted: unpublished rows (the relay's work, and what reconciliation marks), parked rows
 * (an operator un-parks them). Beyond the retention the audit finds no outbox row for a user and
 * checks that its row is in Cassandra, not its version (runtime/audit/audit.ts).
 *
 * One relay prunes at a time: a session advisory lock, tried, never waited for.
 */
import type { Pool } from "pg";
import type { Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { sleep } from "../lib/sleep";

export const PRUNE_LOCK = 72_013;

export interface PruneOptions {
  /** Seconds a published row is kept. */
  retentionSeconds: number;
  /** Rows per delete statement. */
  batch: number;
  /** Between two statements of a pass: a backlog of millions is deleted without taking PostgreSQL over. */
  pauseMs?: number;
  signal?: AbortSignal;
}

/** What one pass deleted; `skipped` when another relay holds the pruning lock. */
export interface PruneResult {
  deleted: number;
  statements: number;
  skipped: boolean;
}

const DELETE_BATCH = `
DELETE FROM outbox WHERE id = ANY (ARRAY(
  SELECT id FROM outbox
   WHERE created_at < now() - make_interval(secs => $1)
     AND published_at < now() - make_interval(secs => $1)
   ORDER BY created_at LIMIT $2))`;

/** One pass: deletes every row past the retention, a batch at a time, unless another relay is at it. */
export async function pruneOutbox(pool: Pool, o: PruneOptions): Promise<PruneResult> {
  const client = await pool.connect();
  const result: PruneResult = { deleted: 0, statements: 0, skipped: false };
  let locked = false;
  try {
    locked = (await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [PRUNE_LOCK])).rows[0].ok;
    if (!locked) return { ...result, skipped: true };
    for (;;) {
      const r = await client.query(DELETE_BATCH, [o.retentionSeconds, o.batch]);
      result.statements++;
      result.deleted += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < o.batch || o.signal?.aborted) return result;
      await sleep(o.pauseMs ?? 0, o.signal);
    }
  } finally {
    if (locked) await client.query("SELECT pg_advisory_unlock($1)", [PRUNE_LOCK]).catch(() => undefined);
    client.release();
  }
}

/**
 * Prunes now and every `everyMs` until the signal. A failed pass (PostgreSQL away) is logged and
 * tried again at the next one: pruning is housekeeping, nothing waits for it.
 */
export async function keepOutboxPruned(
  pool: Pool,
  o: PruneOptions & { everyMs: number; log: Logger; signal: AbortSignal },
): Promise<void> {
  while (!o.signal.aborted) {
    const t0 = Date.now();
    try {
      const r = await pruneOutbox(pool, o);
      metrics().outboxPruned.inc(r.deleted);
      if (r.deleted > 0)
        o.log.info({ ...r, ms: Date.now() - t0, retentionSeconds: o.retentionSeconds }, "outbox pruned");
    } catch (e) {
      o.log.warn({ err: e instanceof Error ? e.message : String(e) }, "outbox not pruned now; trying again later");
    }
    await sleep(o.everyMs, o.signal);
  }
}
