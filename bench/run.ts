/**
 * `npm run bench`: each worker's sustained records/s and CPU per record beside the limit of its
 * own sink (the bare client library doing the least work the worker must do, on the same rows, in
 * the same run), the three together end to end, and the latency from fetch to Cassandra row at
 * full and at half rate. Prints a table and, last, one line `BENCH {...}` (JSON) for scripts.
 * Not a timed test. Needs the services up (scripts/services up postgres zookeeper kafka
 * schema-registry cassandra).
 *
 * Phase 1, one worker at a time on a backlog of N records (default 200,000):
 *   ingest --once     N users from the API                | limit: pg multi-row INSERT of the same rows
 *   relay --once      drains those N outbox rows to Kafka | limit: pg claim + Avro + kafkajs send + mark
 *   processor --once  those N messages into Cassandra     | limit: cassandra-driver concurrent INSERT
 *   Each limit is measured just before and just after its worker; the mean of the two is used.
 * Phase 2, all three at once on N new users: end-to-end rate, latency fetch -> row.
 * Phase 3, all three at once at half the end-to-end rate (ingest paced, BENCH_LATENCY_RECORDS):
 *   latency fetch -> row.
 *
 * Fairness: the API is another process serving pages rendered before any measurement
 * (bench/api-server.ts), so it takes no CPU from the workers. Rates: the steady state is the
 * slope of a least-squares line through the progress points of the middle of the run (10 %..90 %
 * of its records: start-up, fill and drain left out), printed beside the mean. Workers' progress
 * is their own pipeline_records_out_total (polled every 500 ms); references tick after each
 * batch. CPU per record, which holds under the machine's noise: the workers' process CPU
 * (/proc/<pid>/stat) and the references' (process.cpuUsage in this process), over the same
 * middle of the run. Latency: a sample of ~2,000 ids is polled in Cassandra every 250 ms; a row's
 * latency is the time it was first seen minus its fetched_at (independent of WRITETIME, which
 * the processor may set from the outbox id).
 *
 * Env: BENCH_RECORDS (200000), BENCH_LATENCY_RECORDS (30000; 0 skips phase 3), BENCH_ONLY=ingest
 *      (phase 1's ingest and its limit alone; likewise relay, processor; e2e: the limits and phase 2;
 *      latency: phase 3 alone at BENCH_LATENCY_RATE/s (750), with BENCH_RECORDS=1000 to skip the
 *      preparation of phase 1's rows),
 *      BENCH_LATENCY_BATCH (200: users per page in phase 3), INGEST_BATCH_SIZE (1000),
 *      RELAY_BATCH_SIZE (1000), PROCESSOR_CONCURRENCY (128), TOPIC_PARTITIONS (6), BENCH_RELAYS
 *      (1: relay processes in phase 1), RELAY_CONCURRENCY, RELAY_MAX_BUCKETS, RELAY_POLL_MS,
 *      PROCESSOR_PARTITIONS_CONCURRENCY and PROCESSOR_CHUNK_SIZE (passed to the workers when set). Worker logs:
 * $PIPELINE_HOME/run/bench/<run>/.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { Kafka, logLevel, type Admin } from "kafkajs";
import { Pool, type PoolConfig } from "pg";
import type { Client as CassandraClient } from "cassandra-driver";
import { KEYSPACE, USERS_TABLE, USERS_TOPIC } from "../runtime/contracts/names";
import { userCreatedAvsc, type UserCreated } from "../runtime/contracts/user-created";
import { generatePage } from "../runtime/api/generate";
import { normalizeUser } from "../runtime/ingest/normalize";
import { storeBatch } from "../runtime/ingest/store-batch";
import { avroType } from "../runtime/lib/avro";
import { PG_SCHEMA_SQL } from "../runtime/lib/pg-schema";
import { createCassandraClient, ensureCassandraSchema } from "../runtime/lib/cassandra";
import { ensureTopics } from "../runtime/lib/kafka";
import { createRegistry, registerUserCreated } from "../runtime/lib/schema-registry";
import { groupLag } from "../runtime/index";
import { REPO, sample, scrape, spawnWorker, type WorkerProc } from "../scripts/pipeline";
import { loadServicesEnv, pipelineHome } from "../tests/support/services";
import { pauseCompaction, settleCassandra } from "./cassandra-settle";
import {
  cassandraReference,
  cleanupReferences,
  kafkaConsumeReference,
  kafkaReference,
  pgReference,
  readAndInsertReference,
  relayReference,
  REF,
  type KafkaMsg,
} from "./references";
import { procCpuUs, servicesCpuUs } from "./cpu";
import { describeSnapshots, logAutovacuum, pgSnapshot, watchPg } from "./pg-watch";
import {
  histQuantile,
  percentile,
  recorder,
  runFigures,
  slope,
  table,
  type Point,
  type Row,
  type RunFigures,
} from "./stats";

const REQUIRED = [
  "PG_HOST",
  "PG_PORT",
  "PG_DATABASE",
  "PG_USER",
  "KAFKA_BROKERS",
  "SCHEMA_REGISTRY_URL",
  "CASSANDRA_CONTACT_POINTS",
  "CASSANDRA_LOCAL_DC",
];

const intEnv = (k: string, d: number) => {
  const v = process.env[k];
  const n = v ? Number(v) : d;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${k} must be a positive integer (got "${v}")`);
  return n;
};

/** Worker settings passed on to the workers when set, for A/B runs of a knob. */
const PASSED = [
  "RELAY_CONCURRENCY",
  "RELAY_MAX_BUCKETS",
  "RELAY_POLL_MS",
  "PROCESSOR_PARTITIONS_CONCURRENCY",
  "PROCESSOR_CHUNK_SIZE",
  "PROCESSOR_FETCH_MIN_BYTES",
  "PROCESSOR_FETCH_MAX_WAIT_MS",
];

const say = (s: string) => process.stdout.write(s + "\n");
const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
const round2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
const r0 = (x: number) => (Number.isFinite(x) ? Math.round(x) : null);
const loadavg = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

/** The users the API serves for `seed`, pages 1.., as ingest normalizes them. */
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
  await admin.setOffsets({
    groupId,
    topic: USERS_TOPIC,
    partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
  });
}

async function mustSucceed(w: WorkerProc): Promise<void> {
  const code = await w.exited;
  if (code !== 0) throw new Error(`${w.name} exited with code ${code}; see ${w.logFile}`);
}

/** Other consumer groups reading users_created now: they may write the same rows to Cassandra. */
async function otherConsumers(admin: Admin, mine: string[]): Promise<string[]> {
  const { groups } = await admin.listGroups();
  const out: string[] = [];
  const candidates = groups
    .filter((g) => g.protocolType === "consumer" && !mine.includes(g.groupId))
    .map((g) => g.groupId);
  if (candidates.length === 0) return out;
  const { groups: described } = await admin.describeGroups(candidates);
  for (const g of described) {
    if (g.state !== "Stable" || g.members.length === 0) continue;
    const offs = await admin.fetchOffsets({ groupId: g.groupId, topics: [USERS_TOPIC] }).catch(() => []);
    if (offs[0]?.partitions.some((p) => Number(p.offset) >= 0))
      out.push(`${g.groupId} (${g.members.length} member(s))`);
  }
  return out;
}

/**
 * ingest's PostgreSQL transaction alone (storeBatch, the worker's own code) on the same rows,
 * into fresh tables of a scratch schema: how much of ingest's time is its SQL.
 */
