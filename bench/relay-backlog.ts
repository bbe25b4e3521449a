/**
 * What the relay benches (scrape-cost.ts, outbox-history.ts) share: a PostgreSQL schema of their
 * own (the relay reaches it through PGOPTIONS' search_path), a backlog of outbox rows staged the
 * way ingest stages them, and one `relay --once` that drains it.
 */
import { join } from "node:path";
import { Pool } from "pg";
import { generatePage } from "../runtime/api/generate";
import { normalizeUser } from "../runtime/ingest/normalize";
import { prepareUsers, storeBatch } from "../runtime/ingest/store-batch";
import { PG_SCHEMA_SQL } from "../runtime/lib/pg-schema";
import { spawnWorker, type WorkerProc } from "../scripts/pipeline";
import { loadServicesEnv, pipelineHome } from "../tests/support/services";

const PAGE = 1000;

/** The relay's summary, as `relay --once` prints it at the end. */
export interface RelayRun {
  published: number;
  seconds: number;
  cpuSeconds: number;
}

export interface RelayBench {
  run: string;
  pool: Pool;
  logDir: string;
  /** Stages `n` new users (seed `seed`) as pending outbox rows. */
  stage(seed: string, n: number): Promise<void>;
  /** One `relay --once` with these extra variables; `during` runs beside it (a scraper). */
  drain(name: string, env?: Record<string, string>, during?: (w: WorkerProc) => () => Promise<void>): Promise<RelayRun>;
  /** Drops the schema and closes the pool. */
  close(): Promise<void>;
}

export async function relayBench(kind: string): Promise<RelayBench> {
  const senv = loadServicesEnv([
    "PG_HOST",
    "PG_PORT",
    "PG_DATABASE",
    "PG_USER",
    "KAFKA_BROKERS",
    "SCHEMA_REGISTRY_URL",
  ]);
  const run = Date.now().toString(36);
  const schema = `bench_${kind}_${run}`;
  const options = `-c search_path=${schema}`;
  const pool = new Pool({
    host: senv.PG_HOST,
    port: Number(senv.PG_PORT),
    database: senv.PG_DATABASE,
    user: senv.PG_USER,
    password: senv.PG_PASSWORD,
    max: 2,
    options,
  });
  const logDir = join(pipelineHome(), "run", "bench", `${kind}-${run}`);
  await pool.query(`CREATE SCHEMA ${schema}`);
  await pool.query(PG_SCHEMA_SQL);
  return {
    run,
    pool,
    logDir,
    async stage(seed, n) {
      for (let page = 1; page <= n / PAGE; page++) {
        const users = generatePage(seed, page, PAGE).results.flatMap((r) => {
          const u = normalizeUser(r, Date.now());
          return u.ok ? [u.user] : [];
        });
        await storeBatch(pool, { seed, page, users, rejected: [], prepared: prepareUsers(users) });
      }
    },
    async drain(name, env = {}, during) {
      const w = await spawnWorker(
        name,
        ["relay", "--once"],
        { ...senv, PGOPTIONS: options, LOG_LEVEL: "warn", ...env },
        logDir,
      );
      const stop = during?.(w);
      const code = await w.exited;
      await stop?.();
      const s = w.summary() as Partial<RelayRun> | undefined;
      if (code !== 0 || !s?.published || !s.seconds || s.cpuSeconds === undefined) {
        throw new Error(`relay exited ${code}, summary ${JSON.stringify(s)}: see ${w.logFile}`);
      }
      return { published: s.published, seconds: s.seconds, cpuSeconds: s.cpuSeconds };
    },
    async close() {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
}
