/**
 * `npm run bench`: sustained records/s of each worker and end to end, p50/p99 latency from fetch
 * to Cassandra row, each beside the limit of its own sink measured in the same run. Prints figures;
 * not a timed test. Needs the services up (scripts/services up, or npm run pipeline once).
 *
 * Phase 1, one worker at a time on a backlog (what each can sustain):
 *   ingest --once   N users (fresh seed) from the offline API  | vs pg: multi-row INSERT of the same rows
 *   relay --once    drains those N outbox rows to Kafka         | vs kafkajs: bare producer, same bytes
 *   processor --once consumes those N messages into Cassandra    | vs cassandra-driver: concurrent INSERT
 * Phase 2, all three at once (another fresh seed, N users): end-to-end rate and the latency of each
 *   row from its fetch (fetched_at, set by ingest) to its write in Cassandra (WRITETIME(email)).
 * Workers run as child processes (`runtime/main.ts`, as deployed); the references run in this
 * process, in separate places (schema/keyspace bench_ref, topic bench_ref.<run>), removed at the end.
 *
 * Env: BENCH_RECORDS (20000), INGEST_BATCH_SIZE (1000), RELAY_BATCH_SIZE (1000),
 *      PROCESSOR_CONCURRENCY (128), TOPIC_PARTITIONS (6), BENCH_RELAYS (1: relay processes in
 *      phase 1, to see how the relay scales out), RELAY_CONCURRENCY and
 *      PROCESSOR_PARTITIONS_CONCURRENCY (passed to the workers when set; else their defaults).
 *      Worker logs: $PIPELINE_HOME/run/bench/<run>/.
 */
import os from "node:os";
import { join } from "node:path";
import { Kafka, logLevel, type Admin } from "kafkajs";
import { Pool, type PoolConfig } from "pg";
import type { Client as CassandraClient } from "cassandra-driver";
import { KEYSPACE, USERS_TABLE, USERS_TOPIC } from "../runtime/contracts/names";
import type { UserCreated } from "../runtime/contracts/user-created";
import { generatePage } from "../runtime/api/generate";
import { normalizeUser } from "../runtime/ingest/normalize";
import { storeBatch } from "../runtime/ingest/store-batch";
import { PG_SCHEMA_SQL } from "../runtime/lib/pg-schema";
import { createCassandraClient } from "../runtime/lib/cassandra";
import { ensureTopics } from "../runtime/lib/kafka";
import { createRegistry, registerUserCreated } from "../runtime/lib/schema-registry";
import { groupLag, startApiServer } from "../runtime/index";
import { sample, scrape, spawnWorker, type WorkerProc } from "../scripts/pipeline";
import { loadServicesEnv, pipelineHome } from "../tests/support/services";
import { cassandraReference, cleanupReferences, kafkaReference, pgReference, REF, type KafkaMsg } from "./references";
import { percentile, spanRate, table, type Row } from "./stats";

