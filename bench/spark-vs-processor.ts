/**
 * `npm run bench:spark`: the same N users_created records through the Spark job (aggregates per
 * country, gender and minute into users_by_country) and through the TypeScript processor (one
 * upsert per user into created_users), one after the other in one run; records/s of each.
 * Prints a table, then one line `BENCH {...}` (JSON): the processor's rate over Spark's steady
 * rate (`ratio`, the goal is >= 3). Not a timed test. Needs the services up (scripts/services up).
 *
 * Both read the very same offsets of users_created: the Spark job from a fresh checkpoint with
 * startingOffsets at the offsets before the produce (--available-now: it stops at the end), the
 * processor (--once) in a fresh consumer group positioned at the same offsets.
 * Spark runs on the local standalone cluster: 1 worker core, executor 1g, driver 1g.
 *
 * Env: BENCH_RECORDS (20000), BENCH_COUNTRIES (20), BENCH_SPARK_MAX_OFFSETS_PER_TRIGGER (N/4),
 *      PROCESSOR_CONCURRENCY (worker default).
 */
import { spawn } from "node:child_process";
import os from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { AGGREGATES_TABLE, KEYSPACE, USERS_TOPIC } from "../runtime/contracts/names";
import type { UserCreated } from "../runtime/contracts/user-created";
import { ensureTopics } from "../runtime/lib/kafka";
import { createRegistry, registerUserCreated } from "../runtime/lib/schema-registry";
import { loadServicesEnv, type ServicesEnv } from "../tests/support/services";
import { produceUsers, user } from "../tests/integration/spark/records";
import { cassandraClient, REPO, SPARK_KEYS, startSparkJob } from "../tests/integration/spark/spark-job";

const intEnv = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);

interface Result {
  engine: string;
  records: number;
  wallS: number;
  workS: number;
  note: string;
}

function runProcessorOnce(
  env: ServicesEnv,
  groupId: string,
): Promise<{ out: string; wallS: number; summary: Record<string, number> }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(join(REPO, "node_modules/.bin/tsx"), ["runtime/main.ts", "processor", "--once"], {
      cwd: REPO,
      env: {
        ...process.env,
        ...env,
        METRICS_PORT: "0",
        LOG_LEVEL: "warn",
        PROCESSOR_GROUP_ID: groupId,
        PROCESSOR_IDLE_EXIT_MS: "1000",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (b: Buffer) => (out = (out + b.toString()).slice(-200_000)));
    p.stderr.on("data", (b: Buffer) => (out = (out + b.toString()).slice(-200_000)));
    const t = setTimeout(() => p.kill("SIGKILL"), 900_000);
    p.on("exit", (code) => {
      clearTimeout(t);
      const line = out
        .split("\n")
        .filter((l) => l.startsWith('{"stored"'))
        .pop();
      if (code !== 0 || !line) return reject(new Error(`processor --once exited ${code}\n${out.slice(-3000)}`));
      resolve({ out, wallS: (Date.now() - t0) / 1000, summary: JSON.parse(line) as Record<string, number> });
    });
  });
}

