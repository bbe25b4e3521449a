/**
 * The Spark job, submitted to the real standalone master and worker, consumes a known set of
 * Avro records from Kafka and writes exactly the expected per-minute aggregates to Cassandra;
 * more records update the windows while it streams; a full replay from a fresh checkpoint
 * leaves the same totals (idempotent by window key).
 */
import assert from "node:assert/strict";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { Kafka, logLevel } from "kafkajs";
import type { Client } from "cassandra-driver";
import { loadServicesEnv, type ServicesEnv } from "../../support/services";
import {
  aggKey,
  cassandraClient,
  readAggregates,
  sameMap,
  SPARK_KEYS,
  startSparkJob,
  waitFor,
  type SparkJob,
} from "./spark-job";
import { createTopic, deleteTopic, produceUsers, registerFor, user } from "./records";
import type { UserCreated } from "../../../runtime/contracts/user-created";

describe("Spark job users_by_country (real master, worker, Kafka, Cassandra)", function () {
  this.timeout(600_000);
  let env: ServicesEnv;
  let kafka: Kafka;
  let registry: SchemaRegistry;
  let cassandra: Client;
  let job: SparkJob | undefined;
  const tag = Date.now().toString(36);
  const topic = `spark_it_${tag}`;
  const A = `SparkA_${tag}`;
  const B = `SparkB_${tag}`;
  const m0 = Math.floor(Date.now() / 60_000) * 60_000 - 2 * 60_000;
  const m1 = m0 + 60_000;

  before(async () => {
    env = loadServicesEnv([...SPARK_KEYS, "SCHEMA_REGISTRY_URL"]);
    kafka = new Kafka({ clientId: "spark-it", brokers: env.KAFKA_BROKERS.split(","), logLevel: logLevel.NOTHING });
    registry = new SchemaRegistry({ host: env.SCHEMA_REGISTRY_URL });
    cassandra = cassandraClient(env);
    await cassandra.connect();
    await createTopic(kafka, topic);
  });

  after(async () => {
    await job?.stop();
    await cassandra?.shutdown();
    if (kafka) await deleteTopic(kafka, topic);
  });

  it("writes exactly the expected windowed counts, updates them while streaming, and a replay changes nothing", async () => {
    const users: UserCreated[] = [];
    const add = (country: string, gender: string, minute: number, n: number) => {
      for (let i = 0; i < n; i++) users.push(user(country, gender, minute + 1_000 * (i + 1), users.length));
    };
    add(A, "male", m0, 3);
    add(A, "female", m0, 2);
    add(A, "male", m1, 4);
    add(B, "female", m1, 1);
    add(B, "male", m0, 5);
    const expected = new Map([
      [aggKey(A, "male", m0), 3],
      [aggKey(A, "female", m0), 2],
      [aggKey(A, "male", m1), 4],
      [aggKey(B, "female", m1), 1],
      [aggKey(B, "male", m0), 5],
    ]);
    const schemaId = await registerFor(registry, topic);
    // One value that is not in the Confluent wire format: skipped, not counted, job goes on.
    await produceUsers(kafka, registry, schemaId, topic, users, [Buffer.from("not avro at all")]);

    job = startSparkJob(env, { topic });
    const show = () => `--- spark-submit output (tail) ---\n${job!.output().slice(-4000)}`;
    const first = await waitFor(
      "the expected aggregates",
      240_000,
      async () => {
        if (job!.proc.exitCode !== null) throw new Error(`spark-submit exited ${job!.proc.exitCode}\n${show()}`);
        const got = await readAggregates(cassandra, [A, B]);
        return sameMap(got, expected) ? got : undefined;
      },
      show,
    );
    assert.deepEqual(first, expected);

    // While it streams: two more users in one window -> that window's total is updated, others stay.
    const more = [user(A, "male", m1 + 30_000, 100), user(A, "male", m1 + 31_000, 101)];
    await produceUsers(kafka, registry, schemaId, topic, more);
    expected.set(aggKey(A, "male", m1), 6);
    await waitFor(
      "the updated window",
      120_000,
      async () => (sameMap(await readAggregates(cassandra, [A, B]), expected) ? true : undefined),
      show,
    );
    await job.stop();
    job = undefined;

    // A fresh checkpoint replays the whole topic: the upserts by window key leave the same totals.
    const replay = startSparkJob(env, { topic, availableNow: true });
    job = replay;
    const code = await replay.exited;
    assert.equal(code, 0, `replay run failed\n${replay.output().slice(-4000)}`);
    job = undefined;
    assert.deepEqual(await readAggregates(cassandra, [A, B]), expected);
  });
});