async function storeBatchRate(
  pool: Pool,
  pgConf: PoolConfig,
  users: UserCreated[],
  batch: number,
  seed: string,
): Promise<number> {
  const schema = `${seed.replace(/[^a-z0-9_]/gi, "_")}`;
  await pool.query(`CREATE SCHEMA ${schema}`);
  const p = new Pool({ ...pgConf, max: 1, options: `-c search_path=${schema}` });
  try {
    await p.query(PG_SCHEMA_SQL);
    const rec = recorder();
    for (let i = 0, page = 1; i < users.length; i += batch, page++) {
      await storeBatch(p, { seed, page, users: users.slice(i, i + batch), rejected: [] });
      rec.tick(Math.min(i + batch, users.length));
    }
    return rec.figures().steady;
  } finally {
    await p.end();
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
  }
}

const WATCH_MS = 500;

/**
 * Progress of worker processes every 500 ms: the sum of their pipeline_records_out_total and of
 * their process CPU. A worker that has exited keeps its last figures. Not more often: rendering
 * a worker's /metrics costs it ~4 ms of CPU, which every 100 ms was 4.5 % of the processor's CPU
 * in its profile (run mwxg6bli), a cost of the measurement that its limit does not pay.
 */
function watch(...ws: WorkerProc[]): { stop(): Point[]; last(): Point | undefined } {
  const points: Point[] = [];
  const lastV = ws.map(() => 0);
  const lastCpu = ws.map(() => 0);
  let busy = false;
  const poll = async () => {
    const ms = await Promise.all(ws.map((w) => (w.child.exitCode === null ? scrape(w.metricsPort) : undefined)));
    ws.forEach((w, i) => {
      lastV[i] = sample(ms[i], "pipeline_records_out_total") ?? lastV[i];
      lastCpu[i] = (w.child.pid !== undefined ? procCpuUs(w.child.pid) : undefined) ?? lastCpu[i];
    });
    points.push({ t: Date.now(), v: lastV.reduce((a, b) => a + b, 0), cpuUs: lastCpu.reduce((a, b) => a + b, 0) });
  };
  const iv = setInterval(() => {
    if (busy) return;
    busy = true;
    void poll().finally(() => (busy = false));
  }, WATCH_MS);
  return {
    stop: () => {
      clearInterval(iv);
      return points;
    },
    last: () => points.at(-1),
  };
}

/**
 * Latency from fetch to Cassandra row of a sample of `size` of `all` (the run's ids in page
 * order): polls the rows not yet seen every 250 ms; a row's latency is the middle of the query
 * that first returned it minus its fetched_at. Only ids ingest has staged (`staged()`: records
 * out so far) are polled: polling rows that cannot be there yet was Cassandra work the pipeline
 * competed with on 2 cores (it doubled the services' CPU per record of the run).
 */
function latencySampler(
  cass: CassandraClient,
  all: string[],
  size: number,
  staged: () => number = () => Infinity,
): {
  done(): boolean;
  stop(): {
    lat: number[];
    worst: { fetchedAt: number; ms: number }[];
    firstFetch: number;
    lastSeen: number;
    seen: number;
  };
} {
  const step = Math.max(1, Math.floor(all.length / size));
  const indexOf = new Map<string, number>();
  all.forEach((id, i) => {
    if (i % step === 0) indexOf.set(id, i);
  });
  const ids = [...indexOf.keys()];
  const unseen = new Set(ids);
  const lat: number[] = [];
  const fetched: number[] = [];
  let firstFetch = Infinity;
  let lastSeen = -Infinity;
  const cql = `SELECT id, fetched_at FROM ${KEYSPACE}.${USERS_TABLE} WHERE id IN ?`;
  const POLL_MS = 250;
  const WINDOW = 300;
  let stopped = false;
  const loop = async () => {
    while (!stopped && unseen.size > 0) {
      const t0 = Date.now();
      const upTo = staged();
      // the oldest WINDOW unseen staged ids only: rows land about in id order, and polling all
      // staged ids while the processor lags cost Cassandra as much CPU as the pipeline's writes
      const pending = [...unseen].filter((id) => indexOf.get(id)! < upTo).slice(0, WINDOW);
      const chunks: string[][] = [];
      for (let i = 0; i < pending.length; i += 100) chunks.push(pending.slice(i, i + 100));
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < chunks.length) {
            const q0 = Date.now();
            const r = await cass.execute(cql, [chunks[next++]], { prepare: true }).catch(() => undefined);
            const at = (q0 + Date.now()) / 2;
            for (const row of r?.rows ?? []) {
              const id = String(row.id);
              if (!unseen.delete(id)) continue;
              const f = (row.fetched_at as Date).getTime();
              lat.push(at - f);
              fetched.push(f);
              firstFetch = Math.min(firstFetch, f);
              lastSeen = Math.max(lastSeen, at);
            }
          }
        }),
      );
      // every 250 ms, not 100: the polls are Cassandra work the pipeline competes with on 2 cores
      await new Promise((r) => setTimeout(r, Math.max(0, POLL_MS - (Date.now() - t0))));
    }
  };
  void loop();
  return {
    done: () => unseen.size === 0,
    stop: () => {
      stopped = true;
      // the slowest rows with their fetch time: when a tail happened, to set beside other logs
      const worst = lat
        .map((ms, i) => ({ fetchedAt: fetched[i], ms }))
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 20);
      return { lat, worst, firstFetch, lastSeen, seen: ids.length - unseen.size };
    },
  };
}

/** A worker's warn lines ("slow ...") logged between t0 and t1 (epoch ms), with their times. */
function slowLines(logFile: string, t0: number, t1: number): { t: number; line: string }[] {
  let text = "";
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return [];
  }
  const out: { t: number; line: string }[] = [];
  for (const l of text.split("\n")) {
    if (!l.includes('"msg":"slow ')) continue;
    try {
      const j = JSON.parse(l) as { time: string; msg: string; [k: string]: unknown };
      const t = Date.parse(j.time);
      if (t < t0 || t > t1) continue;
      const { msg, ms, steps, claimed, pending } = j;
      out.push({ t, line: `${msg}: ${JSON.stringify({ ms, claimed, pending, steps })}` });
    } catch {
      /* not a log line */
    }
  }
  return out;
}

/** The ids the API serves for `seed`, pages 1..pages of `results` (ingest lower-cases them). */
function idsOf(seed: string, pages: number, results: number): string[] {
  const out: string[] = [];
  for (let p = 1; p <= pages; p++)
    for (const raw of generatePage(seed, p, results).results)
      out.push((raw as { login: { uuid: string } }).login.uuid.toLowerCase());
  return out;
}

/** bench/api-server.ts in its own process; resolves with its URL once every page is rendered. */
function startBenchApi(specs: string[], logDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "bench", "api-server.ts"), ...specs], {
    cwd: REPO,
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /READY (\S+)/.exec(buf);
      if (m) resolve({ url: m[1], child });
    });
    child.once("exit", (code) =>
      reject(new Error(`bench api server exited with code ${code} before it was ready (logs: ${logDir})`)),
    );
  });
}

/** Mean of two runs' figures (a limit taken before and after its worker). */
function meanFigures(a: RunFigures, b: RunFigures): RunFigures {
  const m = (x: number, y: number) => (x + y) / 2;
  return {
    mean: m(a.mean, b.mean),
    steady: m(a.steady, b.steady),
    cpuUsPerRecord: m(a.cpuUsPerRecord, b.cpuUsPerRecord),
    records: a.records,
  };
}

const rates = (f: RunFigures) =>
  `steady ${fmt(f.steady)}/s, mean ${fmt(f.mean)}/s, ${f.cpuUsPerRecord.toFixed(1)} CPU-µs/record`;

