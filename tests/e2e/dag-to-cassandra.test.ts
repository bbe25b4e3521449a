/**
 * End to end, every piece real: the Airflow scheduler runs the DAG user_automation (TS ingest ->
 * PostgreSQL users + outbox), the relay publishes to Kafka users_created (Avro, Schema Registry),
 * the processor writes spark_streams.created_users, and the Spark job on the standalone cluster
 * writes spark_streams.users_by_country. The ingested users must be in both tables.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "cassandra-driver";
import { Kafka, logLevel } from "kafkajs";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { Client as PgClient } from "pg";
import { AGGREGATES_TABLE, KEYSPACE, USERS_TABLE, USERS_TOPIC } from "../../runtime/contracts/names";
import { ensureTopics } from "../../runtime/lib/kafka";
import { loadServicesEnv, type ServicesEnv } from "../support/services";
import { AIRFLOW_KEYS, airflow } from "../integration/airflow/airflow-env";
import { startApi, type ApiChild } from "../integration/airflow/api-server";
import { readRange, topicEnds } from "../integration/workers/harness";
import {
  aggKey,
  cassandraClient,
  jobCheckpoint,
  readAggregates,
  REPO,
  SPARK_KEYS,
  startSparkJob,
  waitFor,
  type SparkJob,
} from "../integration/spark/spark-job";

/** A long-running worker (`tsx runtime/main.ts <worker>`) with the services' env, as a child process. */
function startWorker(
  env: ServicesEnv,
  worker: string,
  extra: Record<string, string> = {},
): { output: () => string; stop: () => Promise<void> } {
  const p = spawn(join(REPO, "node_modules/.bin/tsx"), ["runtime/main.ts", worker], {
    cwd: REPO,
    env: { ...process.env, ...env, METRICS_PORT: "0", ...extra },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-50_000);
  };
  p.stdout.on("data", keep);
  p.stderr.on("data", keep);
  const exited = new Promise<void>((r) => p.on("exit", () => r()));
  return {
    output: () => out,
    stop: async () => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      p.kill("SIGTERM");
      const t = setTimeout(() => p.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** A fresh consumer group positioned at the topic's end (the processor's group would else read it all). */
async function groupAtEnd(kafka: Kafka, groupId: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(USERS_TOPIC);
    await admin.setOffsets({
      groupId,
      topic: USERS_TOPIC,
      partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })),
    });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Where the Spark job started on the topic: its checkpoint's initial offsets (sources/0/0: a zero byte, "v1", JSON).
 */
function sparkStartOffsets(ckpt: string): Map<number, string> {
  const file = join(jobCheckpoint(ckpt), "sources", "0", "0");
  const text = readFileSync(file, "utf8");
  const json = JSON.parse(text.slice(text.indexOf("{"))) as Record<string, Record<string, number>>;
  const offs = json[USERS_TOPIC];
  if (!offs) throw new Error(`${file}: no offsets of ${USERS_TOPIC} in ${JSON.stringify(text.slice(0, 300))}`);
  return new Map(Object.entries(offs).map(([p, o]) => [Number(p), String(o)]));
}

async function deleteGroup(kafka: Kafka, groupId: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteGroups([groupId]);
  } catch {
    /* best effort */
  } finally {
    await admin.disconnect();
  }
}