async function main(): Promise<void> {
  const n = intEnv("BENCH_RECORDS", 20_000);
  const nCountries = intEnv("BENCH_COUNTRIES", 20);
  const env = loadServicesEnv([...SPARK_KEYS, "SCHEMA_REGISTRY_URL", "CASSANDRA_CONTACT_POINTS"]);
  const tag = Date.now().toString(36);
  const groupId = `bench-spark-vs-processor-${tag}`;
  const countries = Array.from({ length: nCountries }, (_, i) => `Bench_${tag}_${i}`);
  const kafka = new Kafka({
    clientId: "bench-spark",
    brokers: env.KAFKA_BROKERS.split(","),
    logLevel: logLevel.NOTHING,
  });
  await ensureTopics(kafka, intEnv("TOPIC_PARTITIONS", 6), 1);
  const registry = createRegistry(env.SCHEMA_REGISTRY_URL);
  const schemaId = await registerUserCreated(registry);

  const admin = kafka.admin();
  await admin.connect();
  const before = await admin.fetchTopicOffsets(USERS_TOPIC);
  await admin.setOffsets({
    groupId,
    topic: USERS_TOPIC,
    partitions: before.map((o) => ({ partition: o.partition, offset: o.high })),
  });

  // N users over the last 10 minutes of event time, spread over countries and two genders.
  const now = Date.now();
  const users: UserCreated[] = [];
  for (let i = 0; i < n; i++)
    users.push(
      user(countries[i % nCountries], i % 2 ? "male" : "female", now - 600_000 + Math.floor((i * 600_000) / n), i),
    );
  const tp = Date.now();
  await produceUsers(kafka, registry, schemaId, USERS_TOPIC, users);
  const produceS = (Date.now() - tp) / 1000;
  const after = await admin.fetchTopicOffsets(USERS_TOPIC);
  const inTopic = after.reduce((s, o) => s + Number(o.high), 0) - before.reduce((s, o) => s + Number(o.high), 0);
  process.stdout.write(
    `produced ${n} records to ${USERS_TOPIC} in ${produceS.toFixed(1)} s (${inTopic} new messages in the topic)\n`,
  );

  const results: Result[] = [];

  // Spark: availableNow from the offsets before the produce.
  const starting = JSON.stringify({
    [USERS_TOPIC]: Object.fromEntries(before.map((o) => [String(o.partition), Number(o.high)])),
  });
  const ts = Date.now();
  // Several micro-batches, so that the steady rate shows apart from the first batch's set-up.
  const perTrigger = intEnv("BENCH_SPARK_MAX_OFFSETS_PER_TRIGGER", Math.max(1000, Math.ceil(n / 4)));
  const job = startSparkJob(env, {
    topic: USERS_TOPIC,
    availableNow: true,
    env: { SPARK_STARTING_OFFSETS: starting, SPARK_MAX_OFFSETS_PER_TRIGGER: String(perTrigger) },
  });
  const code = await job.exited;
  const sparkWall = (Date.now() - ts) / 1000;
  const stoppedLine = job
    .output()
    .split("\n")
    .find((l) => l.includes('"event": "stopped"'));
  if (code !== 0 || !stoppedLine) throw new Error(`spark job failed (${code})\n${job.output().slice(-4000)}`);
  const stopped = JSON.parse(stoppedLine.slice(stoppedLine.indexOf('"msg":') + 6, -1)) as {
    input_rows: number;
    trigger_ms: number;
    batches: Array<[number, number]>;
  };
  results.push({
    engine: "Spark job (1 core, 1g executor)",
    records: stopped.input_rows,
    wallS: sparkWall,
    workS: stopped.trigger_ms / 1000,
    note: "windowed counts -> users_by_country",
  });
  // Past the first micro-batch (JIT warm-up, state store and Cassandra session set-up).
  const steady = stopped.batches.slice(1).filter(([rows]) => rows > 0);
  if (steady.length > 0) {
    const rows = steady.reduce((s, [r]) => s + r, 0);
    const ms = steady.reduce((s, [, m]) => s + m, 0);
    results.push({
      engine: "  Spark, batches after the first",
      records: rows,
      wallS: ms / 1000,
      workS: ms / 1000,
      note: `${steady.length} micro-batches of <= ${perTrigger} offsets`,
    });
  }

  // The TypeScript processor: same offsets, fresh group, until caught up.
  const proc = await runProcessorOnce(env, groupId);
  results.push({
    engine: "TS processor (1 process)",
    records: (proc.summary.stored ?? 0) + (proc.summary.deadLettered ?? 0),
    wallS: proc.wallS,
    workS: proc.summary.seconds ?? proc.wallS,
    note: `one upsert per user -> created_users (stored ${proc.summary.stored}, dead-lettered ${proc.summary.deadLettered})`,
  });

  const head = ["engine", "records", "wall s", "work s", "rec/s (wall)", "rec/s (work)", "what it does"];
  const rows = results.map((r) => [
    r.engine,
    String(r.records),
    r.wallS.toFixed(1),
    r.workS.toFixed(1),
    (r.records / r.wallS).toFixed(0),
    (r.records / r.workS).toFixed(0),
    r.note,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  process.stdout.write(`\n${line(head)}\n${w.map((x) => "-".repeat(x)).join("  ")}\n${rows.map(line).join("\n")}\n`);
  process.stdout.write(
    "wall: process start to exit (Spark: spark-submit, JVM, executor and the job; processor: tsx start, group join, idle exit).\n" +
      "work: Spark = sum of micro-batch trigger times; processor = its own summary seconds.\n",
  );

  // The line for scripts: the processor's rate over its own work time against Spark's steady
  // rate (micro-batches after the first; all of them when there was only one), same offsets.
  const sparkSteady = results.find((r) => r.engine.startsWith("  Spark, batches after")) ?? results[0];
  const procRow = results[results.length - 1];
  const rate = (r: Result) => Math.round(r.records / r.workS);
  process.stdout.write(
    `BENCH ${JSON.stringify({
      run: tag,
      records: n,
      load: os.loadavg().map((x) => Math.round(x * 100) / 100),
      spark: {
        records: results[0].records,
        rate_work: rate(results[0]),
        rate_steady: rate(sparkSteady),
        wall_s: Math.round(results[0].wallS * 10) / 10,
      },
      processor: { records: procRow.records, rate_work: rate(procRow), wall_s: Math.round(procRow.wallS * 10) / 10 },
      ratio: Math.round((100 * rate(procRow)) / rate(sparkSteady)) / 100,
    })}\n`,
  );

  // Clean up: the bench's aggregates partitions and its consumer group.
  const cass = cassandraClient(env);
  await cass.connect();
  await cass.execute(`DELETE FROM ${KEYSPACE}.${AGGREGATES_TABLE} WHERE country IN ?`, [countries], { prepare: true });
  await cass.shutdown();
  try {
    await admin.deleteGroups([groupId]);
  } catch {
    /* best effort */
  }
  await admin.disconnect();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