/** Rows of `ids` present in spark_streams.created_users. */
async function countRows(cass: CassandraClient, ids: string[]): Promise<number> {
  const cql = `SELECT id FROM ${KEYSPACE}.${USERS_TABLE} WHERE id IN ?`;
  let next = 0;
  let n = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < ids.length) {
        const chunk = ids.slice(next, (next += 100));
        const r = await cass.execute(cql, [chunk], { prepare: true });
        n += r.rowLength;
      }
    }),
  );
  return n;
}

interface Judged {
  worker: RunFigures;
  limit: RunFigures;
}

const ratioOf = (j: Judged) => j.worker.steady / j.limit.steady;
const cpuRatioOf = (j: Judged) => j.limit.cpuUsPerRecord / j.worker.cpuUsPerRecord;
const jsonOf = (j: Judged) => ({
  rate: r0(j.worker.steady),
  mean: r0(j.worker.mean),
  limit: r0(j.limit.steady),
  limit_mean: r0(j.limit.mean),
  ratio: round2(ratioOf(j)),
  ratio_mean: round2(j.worker.mean / j.limit.mean),
  cpu_us: round2(j.worker.cpuUsPerRecord),
  limit_cpu_us: round2(j.limit.cpuUsPerRecord),
  cpu_ratio: round2(cpuRatioOf(j)),
});