describe("end to end: Airflow DAG run -> PostgreSQL -> Kafka -> Cassandra (processor and Spark)", function () {
  this.timeout(900_000);
  let env: ServicesEnv;
  let api: ApiChild;
  let cassandra: Client;
  let spark: SparkJob | undefined;
  let checkpoint: string | undefined;
  let kafka: Kafka;
  const workers: Array<{ output: () => string; stop: () => Promise<void> }> = [];
  const tag = Date.now().toString(36);
  const groupId = `e2e-processor-${tag}`;

  before(async () => {
    env = loadServicesEnv([...AIRFLOW_KEYS, ...SPARK_KEYS, "SCHEMA_REGISTRY_URL", "CASSANDRA_CONTACT_POINTS"]);
    api = await startApi();
    cassandra = cassandraClient(env);
    await cassandra.connect();
    kafka = new Kafka({ clientId: "e2e", brokers: env.KAFKA_BROKERS.split(","), logLevel: logLevel.NOTHING });
  });
  after(async () => {
    await spark?.stop();
    if (checkpoint) rmSync(checkpoint, { recursive: true, force: true });
    for (const w of workers) await w.stop();
    if (kafka) await deleteGroup(kafka, groupId);
    if (env) await airflow(env, ["dags", "pause", "user_automation"]);
    await cassandra?.shutdown();
    await api?.stop();
  });

  it("a scheduler-run DAG lands the ingested users in created_users and their counts in users_by_country", async () => {
    // 1. The Spark job streams users_created from its end (fresh checkpoint, latest offsets).
    await ensureTopics(kafka, Number(env.TOPIC_PARTITIONS ?? 6), Number(env.TOPIC_REPLICATION_FACTOR ?? 1));
    const ckpt = mkdtempSync(join(tmpdir(), "e2e-spark-"));
    checkpoint = ckpt;
    spark = startSparkJob(env, { topic: USERS_TOPIC, checkpointDir: ckpt, env: { SPARK_STARTING_OFFSETS: "latest" } });
    const sparkOut = () => `--- spark-submit (tail) ---\n${spark!.output().slice(-3000)}`;
    // The first trigger records the starting offsets in the checkpoint: from then on nothing is missed.
    await waitFor(
      "the Spark job's starting offsets",
      180_000,
      async () => {
        if (spark!.proc.exitCode !== null) throw new Error(`spark-submit exited\n${sparkOut()}`);
        return existsSync(join(jobCheckpoint(ckpt), "sources", "0", "0")) ? true : undefined;
      },
      sparkOut,
    );

    // 2. Relay (outbox -> Kafka) and processor (Kafka -> created_users) run as child processes;
    //    the processor in a fresh group that starts at the topic's end.
    await groupAtEnd(kafka, groupId);
    const sparkFrom = sparkStartOffsets(ckpt);
    const admin0 = kafka.admin();
    await admin0.connect();
    const topicFrom = await topicEnds(admin0);
    await admin0.disconnect();
    workers.push(startWorker(env, "relay"));
    const processor = startWorker(env, "processor", { PROCESSOR_GROUP_ID: groupId });
    workers.push(processor);

    // 3. A real DAG run by the scheduler (LocalExecutor), with the API and a fresh seed as run conf.
    const seed = `e2e-${tag}`;
    const batchSize = 40;
    const conf = JSON.stringify({
      env: { API_BASE_URL: api.url, INGEST_SEED: seed, INGEST_BATCH_SIZE: String(batchSize), INGEST_BATCHES: "2" },
    });
    const runId = `e2e_${seed}`;
    let r = await airflow(env, ["dags", "unpause", "user_automation"]);
    assert.equal(r.code, 0, r.output);
    r = await airflow(env, ["dags", "trigger", "user_automation", "-r", runId, "-c", conf]);
    assert.equal(r.code, 0, r.output);
    const state = await waitFor("the DAG run to finish", 300_000, async () => {
      const l = await airflow(env, ["dags", "list-runs", "-d", "user_automation", "-o", "json"]);
      const json = l.output.split("\n").find((x) => x.startsWith("[{") || x.trim() === "[]") ?? "[]";
      const runs = JSON.parse(json) as Array<{ run_id: string; state: string }>;
      const mine = runs.find((x) => x.run_id === runId);
      return mine && (mine.state === "success" || mine.state === "failed") ? mine.state : undefined;
    });
    assert.equal(state, "success", `DAG run ${runId} ended ${state}`);

    // The users the API served for that seed.
    const users: Array<{ id: string; country: string; gender: string }> = [];
    for (const page of [1, 2]) {
      const res = await fetch(`${api.url}/api/?results=${batchSize}&seed=${seed}&page=${page}`);
      const body = (await res.json()) as {
        results: Array<{ login: { uuid: string }; location: { country: string }; gender: string }>;
      };
      users.push(...body.results.map((u) => ({ id: u.login.uuid, country: u.location.country, gender: u.gender })));
    }

    // PostgreSQL (written by the ingest the DAG ran) holds each user's country, gender, fetched_at.
    const pg = new PgClient({
      host: env.PG_HOST,
      port: Number(env.PG_PORT),
      database: env.PG_DATABASE,
      user: env.PG_USER,
      password: env.PG_PASSWORD,
    });
    await pg.connect();
    const staged = await pg.query<{ country: string; gender: string; fetched_at: Date }>(
      "SELECT country, gender, fetched_at FROM users WHERE id = ANY($1::uuid[])",
      [users.map((u) => u.id)],
    );
    await pg.end();
    assert.equal(staged.rowCount, users.length, "every fetched user is staged in PostgreSQL");

    // users_created: each of our users exactly once on the topic (no relay duplicate)
    const admin = kafka.admin();
    await admin.connect();
    const mine = new Set(users.map((u) => u.id));
    const ours = (await readRange(kafka, USERS_TOPIC, topicFrom, await topicEnds(admin))).filter(
      (m) => m.key && mine.has(m.key),
    );
    assert.equal(ours.length, users.length, "each ingested user on the topic once");
    assert.equal(new Set(ours.map((m) => m.key)).size, users.length);

    // users_by_country: the windows of our users hold EXACTLY what the job read into them: our users
    // plus whatever else the shared topic carried into the same (country, gender, minute) since the
    // job's start, counted here from the topic itself. More is double counting, less is loss.
    const windowOf = (country: string, gender: string, fetchedAt: number) =>
      aggKey(country, gender, Math.floor(fetchedAt / 60_000) * 60_000);
    const ourWindows = new Set(staged.rows.map((r) => windowOf(r.country, r.gender, r.fetched_at.getTime())));
    const countries = [...new Set(users.map((u) => u.country))];
    const registry = new SchemaRegistry({ host: env.SCHEMA_REGISTRY_URL });
    let last = "";
    await waitFor(
      `${KEYSPACE}.${AGGREGATES_TABLE}: exact counts in the windows of the ingested users`,
      240_000,
      async () => {
        const onTopic = new Map<string, number>();
        for (const m of await readRange(kafka, USERS_TOPIC, sparkFrom, await topicEnds(admin))) {
          let u: { country?: string; gender?: string; fetched_at?: number };
          try {
            u = (await registry.decode(m.value as Buffer)) as typeof u;
          } catch {
            continue; // not decodable: the job drops it too (PERMISSIVE, then a null filter)
          }
          if (!u.country || !u.gender || u.fetched_at === undefined) continue;
          const k = windowOf(u.country, u.gender, Number(u.fetched_at));
          if (ourWindows.has(k)) onTopic.set(k, (onTopic.get(k) ?? 0) + 1);
        }
        const got = await readAggregates(cassandra, countries);
        last = [...ourWindows].map((k) => `${k}: job ${got.get(k) ?? 0}, topic ${onTopic.get(k) ?? 0}`).join("; ");
        return [...ourWindows].every((k) => (got.get(k) ?? 0) === (onTopic.get(k) ?? 0)) ? true : undefined;
      },
      () => `${last}\n${sparkOut()}`,
    );
    await admin.disconnect();

    // created_users: every ingested user, by id.
    const rows = await waitFor(
      `every ingested user in ${KEYSPACE}.${USERS_TABLE}`,
      120_000,
      async () => {
        const rs = await cassandra.execute(
          `SELECT id, country, gender, fetched_at FROM ${KEYSPACE}.${USERS_TABLE} WHERE id IN ?`,
          [users.map((u) => u.id)],
          { prepare: true },
        );
        return rs.rowLength === users.length ? rs : undefined;
      },
      () => `--- processor (tail) ---\n${processor.output().slice(-3000)}`,
    );
    assert.equal(rows.rowLength, users.length);
  });
});
