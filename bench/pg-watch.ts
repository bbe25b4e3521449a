/**
 * What PostgreSQL did during a bench phase, to explain a latency tail before Kafka (ingest's
 * page, the outbox, the relay's round): the bench schema's tables (rows, dead rows, autovacuum and
 * autoanalyze runs, size) and the checkpointer's counters before and after, and every 250 ms the
 * autovacuum workers running and the statements of the bench's database active for more than
 * 250 ms (with what they wait on). The workers' tables get log_autovacuum_min_duration = 0, so
 * PostgreSQL's own log ($PIPELINE_HOME/run/postgres/postgres.log) says what each autovacuum did.
 */
import type { Pool } from "pg";

export interface TableStats {
  relname: string;
  live: number;
  dead: number;
  upd: number;
  hot: number;
  autovacuums: number;
  autoanalyzes: number;
  mb: number;
}

export interface PgSnapshot {
  at: number;
  tables: TableStats[];
  checkpoints: number;
  checkpointBuffers: number;
}

export interface PgEvent {
  t: number;
  what: string;
}

/** log every autovacuum of the workers' tables in the bench schema (a storage parameter: this schema only). */
export async function logAutovacuum(pool: Pool): Promise<void> {
  for (const t of ["outbox", "users"]) await pool.query(`ALTER TABLE ${t} SET (log_autovacuum_min_duration = 0)`);
}

export async function pgSnapshot(pool: Pool): Promise<PgSnapshot> {
  const t = await pool.query<{
    relname: string;
    live: string;
    dead: string;
    upd: string;
    hot: string;
    av: string;
    aa: string;
    bytes: string;
  }>(
    `SELECT relname, n_live_tup AS live, n_dead_tup AS dead, n_tup_upd AS upd, n_tup_hot_upd AS hot,
            autovacuum_count AS av, autoanalyze_count AS aa, pg_total_relation_size(relid) AS bytes
       FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname IN ('outbox', 'users') ORDER BY relname`,
  );
  const b = await pool.query<{ c: string; buf: string }>(
    "SELECT checkpoints_timed + checkpoints_req AS c, buffers_checkpoint AS buf FROM pg_stat_bgwriter",
  );
  return {
    at: Date.now(),
    tables: t.rows.map((r) => ({
      relname: r.relname,
      live: Number(r.live),
      dead: Number(r.dead),
      upd: Number(r.upd),
      hot: Number(r.hot),
      autovacuums: Number(r.av),
      autoanalyzes: Number(r.aa),
      mb: Math.round(Number(r.bytes) / 2 ** 20),
    })),
    checkpoints: Number(b.rows[0].c),
    checkpointBuffers: Number(b.rows[0].buf),
  };
}

/** Polls pg_stat_activity every 250 ms until stopped; an event each time something new is seen. */
export function watchPg(pool: Pool): { stop(): PgEvent[] } {
  const events: PgEvent[] = [];
  const seen = new Map<string, number>();
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const r = await pool
        .query<{ pid: number; bt: string; wt: string | null; we: string | null; q: string; ms: string }>(
          `SELECT pid, backend_type AS bt, wait_event_type AS wt, wait_event AS we, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS q,
                  (extract(epoch FROM clock_timestamp() - query_start) * 1000)::bigint AS ms
             FROM pg_stat_activity
            WHERE pid <> pg_backend_pid() AND state = 'active'
              AND (backend_type = 'autovacuum worker' OR (datname = current_database() AND clock_timestamp() - query_start > interval '250 ms'))`,
        )
        .catch(() => ({ rows: [] }));
      for (const x of r.rows) {
        const key = `${x.pid}|${x.q}`;
        const what = `${x.bt === "autovacuum worker" ? "autovacuum" : "slow statement"} pid ${x.pid} ${x.ms} ms${x.we ? ` (waits ${x.wt}/${x.we})` : ""}: ${x.q}`;
        // a new statement, or the same one still running a second later
        const last = seen.get(key);
        if (last === undefined || Date.now() - last >= 1000) {
          seen.set(key, Date.now());
          events.push({ t: Date.now(), what });
        }
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  };
  void loop();
  return {
    stop: () => {
      stopped = true;
      return events;
    },
  };
}

export function describeSnapshots(a: PgSnapshot, b: PgSnapshot): string {
  const tables = b.tables.map((t) => {
    const s = a.tables.find((x) => x.relname === t.relname);
    return `${t.relname} live ${t.live} dead ${s?.dead ?? "?"}→${t.dead} (HOT ${t.hot}/${t.upd} updates) autovacuum +${t.autovacuums - (s?.autovacuums ?? 0)} autoanalyze +${t.autoanalyzes - (s?.autoanalyzes ?? 0)} ${s?.mb ?? "?"}→${t.mb} MB`;
  });
  return `${tables.join("; ")}; checkpoints +${b.checkpoints - a.checkpoints} (${b.checkpointBuffers - a.checkpointBuffers} buffers written)`;
}
