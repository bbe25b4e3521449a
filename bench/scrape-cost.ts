/**
 * `npm run bench:scrape`: what Prometheus's scrapes cost a worker. The relay drains the same
 * backlog of outbox rows to Kafka (relay --once) in alternating rounds, once left alone and once
 * scraped every BENCH_SCRAPE_MS (1000: fifteen times the stacks' default of 15 s), A B B A ...;
 * prints each round's records/s and the ratio of the medians, scraped to alone. Not a timed
 * test. Needs scripts/services up postgres zookeeper kafka schema-registry. The relay works in
 * a PostgreSQL schema of its own (search_path), dropped at the end.
 *
 * Env: BENCH_RECORDS (100000 a round), BENCH_ROUNDS (4: pairs of rounds, each pair A then B
 * or B then A), BENCH_SCRAPE_MS (1000).
 */
import { join } from "node:path";
import { Pool } from "pg";
import { generatePage } from "../runtime/api/generate";
import { normalizeUser } from "../runtime/ingest/normalize";
import { prepareUsers, storeBatch } from "../runtime/ingest/store-batch";
import { PG_SCHEMA_SQL } from "../runtime/lib/pg-schema";
import { spawnWorker } from "../scripts/pipeline";
import { loadServicesEnv, pipelineHome } from "../tests/support/services";

const N = Number(process.env.BENCH_RECORDS ?? 100_000);
const PAIRS = Number(process.env.BENCH_ROUNDS ?? 4);
const SCRAPE_MS = Number(process.env.BENCH_SCRAPE_MS ?? 1000);
const PAGE = 1000;
const say = (s: string) => process.stdout.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const senv = loadServicesEnv(["PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER", "KAFKA_BROKERS", "SCHEMA_REGISTRY_URL"]);
  const run = Date.now().toString(36);
  const schema = `bench_scrape_${run}`;
  const options = `-c search_path=${schema}`;
  const pool = new Pool({ host: senv.PG_HOST, port: Number(senv.PG_PORT), database: senv.PG_DATABASE, user: senv.PG_USER, password: senv.PG_PASSWORD, max: 2, options });
  const logDir = join(pipelineHome(), "run", "bench", `scrape-${run}`);
  await pool.query(`CREATE SCHEMA ${schema}`);
  await pool.query(PG_SCHEMA_SQL);
  const rates: Record<"alone" | "scraped", number[]> = { alone: [], scraped: [] };
  let scrapes = 0;
  try {
    say(`scrape cost ${run}: ${N} outbox rows a round, ${PAIRS * 2} rounds, scraped every ${SCRAPE_MS} ms in half of them; worker logs ${logDir}/`);
    for (let pair = 0; pair < PAIRS; pair++) {
      const order: ("alone" | "scraped")[] = pair % 2 === 0 ? ["alone", "scraped"] : ["scraped", "alone"];
      for (const mode of order) {
        const seed = `scrape-${run}-${pair}-${mode}`;
        for (let page = 1; page <= N / PAGE; page++) {
          const users = generatePage(seed, page, PAGE).results.flatMap((r) => {
            const u = normalizeUser(r, Date.now());
            return u.ok ? [u.user] : [];
          });
          await storeBatch(pool, { seed, page, users, rejected: [], prepared: prepareUsers(users) });
        }
        const w = await spawnWorker(`relay-${pair}-${mode}`, ["relay", "--once"], { ...senv, PGOPTIONS: options, LOG_LEVEL: "warn" }, logDir);
        const timer =
          mode === "scraped"
            ? setInterval(() => {
                fetch(`http://127.0.0.1:${w.metricsPort}/metrics`).then((r) => r.text()).then(() => scrapes++, () => undefined);
              }, SCRAPE_MS)
            : undefined;
        const code = await w.exited;
        if (timer) clearInterval(timer);
        const s = w.summary() as { published?: number; seconds?: number } | undefined;
        if (code !== 0 || !s?.published || !s.seconds) throw new Error(`relay exited ${code}, summary ${JSON.stringify(s)}: see ${w.logFile}`);
        const rate = s.published / s.seconds;
        rates[mode].push(rate);
        say(`  round ${pair * 2 + order.indexOf(mode) + 1} ${mode.padEnd(7)} ${s.published} rows in ${s.seconds.toFixed(1)} s: ${rate.toFixed(0)} records/s`);
      }
    }
  } finally {
    await pool.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
    await pool.end();
  }
  const alone = median(rates.alone);
  const scraped = median(rates.scraped);
  say(`relay: alone ${alone.toFixed(0)} records/s, scraped every ${SCRAPE_MS} ms ${scraped.toFixed(0)} records/s (medians); scraped/alone ${(scraped / alone).toFixed(3)}; ${scrapes} scrapes answered`);
  say(`BENCH ${JSON.stringify({ alone: Math.round(alone), scraped: Math.round(scraped), ratio: Number((scraped / alone).toFixed(3)), scrapeMs: SCRAPE_MS, records: N, rounds: PAIRS * 2 })}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
