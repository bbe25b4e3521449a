/**
 * `npm run bench:outbox`: the relay's rate as published rows pile up in the outbox, and with
 * them pruned. In one process run, the relay (relay --once) drains the same backlog of
 * BENCH_RECORDS pending rows:
 *   1. empty: an outbox with no history (the reference), twice;
 *   2. history: beside BENCH_HISTORY published rows 30 days old (what a stage keeps without a
 *      retention), retention off, twice;
 *   3. pruning: the same history, with the stacks' default retention (7 days): the relay deletes
 *      the whole history while it drains;
 *   4. pruned: once the bench has deleted the rest of the history and vacuumed: the steady state
 *      of a stage whose outbox holds a week of rows, retention on.
 * Prints each round's records/s and its ratio to the reference. Not a timed test.
 *
 * Needs scripts/services up postgres zookeeper kafka schema-registry. Works in a PostgreSQL schema
 * of its own (search_path), dropped at the end. Env: BENCH_RECORDS (50000), BENCH_HISTORY (2000000).
 */
import { pruneOutbox } from "../runtime/relay/prune";
import { relayBench } from "./relay-backlog";

const N = Number(process.env.BENCH_RECORDS ?? 50_000);
const HISTORY = Number(process.env.BENCH_HISTORY ?? 2_000_000);
const WEEK_S = 7 * 24 * 3600;
const say = (s: string) => process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  const bench = await relayBench("outbox");
  const { pool, run, logDir } = bench;
  const rates: { label: string; rate: number; rows: number }[] = [];
  const outboxRows = async () =>
    Number((await pool.query<{ n: string }>("SELECT count(*)::text AS n FROM outbox")).rows[0].n);

  /** Stages N users as pending outbox rows, then drains them with one relay --once. */
  async function round(label: string, retentionS: number): Promise<void> {
    await bench.stage(`outbox-${run}-${rates.length}`, N);
    const before = await outboxRows();
    const s = await bench.drain(`relay-${rates.length}`, { RELAY_OUTBOX_RETENTION_S: String(retentionS) });
    const rate = s.published / s.seconds;
    rates.push({ label, rate, rows: before });
    const ref = rates[0].rate;
    say(
      `  ${label.padEnd(9)} outbox ${before.toLocaleString("en-US").padStart(10)} rows: ${s.published} published in ${s.seconds.toFixed(1)} s, ${rate.toFixed(0)} records/s (${(rate / ref).toFixed(2)} of the first)`,
    );
  }

  try {
    say(
      `outbox history ${run}: ${N} pending rows a round; history ${HISTORY.toLocaleString("en-US")} published rows; worker logs ${logDir}/`,
    );
    await round("empty", 0);
    await round("empty", 0);
    const payload = (await pool.query<{ p: unknown }>("SELECT payload AS p FROM outbox LIMIT 1")).rows[0].p;
    await pool.query("TRUNCATE outbox");
    const t0 = Date.now();
    await pool.query(
      `INSERT INTO outbox (user_id, bucket, payload, created_at, published_at)
       SELECT gen_random_uuid(), g % 64, $2::jsonb, now() - interval '30 days', now() - interval '30 days'
         FROM generate_series(1, $1::int) g`,
      [HISTORY, JSON.stringify(payload)],
    );
    await pool.query("VACUUM ANALYZE outbox");
    say(
      `  history of ${HISTORY.toLocaleString("en-US")} published rows written in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    await round("history", 0);
    await round("history", 0);
    await round("pruning", WEEK_S);
    const p0 = Date.now();
    const rest = await pruneOutbox(pool, { retentionSeconds: WEEK_S, batch: 10_000 });
    await pool.query("VACUUM ANALYZE outbox");
    say(
      `  the rest of the history pruned (${rest.deleted.toLocaleString("en-US")} rows, no pauses) and vacuumed in ${((Date.now() - p0) / 1000).toFixed(0)} s`,
    );
    await round("pruned", WEEK_S);
  } finally {
    await bench.close();
  }
  const ref = (rates[0].rate + rates[1].rate) / 2;
  const of = (label: string) => rates.filter((r) => r.label === label).map((r) => r.rate);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ratio = (label: string) => Number((mean(of(label)) / ref).toFixed(3));
  say(
    `relay records/s against the empty outbox: history ${ratio("history")}, pruning ${ratio("pruning")}, pruned ${ratio("pruned")}`,
  );
  say(
    `BENCH ${JSON.stringify({ empty: Math.round(ref), history: ratio("history"), pruning: ratio("pruning"), pruned: ratio("pruned"), records: N, historyRows: HISTORY })}`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