async function main(): Promise<void> {
  const N = intEnv("BENCH_RECORDS", 200_000);
  const BATCH = intEnv("INGEST_BATCH_SIZE", 1000);
  const RELAY_BATCH = intEnv("RELAY_BATCH_SIZE", 1000);
  const CONCURRENCY = intEnv("PROCESSOR_CONCURRENCY", 128);
  const PARTITIONS = intEnv("TOPIC_PARTITIONS", 6);
  const RELAYS = intEnv("BENCH_RELAYS", 1);
  // BENCH_ONLY=ingest: phase 1's ingest and its limit only (a quick A/B of an ingest change)
  const only = process.env.BENCH_ONLY;
  if (only !== undefined && !["ingest", "relay", "processor", "e2e", "latency"].includes(only))
    throw new Error(`BENCH_ONLY must be ingest, relay, processor, e2e, latency or unset (got "${only}")`);
  const LAT_N =
    process.env.BENCH_LATENCY_RECORDS === "0" || (only && only !== "latency")
      ? 0
      : intEnv("BENCH_LATENCY_RECORDS", 30_000);
  const LAT_BATCH = intEnv("BENCH_LATENCY_BATCH", 200);
  // BENCH_E2E_AB="K=V[,K=V]": before phase 2, BENCH_E2E_TRIALS (4) end-to-end runs alternating
  // the workers' defaults (A) and these settings (B), each on new users (an A/B in one run)
  const abEnv = Object.fromEntries(
    (process.env.BENCH_E2E_AB ?? "")
      .split(",")
      .filter(Boolean)
      .map((kv) => {
        const [k, v] = kv.split("=");
        if (!k || v === undefined)
          throw new Error(`BENCH_E2E_AB must be K=V[,K=V] (got "${process.env.BENCH_E2E_AB}")`);
        return [k, v];
      }),
  );
  const trials = Object.keys(abEnv).length > 0 ? intEnv("BENCH_E2E_TRIALS", 4) : 0;
  const pages = Math.ceil(N / BATCH);
  const n = pages * BATCH;
  const latPages = Math.ceil(LAT_N / LAT_BATCH);
  const run = Date.now().toString(36);
  const senv = loadServicesEnv(REQUIRED);
  const logDir = join(pipelineHome(), "run", "bench", run);
  // ingest and relay work in their own PostgreSQL schema (search_path), so relays of other people
  // sharing these services cannot drain the bench's outbox, nor the bench theirs
  const pgSchema = `bench_${run}`;
  const pgOptions = `-c search_path=${pgSchema}`;
  const load0 = loadavg();

  say(
    `bench ${run}: ${fmt(n)} records per phase; ingest batch ${BATCH}, relay batch ${RELAY_BATCH}, processor concurrency ${CONCURRENCY}, ${PARTITIONS} partitions`,
  );
  say(
    `machine: ${os.cpus().length} cores, load average ${load0.join(" ")} (shared: rates vary run to run; the ratios are taken within this run, CPU per record holds better)`,
  );
  say(`worker logs: ${logDir}/`);

  const seedA = `bench-${run}-a`;
  const seedB = `bench-${run}-b`;
  const seedC = `bench-${run}-c`;
  // the API renders every page now, in its own process, while this one prepares the rows
  const apiReady = startBenchApi(
    [
      `${seedA}:${pages}:${BATCH}`,
      ...(only && only !== "e2e" ? [] : [`${seedB}:${pages}:${BATCH}`]),
      ...(LAT_N > 0 ? [`${seedC}:${latPages + 50}:${LAT_BATCH}`] : []),
      ...Array.from({ length: trials }, (_, t) => `${seedB}-t${t}:${pages}:${BATCH}`),
    ],
    logDir,
  );
  apiReady.catch(() => undefined);
  const pgConf: PoolConfig = {
    host: senv.PG_HOST,
    port: Number(senv.PG_PORT),
    database: senv.PG_DATABASE,
    user: senv.PG_USER,
    password: senv.PG_PASSWORD,
  };
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
  const refTopics = [`${refTopic}.relay1`, `${refTopic}.relay2`, `${refTopic}.kafka`];
  const groupA = `bench-${run}-isolated`;
  const groupB = `bench-${run}-e2e`;
  const groupRead = `bench-${run}-read-only`;
  const groupReadInsert = `bench-${run}-read-insert`;
  let apiUrl = "";
  const workerEnv = (extra: Record<string, string>) => ({
    ...senv,
    LOG_LEVEL: "info",
    API_BASE_URL: apiUrl,
    INGEST_BATCH_SIZE: String(BATCH),
    INGEST_BATCHES: String(pages),
    RELAY_BATCH_SIZE: String(RELAY_BATCH),
    PROCESSOR_CONCURRENCY: String(CONCURRENCY),
    ...Object.fromEntries(PASSED.filter((k) => process.env[k]).map((k) => [k, process.env[k]!])),
    TOPIC_PARTITIONS: String(PARTITIONS),
    PGOPTIONS: pgOptions,
    ...extra,
  });
  const workers: WorkerProc[] = [];
  let apiChild: ChildProcess | undefined;
  let resumeCompaction: (() => void) | undefined;
  const spawnW = async (name: string, args: string[], extra: Record<string, string>, nodeArgs: string[] = []) => {
    const w = await spawnWorker(name, args, workerEnv(extra), logDir, nodeArgs);
    workers.push(w);
    return w;
  };
  process.on("SIGINT", () => {
    for (const w of workers) w.child.kill("SIGTERM");
    apiChild?.kill("SIGTERM");
    process.exit(130);
  });

  try {
    await Promise.all([admin.connect(), cass.connect()]);
    await ensureTopics(kafka, PARTITIONS, 1);
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${pgSchema}`);
    const others = await otherConsumers(admin, []);
    if (others.length > 0)
      say(
        `NOTE: other consumer groups are reading users_created: ${others.join(", ")} (they share the machine and Cassandra).`,
      );
    const rows: Row[] = [];

    const usersA = usersOf(seedA, n, BATCH);
    const idsA = usersA.map((u) => u.id);
    const idsB = only && only !== "e2e" ? [] : idsOf(seedB, pages, BATCH);
    const idsC = LAT_N > 0 ? idsOf(seedC, latPages, LAT_BATCH) : [];
    const registry = createRegistry(senv.SCHEMA_REGISTRY_URL);
    const schemaId = await registerUserCreated(registry);
    const type = avroType(userCreatedAvsc());
    const msgs: KafkaMsg[] = await Promise.all(
      usersA.map(async (u, i) => ({
        key: u.id,
        value: await registry.encode(schemaId, u),
        headers: { outbox_id: String(i + 1) },
      })),
    );
    const api = await apiReady;
    apiChild = api.child;
    apiUrl = api.url;
    await groupAtEnd(admin, groupA);
    await groupAtEnd(admin, groupRead); // the diagnostic reader after the processor, on the same messages
    await groupAtEnd(admin, groupReadInsert); // and the bare read + decode + insert, on them too
    await pool.query(PG_SCHEMA_SQL); // the workers' tables in the bench schema: the references copy them
    await logAutovacuum(pool);

    /**
     * Phase 3: ingest paced at `target`/s (pages of LAT_BATCH) through the relay and processor
     * already running; latency fetch -> row of sampled rows, and the processor's own view of it in
     * two stages (fetch -> Kafka send, send -> Cassandra ack; its histograms, the buckets' upper
     * bounds) over the same run.
     */
    const halfRate = async (target: number, ingestRate: number, procMetricsPort: number, relayLog: string) => {
      // ingest pauses between pages: a page every LAT_BATCH/target s, less the time a page takes at full speed
      const pauseMs = Math.max(0, Math.round((1000 * LAT_BATCH) / target - (1000 * LAT_BATCH) / ingestRate));
      say(
        `\n[3/3] all three at half the end-to-end rate: ${fmt(LAT_N)} users, pages of ${LAT_BATCH}, a pause of ${pauseMs} ms between pages (target ${fmt(target)}/s)`,
      );
      const pm0 = await scrape(procMetricsPort);
      const pg0 = await pgSnapshot(pool);
      const pgw = watchPg(pool);
      const t3 = Date.now();
      let staged3 = () => 0;
      const lat3 = latencySampler(cass, idsC, 2000, () => staged3());
      const i3 = await spawnW("ingest-half-rate", ["ingest"], {
        INGEST_SEED: seedC,
        INGEST_BATCH_SIZE: String(LAT_BATCH),
        INGEST_INTERVAL_MS: String(pauseMs),
      });
      const wi3 = watch(i3);
      staged3 = () => (i3.child.exitCode !== null ? Infinity : (wi3.last()?.v ?? 0) + LAT_BATCH);
      const deadline3 = Date.now() + 600_000;
      while ((wi3.last()?.v ?? 0) < idsC.length) {
        if (i3.child.exitCode !== null) throw new Error(`ingest-half-rate exited early: see ${i3.logFile}`);
        if (Date.now() > deadline3) throw new Error("phase 3: ingest too slow");
        await new Promise((r) => setTimeout(r, 50));
      }
      await i3.stop();
      const ip3 = runFigures(wi3.stop());
      while (!lat3.done()) {
        if (Date.now() > deadline3) throw new Error(`phase 3: rows missing in Cassandra after 600 s; see ${logDir}/`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const l3 = lat3.stop();
      const pgEvents = pgw.stop();
      const pg1 = await pgSnapshot(pool);
      const pm1 = await scrape(procMetricsPort);
      const q = (name: string, labels: Record<string, string>, p: number) =>
        1000 * histQuantile(pm0, pm1, name, labels, p);
      const stages = {
        processor_fetch_to_store: {
          p50: q("pipeline_fetch_to_store_seconds", {}, 0.5),
          p99: q("pipeline_fetch_to_store_seconds", {}, 0.99),
        },
        fetch_to_kafka: {
          p50: q("pipeline_stage_seconds", { stage: "fetch_to_kafka" }, 0.5),
          p99: q("pipeline_stage_seconds", { stage: "fetch_to_kafka" }, 0.99),
        },
        kafka_to_store: {
          p50: q("pipeline_stage_seconds", { stage: "kafka_to_store" }, 0.5),
          p99: q("pipeline_stage_seconds", { stage: "kafka_to_store" }, 0.99),
        },
      };
      const h = {
        target,
        rate: ip3.mean,
        p50: percentile(l3.lat, 50),
        p99: percentile(l3.lat, 99),
        max: Math.max(...l3.lat),
        n: l3.lat.length,
        stages,
      };
      say(
        `  ingest paced at ${fmt(ip3.mean)}/s; latency fetch -> row (${fmt(h.n)} sampled rows): p50 ${fmt(h.p50)} ms, p99 ${fmt(h.p99)} ms, max ${fmt(h.max)} ms`,
      );
      // where a tail was: the slowest rows' fetch times, and beside them what PostgreSQL and the relay did
      const rel = (t: number) => `+${((t - t3) / 1000).toFixed(1)} s`;
      say(
        `  slowest sampled rows (fetched at, latency): ${l3.worst
          .slice(0, 8)
          .map((w) => `${rel(w.fetchedAt)} ${fmt(w.ms)} ms`)
          .join(", ")}`,
      );
      say(`  PostgreSQL during the phase: ${describeSnapshots(pg0, pg1)}`);
      for (const e of pgEvents.slice(0, 30)) say(`    ${rel(e.t)} ${e.what}`);
      if (pgEvents.length > 30) say(`    ... ${pgEvents.length - 30} more`);
      const slowRelay = slowLines(relayLog, t3, Date.now());
      say(
        `  relay: ${slowRelay.length} slow round(s) or pending count(s) (≥ 1 s) during the phase${slowRelay.length ? ":" : ""}`,
      );
      for (const l of slowRelay.slice(0, 20)) say(`    ${rel(l.t)} ${l.line}`);
      say(
        `  the processor's histograms (every row, bucket upper bounds): fetch -> Cassandra ack p50 ≤ ${fmt(stages.processor_fetch_to_store.p50)} ms, p99 ≤ ${fmt(stages.processor_fetch_to_store.p99)} ms; fetch -> Kafka send p50 ≤ ${fmt(stages.fetch_to_kafka.p50)}, p99 ≤ ${fmt(stages.fetch_to_kafka.p99)} ms; Kafka send -> Cassandra ack p50 ≤ ${fmt(stages.kafka_to_store.p50)}, p99 ≤ ${fmt(stages.kafka_to_store.p99)} ms`,
      );
      return h;
    };
    const halfJson = (h: NonNullable<Awaited<ReturnType<typeof halfRate>>>) => ({
      rate: r0(h.rate),
      p50: r0(h.p50),
      p99: r0(h.p99),
      max: r0(h.max),
      rows: h.n,
      stages_ms: Object.fromEntries(Object.entries(h.stages).map(([k, v]) => [k, { p50: r0(v.p50), p99: r0(v.p99) }])),
    });

    // BENCH_ONLY=latency: phase 3 alone, at BENCH_LATENCY_RATE/s (750), relay and processor started for it
    if (only === "latency") {
      const target = intEnv("BENCH_LATENCY_RATE", 750);
      const groupL = `${groupB}-latency`;
      await groupAtEnd(admin, groupL);
      const pL = await spawnW("processor-latency", ["processor"], { PROCESSOR_GROUP_ID: groupL });
      const rL = await spawnW("relay-latency", ["relay"], {});
      await new Promise((r) => setTimeout(r, 3000)); // both connected and idle before the first fetch
      const h = await halfRate(target, intEnv("BENCH_INGEST_RATE", 12_000), pL.metricsPort, rL.logFile);
      await Promise.all([rL.stop(), pL.stop()]);
      const load1 = loadavg();
      say(
        `\nresults (${new Date().toISOString()}; load average ${load0.join(" ")} at the start, ${load1.join(" ")} at the end)`,
      );
      say(`BENCH ${JSON.stringify({ run, only, load: load0, load_end: load1, latency_ms: { half: halfJson(h) } })}`);
      return;
    }

    // ---------------- phase 1: each worker alone, on a backlog ----------------
    // BENCH_ONLY=relay|processor: the stages before it run untimed to make its backlog;
    // BENCH_ONLY=e2e: the three limits (once each), then phase 2
    const timed = (w: string) => only === undefined || only === w;
    // BENCH_CPU_PROF=<dir>: the timed worker(s) of phase 1 write a V8 CPU profile there (node --cpu-prof)
    const profDir = process.env.BENCH_CPU_PROF;
    const prof = (w: string): string[] =>
      profDir && timed(w) ? ["--cpu-prof", `--cpu-prof-dir=${join(profDir, w)}`] : [];
    const limits = (w: string) => timed(w) || only === "e2e";
    const home = pipelineHome();
    // the sink's compaction paused until the end (cassandra-settle.ts): no phase pays for it by chance
    // the table exists on a first run
    await ensureCassandraSchema(cass, Number(senv.CASSANDRA_REPLICATION_FACTOR ?? 1), senv.CASSANDRA_LOCAL_DC);
    resumeCompaction = pauseCompaction(home, KEYSPACE, USERS_TABLE);
    /**
     * Per label: each service's CPU per record while that label's run went on (the processor's section prints them).
     */
    const svcBy: Record<string, Record<string, number | null>> = {};
    /**
     * f's result and the services' CPU per record while it ran (runs: passes over the n records); per service under
     * `label`
     */
    const svcCpu = async <T>(runs: number, f: () => Promise<T>, label?: string): Promise<[T, number]> => {
      const a = servicesCpuUs(home);
      const r = await f();
      const b = servicesCpuUs(home);
      // a service restarted meanwhile (someone's fault test): its CPU is not comparable
      if (a.pids !== b.pids) return [r, NaN];
      if (label)
        svcBy[label] = Object.fromEntries(
          Object.keys(b.byName).map((k) => [k, round2((b.byName[k] - (a.byName[k] ?? 0)) / (n * runs))]),
        );
      return [r, (b.us - a.us) / (n * runs)];
    };
    const svcSay = (label: string) =>
      svcBy[label]
        ? Object.entries(svcBy[label])
            .map(([k, v]) => `${k} ${v === null ? "n/a" : v.toFixed(1)}`)
            .join(", ")
        : "n/a";
    const nan: RunFigures = { mean: NaN, steady: NaN, cpuUsPerRecord: NaN, records: 0 };
    const svc = { ingest: NaN, pgLimit: NaN, relay: NaN, relayLimit: NaN, processor: NaN, cassLimit: NaN, e2e: NaN };
    say(
      `\n[1/3] ${only === "e2e" ? "the three limits" : "each worker alone on a backlog of " + fmt(n) + " records; its limit measured just before and just after it (mean)"}`,
    );
    let ingestF = nan;
    let pgLimit = nan;
    {
      const [pg1, s1] = limits("ingest") ? await svcCpu(2, () => pgReference(pool, usersA, BATCH)) : [undefined, NaN];
      if (only !== "e2e") {
        const ingest = await spawnW("ingest-isolated", ["ingest", "--once"], { INGEST_SEED: seedA }, prof("ingest"));
        const wi = watch(ingest);
        const [, si0] = await svcCpu(1, () => mustSucceed(ingest));
        svc.ingest = si0;
        ingestF = runFigures(wi.stop());
        const si = ingest.summary() ?? {};
        say(
          `  ingest${timed("ingest") ? "" : " (untimed: the backlog)"}:      ${rates(ingestF)}; ${fmt(Number(si.staged))} staged (its summary: ${fmt(Number(si.fetched) / Number(si.seconds))}/s)`,
        );
      }
      if (pg1) {
        const [pg2, s2] = only === "e2e" ? [pg1, s1] : await svcCpu(2, () => pgReference(pool, usersA, BATCH));
        svc.pgLimit = (s1 + s2) / 2;
        const pgV = meanFigures(pg1.values, pg2.values);
        const pgU = meanFigures(pg1.unnest, pg2.unnest);
        pgLimit = pgU.steady >= pgV.steady ? pgU : pgV;
        say(
          `  pg limit:    ${rates(pgLimit)} (INSERT ${pgU.steady >= pgV.steady ? "SELECT unnest" : "VALUES"}, ${BATCH}/txn, 1 connection; steady before/after: VALUES ${fmt(pg1.values.steady)}/${fmt(pg2.values.steady)}, unnest ${fmt(pg1.unnest.steady)}/${fmt(pg2.unnest.steady)})`,
        );
      }
      if (timed("ingest")) {
        const storeOnly = await storeBatchRate(pool, pgConf, usersA, BATCH, `${seedA}-store`);
        say(
          `  (diagnostic: ingest's own storeBatch() on the same rows, without fetch/parse/validation: ${fmt(storeOnly)}/s steady)`,
        );
      }
    }
    const ingestJ: Judged = { worker: ingestF, limit: pgLimit };
    if (timed("ingest"))
      rows.push({
        worker: "ingest",
        rate: ingestF.steady,
        limit: pgLimit.steady,
        limitWhat: `pg multi-row INSERT users+outbox, ${BATCH}/txn`,
      });
    const svcLine = (pairs: [string, number, number][]) =>
      `services' CPU-µs per record (PostgreSQL, Kafka, ZooKeeper, registry, Cassandra), worker / its limit: ${pairs.map(([w, a, b]) => `${w} ${a.toFixed(1)} / ${b.toFixed(1)}`).join(", ")}`;
    /** The end of a BENCH_ONLY=<worker> run: its table, CPU per record, and its BENCH line. */
    const reportOnly = (
      name: "ingest" | "relay" | "processor",
      j: Judged,
      svcWorker: number,
      svcLimit: number,
      extra: Record<string, unknown> = {},
    ): void => {
      const load1 = loadavg();
      say(
        `\nresults (${fmt(n)} records, ${new Date().toISOString()}; load average ${load0.join(" ")} at the start, ${load1.join(" ")} at the end)`,
      );
      say(table(rows));
      say(
        `CPU-µs per record, ${name} / its limit: ${j.worker.cpuUsPerRecord.toFixed(1)} / ${j.limit.cpuUsPerRecord.toFixed(1)}`,
      );
      say(svcLine([[name, svcWorker, svcLimit]]));
      say(
        `BENCH ${JSON.stringify({ run, records: n, only, load: load0, load_end: load1, ratios: { [name]: round2(ratioOf(j)) }, cpu_ratios: { [name]: round2(cpuRatioOf(j)) }, [name]: { ...jsonOf(j), svc_cpu_us: round2(svcWorker), limit_svc_cpu_us: round2(svcLimit), ...extra } })}`,
      );
    };
    if (only === "ingest") return reportOnly("ingest", ingestJ, svc.ingest, svc.pgLimit);

    let relayF = nan;
    let relayLimit = nan;
    {
      const [k1, s1] = limits("relay")
        ? await svcCpu(1, () =>
            relayReference(pool, kafka, refTopics[0], PARTITIONS, usersA, RELAY_BATCH, schemaId, type),
          )
        : [undefined, NaN];
      if (only !== "e2e") {
        const relays = await Promise.all(
          Array.from({ length: RELAYS }, (_, i) =>
            spawnW(`relay-isolated-${i + 1}`, ["relay", "--once"], {}, prof("relay")),
          ),
        );
        const wr = watch(...relays);
        const [, sr] = await svcCpu(1, () => Promise.all(relays.map(mustSucceed)));
        svc.relay = sr;
        relayF = runFigures(wr.stop());
        say(
          `  relay${timed("relay") ? "" : " (untimed: the backlog)"}:       ${rates(relayF)}; ${relays.map((r) => JSON.stringify(r.summary())).join(" ")}`,
        );
      }
      if (k1) {
        const [k2, s2] =
          only === "e2e"
            ? [k1, s1]
            : await svcCpu(1, () =>
                relayReference(pool, kafka, refTopics[1], PARTITIONS, usersA, RELAY_BATCH, schemaId, type),
              );
        svc.relayLimit = (s1 + s2) / 2;
        relayLimit = meanFigures(k1, k2);
        say(
          `  relay limit: ${rates(relayLimit)} (pg claim ${RELAY_BATCH} FOR UPDATE SKIP LOCKED + Avro + kafkajs send (idempotent, acks=all) + mark published, 1 connection; steady before/after ${fmt(k1.steady)}/${fmt(k2.steady)})`,
        );
        if (timed("relay")) {
          const kOnly = await kafkaReference(kafka, refTopics[2], PARTITIONS, msgs, RELAY_BATCH);
          say(`  (diagnostic: kafkajs alone, the same Avro bytes, ${RELAY_BATCH}/send: ${rates(kOnly)})`);
        }
      }
    }
    const relayJ: Judged = { worker: relayF, limit: relayLimit };
    if (timed("relay"))
      rows.push({
        worker: RELAYS > 1 ? `relay x${RELAYS}` : "relay",
        rate: relayF.steady,
        limit: relayLimit.steady,
        limitWhat: `pg claim+mark around kafkajs send, ${RELAY_BATCH}/round`,
      });
    if (only === "relay") return reportOnly("relay", relayJ, svc.relay, svc.relayLimit);

    // the bare client at the processor's concurrency, 3x it, and its in-flight maximum with
    // PROCESSOR_PARTITIONS_CONCURRENCY partitions at once; the best is the limit
    const partsAtOnce = intEnv("PROCESSOR_PARTITIONS_CONCURRENCY", 3);
    const levels = [...new Set([CONCURRENCY, 3 * CONCURRENCY, partsAtOnce * CONCURRENCY])];
    let procF = nan;
    let cassLimit = nan;
    let best = CONCURRENCY;
    {
      // each Cassandra phase starts settled and pays for flushing its own rows (cassandra-settle.ts)
      const settle = () => settleCassandra(cass, home);
      say(`  (Cassandra settled before the limit: ${fmt(await settle())} ms)`);
      const [c1, s1] = await svcCpu(
        levels.length,
        () => cassandraReference(cass, usersA, levels, settle),
        "limit_before",
      );
      if (only !== "e2e") {
        const proc = await spawnW(
          "processor-isolated",
          ["processor", "--once"],
          { PROCESSOR_GROUP_ID: groupA, PROCESSOR_IDLE_EXIT_MS: "1000" },
          prof("processor"),
        );
        const wp = watch(proc);
        const [, sp] = await svcCpu(
          1,
          async () => {
            await mustSucceed(proc);
            await settle();
          },
          "processor",
        );
        svc.processor = sp;
        procF = runFigures(wp.stop());
        const inCass = await countRows(cass, idsA);
        say(
          `  processor:   ${rates(procF)}; ${fmt(inCass)} of ${fmt(n)} rows in Cassandra; ${JSON.stringify(proc.summary())}`,
        );
        if (inCass < n)
          say(`  WARNING: ${fmt(n - inCass)} rows missing in Cassandra: dead-lettered? see ${proc.logFile}`);
      }
      const [c2, s2] =
        only === "e2e"
          ? [c1, s1]
          : await svcCpu(levels.length, () => cassandraReference(cass, usersA, levels, settle), "limit_after");
      svc.cassLimit = (s1 + s2) / 2;
      const cl = new Map(levels.map((l) => [l, meanFigures(c1.get(l)!, c2.get(l)!)]));
      best = levels.reduce((a, b) => (cl.get(b)!.steady > cl.get(a)!.steady ? b : a));
      cassLimit = cl.get(best)!;
      say(
        `  cassandra limit: ${rates(cassLimit)} (same rows, the processor's prepared INSERT with its write time, x${best} in flight; steady before/after: ${levels.map((l) => `x${l} ${fmt(c1.get(l)!.steady)}/${fmt(c2.get(l)!.steady)}`).join(", ")})`,
      );
    }
    let readOnly: { figures: RunFigures; svc: number } | undefined;
    let readInsert: { figures: RunFigures; svc: number } | undefined;
    if (timed("processor")) {
      // what reading the topic alone costs, which the processor pays and its limit does not
      const [f, sv] = await svcCpu(1, () => kafkaConsumeReference(kafka, USERS_TOPIC, groupRead, n, partsAtOnce));
      readOnly = { figures: f, svc: sv };
      say(
        `  (diagnostic: kafkajs reading the same ${fmt(n)} messages alone, committing each batch: ${rates(f)}, + services ${sv.toFixed(1)} CPU-µs/record)`,
      );
      // the processor's floor with these clients: what it cannot avoid (read, Avro decode, insert), bare
      // as many writes in flight in all as the limit's best level: split over the partitions read at once
      const perBatch = Math.max(1, Math.round(best / partsAtOnce));
      const [fi, svi] = await svcCpu(
        1,
        async () => {
          const f = await readAndInsertReference(
            kafka,
            cass,
            USERS_TOPIC,
            groupReadInsert,
            n,
            partsAtOnce,
            perBatch,
            type,
          );
          await settleCassandra(cass, home);
          return f;
        },
        "floor",
      );
      readInsert = { figures: fi, svc: svi };
      say(
        `  (floor: bare kafkajs read + avsc decode + cassandra-driver insert of the same ${fmt(n)} messages, x${perBatch} in flight per batch, ${partsAtOnce} partitions at once, committing each batch: ${rates(fi)}, + services ${svi.toFixed(1)} CPU-µs/record; the processor at ${round2(procF.steady / fi.steady)} of it)`,
      );
    }
    if (timed("processor"))
      say(
        `  (services' CPU-µs per record: processor: ${svcSay("processor")}; limit before: ${svcSay("limit_before")}; after: ${svcSay("limit_after")}; floor: ${svcSay("floor")})`,
      );
    const procJ: Judged = { worker: procF, limit: cassLimit };
    /** The processor's diagnostics in the BENCH line: the read alone, and its floor (read + decode + insert, bare). */
    const procDiag = (): Record<string, unknown> => ({
      ...(readOnly
        ? {
            read_only: {
              rate: r0(readOnly.figures.steady),
              cpu_us: round2(readOnly.figures.cpuUsPerRecord),
              svc_cpu_us: round2(readOnly.svc),
            },
          }
        : {}),
      ...(readInsert
        ? {
            floor: {
              rate: r0(readInsert.figures.steady),
              cpu_us: round2(readInsert.figures.cpuUsPerRecord),
              svc_cpu_us: round2(readInsert.svc),
              ratio: round2(procF.steady / readInsert.figures.steady),
            },
          }
        : {}),
      svc_cpu_us_by_service: svcBy,
    });
    if (timed("processor"))
      rows.push({
        worker: "processor",
        rate: procF.steady,
        limit: cassLimit.steady,
        limitWhat: `cassandra-driver, x${best} in flight`,
      });
    if (only === "processor") return reportOnly("processor", procJ, svc.processor, svc.cassLimit, { ...procDiag() });

    // ---------------- A/B of end to end (BENCH_E2E_AB) ----------------
    const abRuns: Record<string, unknown>[] = [];
    for (let t = 0; t < trials; t++) {
      const variant = t % 2 === 0 ? "A" : "B";
      const extra = variant === "A" ? {} : abEnv;
      const group = `${groupB}-t${t}`;
      await groupAtEnd(admin, group);
      const pT = await spawnW(`processor-e2e-t${t}`, ["processor"], { ...extra, PROCESSOR_GROUP_ID: group });
      const rT = await spawnW(`relay-e2e-t${t}`, ["relay"], extra);
      await new Promise((r) => setTimeout(r, 3000));
      const [wpT, wrT] = [watch(pT), watch(rT)];
      const iT = await spawnW(`ingest-e2e-t${t}`, ["ingest", "--once"], { ...extra, INGEST_SEED: `${seedB}-t${t}` });
      const wiT = watch(iT);
      const s0 = servicesCpuUs(home);
      await mustSucceed(iT);
      const deadlineT = Date.now() + 600_000;
      while ((wpT.last()?.v ?? 0) < n) {
        if (pT.child.exitCode !== null || rT.child.exitCode !== null) throw new Error(`a worker died: see ${logDir}/`);
        if (Date.now() > deadlineT)
          throw new Error(`A/B trial ${t}: only ${fmt(wpT.last()?.v ?? 0)} of ${fmt(n)} stored after 600 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const s1 = servicesCpuUs(home);
      const [rm, pm] = await Promise.all([scrape(rT.metricsPort), scrape(pT.metricsPort)]);
      const roundsT = sample(rm, "pipeline_batch_duration_seconds_count", { worker: "relay" }) ?? NaN;
      const batchesT = sample(pm, "pipeline_batch_duration_seconds_count", { worker: "processor" }) ?? NaN;
      const [ipT, rpT, ppT] = [wiT.stop(), wrT.stop(), wpT.stop()];
      await Promise.all([rT.stop(), pT.stop()]);
      const f = runFigures(ppT);
      const lo = ipT.find((p) => p.v >= 0.1 * n);
      const hi = ipT.find((p) => p.v >= 0.9 * n);
      const during = lo && hi ? ppT.filter((p) => p.t >= lo.t && p.t <= hi.t) : [];
      const steady = during.length >= 3 ? slope(during) : f.steady;
      const first = ipT.find((p) => p.v > 0)!;
      const lastStore = ppT.find((p) => p.v === ppT.at(-1)!.v)!;
      const each = [ipT, rpT, ppT].map((ps) => (ps.at(-1)!.cpuUs - ps[0].cpuUs) / n);
      const cpu = each[0] + each[1] + each[2];
      const svcUs = s0.pids === s1.pids ? (s1.us - s0.us) / n : NaN;
      const r = {
        variant,
        steady: r0(steady),
        mean: r0(n / ((lastStore.t - first.t) / 1000)),
        cpu_us: round2(cpu),
        cpu_us_each: each.map(round2),
        svc_cpu_us: round2(svcUs),
        per_relay_round: r0(n / roundsT),
        per_processor_batch: r0(n / batchesT),
        load: loadavg()[0],
      };
      abRuns.push(r);
      say(
        `  A/B trial ${t + 1}/${trials} (${variant}${variant === "B" ? ": " + JSON.stringify(abEnv) : ""}): end to end steady ${fmt(steady)}/s, mean ${fmt(r.mean ?? NaN)}/s; CPU-µs/record workers ${cpu.toFixed(1)} (ingest ${each[0].toFixed(1)}, relay ${each[1].toFixed(1)}, processor ${each[2].toFixed(1)}) + services ${svcUs.toFixed(1)}; ${fmt(n / roundsT)} per relay round, ${fmt(n / batchesT)} per processor batch; load ${r.load}`,
      );
    }
    if (trials > 0) say(`BENCH_AB ${JSON.stringify({ run, records: n, b: abEnv, runs: abRuns })}`);

    // ---------------- phase 2: all three at once ----------------
    say(`\n[2/3] all three workers at once, ${fmt(n)} new users`);
    await groupAtEnd(admin, groupB);
    const p2 = await spawnW("processor-e2e", ["processor"], { PROCESSOR_GROUP_ID: groupB });
    const r2 = await spawnW("relay-e2e", ["relay"], {});
    await new Promise((r) => setTimeout(r, 3000)); // both connected and idle before the first fetch
    const [wp2, wr2] = [watch(p2), watch(r2)];
    let staged2 = () => 0;
    const lat2 = latencySampler(cass, idsB, 2000, () => staged2());
    const i2 = await spawnW("ingest-e2e", ["ingest", "--once"], { INGEST_SEED: seedB });
    const wi2 = watch(i2);
    // a page ahead (rejected records make the count lag the ids' positions), all once ingest is done
    staged2 = () => (i2.child.exitCode !== null ? Infinity : (wi2.last()?.v ?? 0) + BATCH);
    const cpu2 = () => [i2, r2, p2].reduce((s, w) => s + (procCpuUs(w.child.pid!) ?? 0), 0);
    const svc2 = servicesCpuUs(home);
    await mustSucceed(i2);
    const deadline = Date.now() + 600_000;
    for (;;) {
      if (p2.child.exitCode !== null || r2.child.exitCode !== null) throw new Error(`a worker died: see ${logDir}/`);
      if (lat2.done() && (wp2.last()?.v ?? 0) >= n && (await groupLag(admin, groupB).catch(() => -1)) === 0) break;
      if (Date.now() > deadline)
        throw new Error(`phase 2: only ${fmt(wp2.last()?.v ?? 0)} of ${fmt(n)} stored after 600 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const svc2b = servicesCpuUs(home);
    svc.e2e = svc2.pids === svc2b.pids ? (svc2b.us - svc2.us) / n : NaN;
    // hand-offs: how many records each relay round and each processor batch carried
    const [rm, pm] = await Promise.all([scrape(r2.metricsPort), scrape(p2.metricsPort)]);
    const rounds = sample(rm, "pipeline_batch_duration_seconds_count", { worker: "relay" }) ?? NaN;
    const batches = sample(pm, "pipeline_batch_duration_seconds_count", { worker: "processor" }) ?? NaN;
    const [ip2, rp2, pp2] = [wi2.stop(), wr2.stop(), wp2.stop()];
    const l2 = lat2.stop();
    // the pipeline's steady rate: what the processor (the last stage) stored while ingest was in
    // the middle of its run (10 %..90 % of its pages); the processor's own middle would be its
    // catch-up rate when it lags, not the rate of the whole
    const e2eF = runFigures(pp2);
    const iLo = ip2.find((p) => p.v >= 0.1 * n);
    const iHi = ip2.find((p) => p.v >= 0.9 * n);
    const during = iLo && iHi ? pp2.filter((p) => p.t >= iLo.t && p.t <= iHi.t) : [];
    if (during.length >= 3) e2eF.steady = slope(during);
    const lastStore = pp2.find((p) => p.v === pp2.at(-1)!.v)!.t;
    e2eF.mean = n / ((lastStore - l2.firstFetch) / 1000);
    // CPU of the three over the middle of the run, per record: ingest's and relay's CPU at the
    // processor's 10 % and 90 % points
    const at = (ps: Point[], t: number) =>
      ps.reduce((b, p) => (Math.abs(p.t - t) < Math.abs(b.t - t) ? p : b), ps[0]).cpuUs;
    const pLo = pp2.find((p) => p.v >= 0.1 * n)!;
    const pHi = pp2.find((p) => p.v >= 0.9 * n)!;
    e2eF.cpuUsPerRecord =
      (at(ip2, pHi.t) - at(ip2, pLo.t) + at(rp2, pHi.t) - at(rp2, pLo.t) + pHi.cpuUs - pLo.cpuUs) / (pHi.v - pLo.v);
    const [ir2, rr2] = [runFigures(ip2), runFigures(rp2)];
    const slowest = [pgLimit, relayLimit, cassLimit].reduce((a, b) => (b.steady < a.steady ? b : a));
    const e2eLimit: RunFigures = {
      ...slowest,
      cpuUsPerRecord: pgLimit.cpuUsPerRecord + relayLimit.cpuUsPerRecord + cassLimit.cpuUsPerRecord,
    };
    // On 2 cores the three stages share the CPU: when each limit alone keeps the machine busy
    // (its client + its service), three at once reach 1 / (1/a + 1/b + 1/c), not the slowest. The
    // CPU all three bare stages need per record (clients + services), over the cores, bounds it too.
    const shared = 1 / (1 / pgLimit.steady + 1 / relayLimit.steady + 1 / cassLimit.steady);
    const limitsCpu =
      pgLimit.cpuUsPerRecord +
      svc.pgLimit +
      relayLimit.cpuUsPerRecord +
      svc.relayLimit +
      cassLimit.cpuUsPerRecord +
      svc.cassLimit;
    const cpuBound = (os.cpus().length * 1e6) / limitsCpu;
    const e2eCpuAll = e2eF.cpuUsPerRecord + svc.e2e;
    // the limit end to end is judged against: the slowest stage alone, unless the CPU the three
    // bare stages need per record cannot reach it on these cores
    const fair = Number.isFinite(cpuBound) ? Math.min(slowest.steady, cpuBound) : slowest.steady;
    e2eLimit.steady = fair;
    say(
      `  while running together: ingest ${fmt(ir2.steady)}/s, relay ${fmt(rr2.steady)}/s, processor ${fmt(e2eF.steady)}/s steady; all three ${fmt(cpu2() / 1000)} ms of CPU`,
    );
    say(
      `  end to end:  ${rates(e2eF)} (CPU: the three workers together); mean from the first fetch to the last write, ${((lastStore - l2.firstFetch) / 1000).toFixed(1)} s`,
    );
    say(
      `  hand-offs: ${fmt(n / rounds)} records per relay round (${fmt(rounds)} rounds), ${fmt(n / batches)} per processor batch (${fmt(batches)} batches)`,
    );
    say(
      `  CPU-µs per record, clients + services: all three workers ${e2eCpuAll.toFixed(1)} (${e2eF.cpuUsPerRecord.toFixed(1)} + ${svc.e2e.toFixed(1)})${only ? "" : `; the three alone ${(ingestF.cpuUsPerRecord + svc.ingest + relayF.cpuUsPerRecord + svc.relay + procF.cpuUsPerRecord + svc.processor).toFixed(1)}`}; the three limits ${limitsCpu.toFixed(1)} (${os.cpus().length} cores: at most ${fmt(cpuBound)}/s)`,
    );
    say(
      `  the limits sharing ${os.cpus().length} cores: 1/(1/${fmt(pgLimit.steady)} + 1/${fmt(relayLimit.steady)} + 1/${fmt(cassLimit.steady)}) = ${fmt(shared)}/s; end to end is ${Math.round((100 * e2eF.steady) / shared)}% of it (${Math.round((100 * e2eF.steady) / slowest.steady)}% of the slowest alone)`,
    );
    say(
      `  latency fetch -> row at full rate (${fmt(l2.lat.length)} sampled rows): p50 ${fmt(percentile(l2.lat, 50))} ms, p99 ${fmt(percentile(l2.lat, 99))} ms, max ${fmt(Math.max(...l2.lat))} ms`,
    );
    const e2eJ: Judged = { worker: e2eF, limit: e2eLimit };
    rows.push({
      worker: "end to end",
      rate: e2eF.steady,
      limit: fair,
      limitWhat: `min(slowest limit alone ${fmt(slowest.steady)}, ${os.cpus().length} cores / CPU of the 3 bare stages ${fmt(cpuBound)})`,
    });

    // ---------------- phase 3: half rate ----------------
    const half = LAT_N > 0 ? await halfRate(e2eF.steady / 2, ingestF.steady, p2.metricsPort, r2.logFile) : undefined;
    await Promise.all([r2.stop(), p2.stop()]);

    const load1 = loadavg();
    say(
      `\nresults (${fmt(n)} records per measurement, ${new Date().toISOString()}; load average ${load0.join(" ")} at the start, ${load1.join(" ")} at the end)`,
    );
    say(table(rows));
    say(
      `CPU-µs per record, worker / its limit: ingest ${ingestF.cpuUsPerRecord.toFixed(1)} / ${pgLimit.cpuUsPerRecord.toFixed(1)}, relay ${relayF.cpuUsPerRecord.toFixed(1)} / ${relayLimit.cpuUsPerRecord.toFixed(1)}, processor ${procF.cpuUsPerRecord.toFixed(1)} / ${cassLimit.cpuUsPerRecord.toFixed(1)}, end to end ${e2eF.cpuUsPerRecord.toFixed(1)} / ${e2eLimit.cpuUsPerRecord.toFixed(1)}`,
    );
    say(
      `latency fetch -> Cassandra row: full rate p50 ${fmt(percentile(l2.lat, 50))} ms p99 ${fmt(percentile(l2.lat, 99))} ms` +
        (half ? `; half rate (${fmt(half.rate)}/s) p50 ${fmt(half.p50)} ms p99 ${fmt(half.p99)} ms` : ""),
    );
    const bench = {
      run,
      records: n,
      load: load0,
      load_end: load1,
      ratios: {
        ingest: round2(ratioOf(ingestJ)),
        relay: round2(ratioOf(relayJ)),
        processor: round2(ratioOf(procJ)),
        e2e: round2(ratioOf(e2eJ)),
      },
      cpu_ratios: {
        ingest: round2(cpuRatioOf(ingestJ)),
        relay: round2(cpuRatioOf(relayJ)),
        processor: round2(cpuRatioOf(procJ)),
        e2e: round2(cpuRatioOf(e2eJ)),
      },
      ingest: jsonOf(ingestJ),
      relay: jsonOf(relayJ),
      processor: { ...jsonOf(procJ), ...procDiag() },
      e2e: {
        ...jsonOf(e2eJ),
        limit_slowest: r0(slowest.steady),
        ratio_slowest: round2(e2eF.steady / slowest.steady),
        limit_shared: r0(shared),
        ratio_shared: round2(e2eF.steady / shared),
        limit_cpu_bound: r0(cpuBound),
        svc_cpu_us: round2(svc.e2e),
        limits_all_cpu_us: round2(limitsCpu),
        per_relay_round: r0(n / rounds),
        per_processor_batch: r0(n / batches),
      },
      svc_cpu_us: {
        ingest: round2(svc.ingest),
        ingest_limit: round2(svc.pgLimit),
        relay: round2(svc.relay),
        relay_limit: round2(svc.relayLimit),
        processor: round2(svc.processor),
        processor_limit: round2(svc.cassLimit),
        e2e: round2(svc.e2e),
      },
      latency_ms: {
        full: {
          p50: r0(percentile(l2.lat, 50)),
          p99: r0(percentile(l2.lat, 99)),
          max: r0(Math.max(...l2.lat)),
          rows: l2.lat.length,
        },
        ...(half ? { half: halfJson(half) } : {}),
      },
    };
    say(`BENCH ${JSON.stringify(bench)}`);
  } finally {
    await Promise.all(workers.map((w) => w.stop(10_000)));
    apiChild?.kill("SIGTERM");
    try {
      resumeCompaction?.();
    } catch (e) {
      say(
        `WARNING: the compaction of ${KEYSPACE}.${USERS_TABLE} is still paused (a Cassandra restart resumes it): ${(e as Error).message}`,
      );
    }
    await cleanupReferences({
      pool,
      pgSchemas: [pgSchema],
      kafka,
      cassandra: cass,
      topics: refTopics,
      groups: [groupA, groupB, groupRead, groupReadInsert],
    }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await Promise.all([pool.end(), cass.shutdown()]).catch(() => undefined);
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