const REQUIRED = ["PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER", "KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "CASSANDRA_CONTACT_POINTS", "CASSANDRA_LOCAL_DC"];

const intEnv = (k: string, d: number) => {
  const v = process.env[k];
  const n = v ? Number(v) : d;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${k} must be a positive integer (got "${v}")`);
  return n;
};

const say = (s: string) => process.stdout.write(s + "\n");
const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");

/** The users the offline API serves for `seed`, pages 1.., as ingest normalizes them. */
function usersOf(seed: string, n: number, batch: number): UserCreated[] {
  const out: UserCreated[] = [];
  for (let page = 1; out.length < n; page++) {
    for (const raw of generatePage(seed, page, batch).results) {
      const r = normalizeUser(raw, Date.now());
      if (r.ok) out.push(r.user);
    }
  }
  return out;
}

/** A consumer group whose committed offsets are the current ends of users_created. */
async function groupAtEnd(admin: Admin, groupId: string): Promise<void> {
  const ends = await admin.fetchTopicOffsets(USERS_TOPIC);
  await admin.setOffsets({ groupId, topic: USERS_TOPIC, partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })) });
}

async function mustSucceed(w: WorkerProc): Promise<void> {
  const code = await w.exited;
  if (code !== 0) throw new Error(`${w.name} exited with code ${code}; see ${w.logFile}`);
}

/**
 * Records/s a worker reports itself (pipeline_records_out_total, polled every 50 ms): from the
 * first poll that sees records out to the first poll that sees the final count. Other workers
 * sharing the services do not count here.
 */
function outRate(...ws: WorkerProc[]): (untilMs?: number) => { rate: number; count: number } {
  const seen: { t: number; v: number }[] = [];
  const last = ws.map(() => 0);
  let busy = false;
  const iv = setInterval(() => {
    if (busy) return;
    busy = true;
    void Promise.all(ws.map((w) => scrape(w.metricsPort)))
      .then((ms) => {
        // a worker that has exited keeps its last count
        ms.forEach((m, i) => (last[i] = sample(m, "pipeline_records_out_total") ?? last[i]));
        const v = last.reduce((a, b) => a + b, 0);
        if (v > 0 && (seen.length === 0 || seen[seen.length - 1].v !== v)) seen.push({ t: Date.now(), v });
      })
      .finally(() => (busy = false));
  }, 50);
  return (untilMs = Infinity) => {
    clearInterval(iv);
    // the first poll at or after untilMs still counts (the poll runs every 50 ms)
    const upTo = seen.filter((x, i) => x.t <= untilMs || (i > 0 && seen[i - 1].t <= untilMs));
    if (upTo.length < 2) return { rate: NaN, count: seen[0]?.v ?? 0 };
    const a = upTo[0];
    const b = upTo[upTo.length - 1];
    return { rate: (b.v - a.v) / ((b.t - a.t) / 1000), count: b.v };
  };
}

/** Other consumer groups reading users_created now: they may write the same rows to Cassandra. */
async function otherConsumers(admin: Admin, mine: string[]): Promise<string[]> {
  const { groups } = await admin.listGroups();
  const out: string[] = [];
  const candidates = groups.filter((g) => g.protocolType === "consumer" && !mine.includes(g.groupId)).map((g) => g.groupId);
  if (candidates.length === 0) return out;
  const { groups: described } = await admin.describeGroups(candidates);
  for (const g of described) {
    if (g.state !== "Stable" || g.members.length === 0) continue;
    const offs = await admin.fetchOffsets({ groupId: g.groupId, topics: [USERS_TOPIC] }).catch(() => []);
    if (offs[0]?.partitions.some((p) => Number(p.offset) >= 0)) out.push(`${g.groupId} (${g.members.length} member(s))`);
  }
  return out;
}

/**
 * ingest's PostgreSQL transaction alone (storeBatch, the worker's own code) on the same rows,
 * into fresh tables of a scratch schema: how much of ingest's time is its SQL.
 */
async function storeBatchRate(pool: Pool, pgConf: PoolConfig, users: UserCreated[], batch: number, seed: string): Promise<number> {
  const schema = `${seed.replace(/[^a-z0-9_]/gi, "_")}`;
  await pool.query(`CREATE SCHEMA ${schema}`);
  const p = new Pool({ ...pgConf, max: 1, options: `-c search_path=${schema}` });
  try {
    await p.query(PG_SCHEMA_SQL);
    const t0 = process.hrtime.bigint();
    for (let i = 0, page = 1; i < users.length; i += batch, page++) {
      await storeBatch(p, { seed, page, users: users.slice(i, i + batch), rejected: [] });
    }
    return users.length / (Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    await p.end();
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
  }
}

/** outbox.published_at (ms) of the given users' rows (null: not yet published). */
async function publishedAt(pool: Pool, ids: string[]): Promise<(number | null)[]> {
  const r = await pool.query<{ t: string | null }>("SELECT (extract(epoch FROM published_at) * 1000)::float8::text AS t FROM outbox WHERE user_id = ANY($1::uuid[])", [ids]);
  return r.rows.map((x) => (x.t === null ? null : Number(x.t)));
}

interface Written {
  id: string;
  fetchedAt: number;
  writtenAt: number;
}

/** fetched_at and WRITETIME(email) (ms) of the given ids present in spark_streams.created_users. */
async function writtenRows(cass: CassandraClient, ids: string[]): Promise<Written[]> {
  const cql = `SELECT id, fetched_at, WRITETIME(email) AS wt FROM ${KEYSPACE}.${USERS_TABLE} WHERE id IN ?`;
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += 100) chunks.push(ids.slice(i, i + 100));
  const out: Written[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++];
        const r = await cass.execute(cql, [chunk], { prepare: true });
        for (const row of r.rows) {
          out.push({ id: String(row.id), fetchedAt: (row.fetched_at as Date).getTime(), writtenAt: Number(String(row.wt)) / 1000 });
        }
      }
    }),
  );
  return out;
}

async function main(): Promise<void> {
  const N = intEnv("BENCH_RECORDS", 20_000);
  const BATCH = intEnv("INGEST_BATCH_SIZE", 1000);
  const RELAY_BATCH = intEnv("RELAY_BATCH_SIZE", 1000);
  const CONCURRENCY = intEnv("PROCESSOR_CONCURRENCY", 128);
  const PARTITIONS = intEnv("TOPIC_PARTITIONS", 6);
  const RELAYS = intEnv("BENCH_RELAYS", 1);
  const n = Math.ceil(N / BATCH) * BATCH;
  const run = Date.now().toString(36);
  const senv = loadServicesEnv(REQUIRED);
  const logDir = join(pipelineHome(), "run", "bench", run);
  // ingest and relay work in their own PostgreSQL schema (search_path), so relays of other people
  // sharing these services cannot drain the bench's outbox, nor the bench theirs
  const pgSchema = `bench_${run}`;
  const pgOptions = `-c search_path=${pgSchema}`;

  say(`bench ${run}: ${fmt(n)} records per phase; ingest batch ${BATCH}, relay batch ${RELAY_BATCH}, processor concurrency ${CONCURRENCY}, ${PARTITIONS} partitions`);
  say(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")} (shared: figures vary run to run; compare each worker with its limit, measured minutes apart)`);
  say(`worker logs: ${logDir}/`);

  const api = await startApiServer({ port: 0 });
  const pgConf: PoolConfig = { host: senv.PG_HOST, port: Number(senv.PG_PORT), database: senv.PG_DATABASE, user: senv.PG_USER, password: senv.PG_PASSWORD };
  const pool = new Pool({ ...pgConf, max: 3, options: pgOptions });
  const kafka = new Kafka({ clientId: "bench", brokers: senv.KAFKA_BROKERS.split(","), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const cass = createCassandraClient({
    CASSANDRA_CONTACT_POINTS: senv.CASSANDRA_CONTACT_POINTS.split(","),
    CASSANDRA_LOCAL_DC: senv.CASSANDRA_LOCAL_DC,
    CASSANDRA_USER: senv.CASSANDRA_USER,
    CASSANDRA_PASSWORD: senv.CASSANDRA_PASSWORD,
  });
  const refTopic = `${REF}.${run}`;
  const groupA = `bench-${run}-isolated`;
  const groupB = `bench-${run}-e2e`;
  const workerEnv = (extra: Record<string, string>) => ({
    ...senv,
    LOG_LEVEL: "info",
    API_BASE_URL: api.url,
    INGEST_BATCH_SIZE: String(BATCH),
    INGEST_BATCHES: String(n / BATCH),
    RELAY_BATCH_SIZE: String(RELAY_BATCH),
    PROCESSOR_CONCURRENCY: String(CONCURRENCY),
    ...(process.env.RELAY_CONCURRENCY ? { RELAY_CONCURRENCY: process.env.RELAY_CONCURRENCY } : {}),
    ...(process.env.PROCESSOR_PARTITIONS_CONCURRENCY ? { PROCESSOR_PARTITIONS_CONCURRENCY: process.env.PROCESSOR_PARTITIONS_CONCURRENCY } : {}),
    TOPIC_PARTITIONS: String(PARTITIONS),
    PGOPTIONS: pgOptions,
    ...extra,
  });
  const workers: WorkerProc[] = [];
  const spawnW = async (name: string, args: string[], extra: Record<string, string>) => {
    const w = await spawnWorker(name, args, workerEnv(extra), logDir);
    workers.push(w);
    return w;
  };
  process.on("SIGINT", () => {
    for (const w of workers) w.child.kill("SIGTERM");
    process.exit(130);
  });

  try {
    await Promise.all([admin.connect(), cass.connect()]);
    await ensureTopics(kafka, PARTITIONS, 1);
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${pgSchema}`);
    const others = await otherConsumers(admin, []);
    if (others.length > 0) {
      say(`NOTE: other consumer groups are reading users_created: ${others.join(", ")}. They upsert the same rows into`);
      say(`      Cassandra; a later write moves WRITETIME, which would distort the processor rate and the latency.`);
    }
    const rows: Row[] = [];

    // ---------------- phase 1: each worker alone, on a backlog ----------------
    const seedA = `bench-${run}-a`;
    const usersA = usersOf(seedA, n, BATCH);
    const idsA = usersA.map((u) => u.id);
    await groupAtEnd(admin, groupA);

    say(`\n[1/2] each worker alone on a backlog of ${fmt(n)} records; its limit measured just before and just after it (mean)`);
    await pool.query(PG_SCHEMA_SQL); // the workers' tables in the bench schema: the pg reference copies them
    const registry = createRegistry(senv.SCHEMA_REGISTRY_URL);
    const schemaId = await registerUserCreated(registry);
    const msgs: KafkaMsg[] = await Promise.all(usersA.map(async (u, i) => ({ key: u.id, value: await registry.encode(schemaId, u), headers: { outbox_id: String(i + 1) } })));
    const mean = (a: number, b: number) => (a + b) / 2;

    const pg1 = await pgReference(pool, usersA, BATCH);
    const ingest = await spawnW("ingest-isolated", ["ingest", "--once"], { INGEST_SEED: seedA });
    await mustSucceed(ingest);
    const pg2 = await pgReference(pool, usersA, BATCH);
    const si = ingest.summary() ?? {};
    const ingestRate = Number(si.fetched) / Number(si.seconds);
    const pgl = { values: mean(pg1.values, pg2.values), unnest: mean(pg1.unnest, pg2.unnest) };
    const pgLimit = Math.max(pgl.values, pgl.unnest);
    say(`  ingest:    ${fmt(ingestRate)} records/s; ${fmt(Number(si.staged))} staged in ${Number(si.seconds).toFixed(2)} s (API fetch + validate + PG transaction per page)`);
    say(`  pg limit:  ${fmt(pgLimit)} records/s (same users + outbox rows, ${BATCH} per transaction, 1 connection; before/after: INSERT VALUES ${fmt(pg1.values)}/${fmt(pg2.values)}, INSERT SELECT unnest ${fmt(pg1.unnest)}/${fmt(pg2.unnest)})`);
    const storeOnly = await storeBatchRate(pool, pgConf, usersA, BATCH, `${seedA}-store`);
    say(`  (diagnostic: ingest's own storeBatch() on the same rows, without fetch/parse/validation, into empty tables: ${fmt(storeOnly)} records/s)`);
    rows.push({ worker: "ingest", rate: ingestRate, limit: pgLimit, limitWhat: `pg bare multi-row INSERT users+outbox, ${BATCH}/txn (${pgl.unnest >= pgl.values ? "unnest" : "VALUES"})` });

    const k1 = await kafkaReference(kafka, `${refTopic}.1`, PARTITIONS, msgs, RELAY_BATCH);
    const relays = await Promise.all(Array.from({ length: RELAYS }, (_, i) => spawnW(`relay-isolated-${i + 1}`, ["relay", "--once"], {})));
    const relayOut = outRate(...relays);
    await Promise.all(relays.map(mustSucceed));
    const k2 = await kafkaReference(kafka, `${refTopic}.2`, PARTITIONS, msgs, RELAY_BATCH);
    const kafkaLimit = mean(k1, k2);
    // the bench schema's outbox holds only the bench's rows: published_at is the relay's own stamp
    const pubA = (await publishedAt(pool, idsA)).filter((t): t is number => t !== null);
    const relayRate = spanRate(pubA);
    say(`  relay:     ${fmt(relayRate)} records/s (outbox.published_at; its own counter: ${fmt(relayOut().rate)}/s); ${fmt(pubA.length)} of ${fmt(n)} published; ${relays.map((r) => JSON.stringify(r.summary())).join(" ")}`);
    say(`  kafka limit: ${fmt(kafkaLimit)} records/s (same keys, Avro bytes and header; idempotent, acks=all, ${RELAY_BATCH} per send; before/after ${fmt(k1)}/${fmt(k2)})`);
    rows.push({ worker: RELAYS > 1 ? `relay x${RELAYS}` : "relay", rate: relayRate, limit: kafkaLimit, limitWhat: `kafkajs producer, same bytes, ${RELAY_BATCH}/send` });

    // the bare client at the processor's concurrency, 3x it, and its in-flight maximum with
    // PROCESSOR_PARTITIONS_CONCURRENCY partitions at once; the best is the limit
    const partsAtOnce = intEnv("PROCESSOR_PARTITIONS_CONCURRENCY", 3);
    const levels = [...new Set([CONCURRENCY, 3 * CONCURRENCY, partsAtOnce * CONCURRENCY])];
    const c1 = await cassandraReference(cass, usersA, levels);
    const proc = await spawnW("processor-isolated", ["processor", "--once"], { PROCESSOR_GROUP_ID: groupA, PROCESSOR_IDLE_EXIT_MS: "1000" });
    const procOut = outRate(proc);
    await mustSucceed(proc);
    const c2 = await cassandraReference(cass, usersA, levels);
    const cl = new Map(levels.map((l) => [l, mean(c1.get(l) ?? NaN, c2.get(l) ?? NaN)]));
    const best = levels.reduce((a, b) => ((cl.get(b) ?? 0) > (cl.get(a) ?? 0) ? b : a));
    const cassLimit = cl.get(best) ?? NaN;
    // its own counter, from its first write to the write of the last bench row: messages others
    // publish to users_created meanwhile count as work done, and the wait for their stragglers not
    const wA = await writtenRows(cass, idsA);
    const lastBenchRow = Math.max(...wA.map((w) => w.writtenAt));
    const procRate = procOut(lastBenchRow).rate;
    say(`  processor: ${fmt(procRate)} records/s (its own counter until the last bench row was written; WRITETIME span of the bench rows: ${fmt(spanRate(wA.map((w) => w.writtenAt)))}/s); ${fmt(wA.length)} of ${fmt(n)} rows in Cassandra; ${JSON.stringify(proc.summary())}`);
    if (wA.length < n) say(`  WARNING: ${fmt(n - wA.length)} rows missing in Cassandra: dead-lettered? see ${proc.logFile}`);
    say(`  cassandra limit: ${fmt(cassLimit)} records/s (same rows, same prepared INSERT, executeConcurrent; before/after: ${levels.map((l) => `x${l} ${fmt(c1.get(l) ?? NaN)}/${fmt(c2.get(l) ?? NaN)}`).join(", ")})`);
    rows.push({ worker: "processor", rate: procRate, limit: cassLimit, limitWhat: `cassandra-driver executeConcurrent x${best}` });

    // ---------------- phase 2: all three at once ----------------
    say(`\n[2/2] all three workers at once, ${fmt(n)} new users`);
    const seedB = `bench-${run}-b`;
    const idsB = usersOf(seedB, n, BATCH).map((u) => u.id);
    await groupAtEnd(admin, groupB);
    const p2 = await spawnW("processor-e2e", ["processor"], { PROCESSOR_GROUP_ID: groupB });
    const r2 = await spawnW("relay-e2e", ["relay"], {});
    const [p2Out, r2Out] = [outRate(p2), outRate(r2)];
    await new Promise((r) => setTimeout(r, 3000)); // both connected and idle before the first fetch
    const i2 = await spawnW("ingest-e2e", ["ingest", "--once"], { INGEST_SEED: seedB });
    await mustSucceed(i2);
    const deadline = Date.now() + 300_000;
    let wB: Written[] = [];
    let idleRounds = 0;
    for (;;) {
      if (p2.child.exitCode !== null || r2.child.exitCode !== null) throw new Error(`a worker died: see ${logDir}/`);
      const lag = await groupLag(admin, groupB).catch(() => -1);
      if (lag === 0) {
        wB = await writtenRows(cass, idsB);
        if (wB.length >= idsB.length) break;
        const unpublished = (await publishedAt(pool, idsB)).filter((t) => t === null).length;
        // everything published and consumed, yet rows missing: they went to the DLQ
        if (unpublished === 0 && ++idleRounds >= 10) {
          throw new Error(`phase 2: all ${idsB.length} published and consumed but only ${wB.length} rows in Cassandra: dead-lettered? see ${p2.logFile}`);
        }
      }
      if (Date.now() > deadline) throw new Error(`phase 2: only ${wB.length} of ${idsB.length} rows after 300 s`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const [p2r, r2r] = [p2Out(), r2Out()];
    await Promise.all([r2.stop(), p2.stop()]);
    const lat = wB.map((w) => w.writtenAt - w.fetchedAt);
    const firstFetch = Math.min(...wB.map((w) => w.fetchedAt));
    const lastWrite = Math.max(...wB.map((w) => w.writtenAt));
    const e2eRate = wB.length / ((lastWrite - firstFetch) / 1000);
    const s2 = i2.summary() ?? {};
    say(`  while running together: ingest ${fmt(Number(s2.fetched) / Number(s2.seconds))}/s, relay ${fmt(r2r.rate)}/s, processor ${fmt(p2r.rate)}/s (Cassandra WRITETIME span ${fmt(spanRate(wB.map((w) => w.writtenAt)))}/s)`);
    say(`  end to end: ${fmt(wB.length)} rows from first fetch to last Cassandra write in ${((lastWrite - firstFetch) / 1000).toFixed(2)} s`);
    const slowest = Math.min(pgLimit, kafkaLimit, cassLimit);
    rows.push({ worker: "end to end", rate: e2eRate, limit: slowest, limitWhat: "slowest of the three limits above" });

    say(`\nresults (${fmt(n)} records per measurement, ${new Date().toISOString()})`);
    say(table(rows));
    say(`latency fetch -> Cassandra row (WRITETIME(email) - fetched_at), all three workers running, ${fmt(lat.length)} rows:`);
    say(`  p50 ${fmt(percentile(lat, 50))} ms   p99 ${fmt(percentile(lat, 99))} ms   max ${fmt(Math.max(...lat))} ms`);
  } finally {
    await Promise.all(workers.map((w) => w.stop(10_000)));
    await cleanupReferences({ pool, pgSchemas: [pgSchema], kafka, cassandra: cass, topics: [`${refTopic}.1`, `${refTopic}.2`], groups: [groupA, groupB] }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await Promise.all([pool.end(), cass.shutdown(), api.close()]).catch(() => undefined);
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
