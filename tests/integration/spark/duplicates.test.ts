/**
 * Duplicates on the topic (at-least-once upstream: a relay resend, a re-drive, a replay) do not
 * inflate users_by_country: the same Avro messages delivered twice in one batch, again while the
 * job streams, again after a restart from the checkpoint, and again once the watermark has passed
 * their windows (their dedupe state evicted) leave the counts of a single delivery.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

describe("Spark job users_by_country counts each delivered user once (real master, worker, Kafka, Cassandra)", function () {
  this.timeout(1_800_000);
  let env: ServicesEnv;
  let kafka: Kafka;
  let registry: SchemaRegistry;
  let cassandra: Client;
  let job: SparkJob | undefined;
  let schemaId: number;
  const tag = Date.now().toString(36);
  const topic = `spark_dup_${tag}`;
  const A = `DupA_${tag}`;
  const B = `DupB_${tag}`;
  // Sentinel country: one new user after each round of duplicates; once it is counted, the batch
  // that read it also read every duplicate produced before it (a batch reads up to the latest offsets).
  const S = `DupS_${tag}`;
  const m0 = Math.floor(Date.now() / 60_000) * 60_000 - 2 * 60_000;
  const m1 = m0 + 60_000;
  const checkpoint = mkdtempSync(join(tmpdir(), "spark-dup-ckpt-"));

  before(async () => {
    env = loadServicesEnv([...SPARK_KEYS, "SCHEMA_REGISTRY_URL"]);
    kafka = new Kafka({ clientId: "spark-dup-it", brokers: env.KAFKA_BROKERS.split(","), logLevel: logLevel.NOTHING });
    registry = new SchemaRegistry({ host: env.SCHEMA_REGISTRY_URL });
    cassandra = cassandraClient(env);
    await cassandra.connect();
    await createTopic(kafka, topic);
    schemaId = await registerFor(registry, topic);
  });

  after(async () => {
    await job?.stop();
    await cassandra?.shutdown();
    if (kafka) await deleteTopic(kafka, topic);
    rmSync(checkpoint, { recursive: true, force: true });
  });

  it("the same records delivered again (same batch, later batch, after a restart, after the watermark) change no count", async () => {
    const users: UserCreated[] = [];
    const add = (country: string, gender: string, minute: number, n: number) => {
      for (let i = 0; i < n; i++) users.push(user(country, gender, minute + 1_000 * (i + 1), users.length));
    };
    add(A, "male", m0, 3);
    add(A, "female", m0, 2);
    add(A, "male", m1, 4);
    add(B, "female", m1, 1);
    const expected = new Map([
      [aggKey(A, "male", m0), 3],
      [aggKey(A, "female", m0), 2],
      [aggKey(A, "male", m1), 4],
      [aggKey(B, "female", m1), 1],
    ]);
    const start = () => {
      job = startSparkJob(env, { topic, checkpointDir: checkpoint });
    };
    // Others restart the shared local Cassandra (benchmarks, fault tests): a job that died of it is
    // restarted from its checkpoint, which re-runs the failed batch (that must not double a count either).
    let restarts = 0;
    const cassandraGone =
      /Connection refused: \/[0-9.]+:9042|AllNodesFailedException|NoNodeAvailableException|ClosedChannel/;
    let sentinels = 0;
    const sentinelAt = new Map<number, number>();
    /** Produce `batch`, then one sentinel user at `at`; wait until Spark has counted it and the table is still. */
    const deliver = async (what: string, batch: UserCreated[], at = m1) => {
      await produceUsers(kafka, registry, schemaId, topic, batch);
      await produceUsers(kafka, registry, schemaId, topic, [user(S, "male", at + 1_000, 1000 + sentinels++)]);
      sentinelAt.set(at, (sentinelAt.get(at) ?? 0) + 1);
      const want = aggKey(S, "male", at);
      const show = () => `${what}\n--- spark-submit output (tail) ---\n${job!.output().slice(-4000)}`;
      let last: Map<string, number> | undefined;
      const got = await waitFor(
        `${what}: the sentinel counted, then two equal reads`,
        480_000,
        async () => {
          if (job!.proc.exitCode !== null) {
            if (!cassandraGone.test(job!.output()) || ++restarts > 3)
              throw new Error(`spark-submit exited ${job!.proc.exitCode}\n${show()}`);
            start();
            return undefined;
          }
          // Others share the local Cassandra (and may restart it): a failed read is tried again.
          const now = await readAggregates(cassandra, [A, B, S]).catch(() => undefined);
          if (!now) return undefined;
          const stable = now.get(want) === sentinelAt.get(at) && last !== undefined && sameMap(now, last);
          last = now;
          return stable ? now : undefined;
        },
        show,
      );
      for (const k of [...got.keys()]) if (k.startsWith(`${S}|`)) got.delete(k);
      assert.deepEqual(got, expected, `${what}: counts of A and B moved`);
    };

    // Every message twice before the job starts: both copies in the first batch.
    start();
    await deliver("each message twice in one batch", [...users, ...users]);
    // Again while it streams: the originals are in the dedupe state of earlier batches.
    await deliver("the same messages again in a later batch", users);
    await job!.stop();

    // Restart from the same checkpoint (the dedupe state is restored with the offsets), and again.
    start();
    await deliver("the same messages after a restart from the checkpoint", users);
    // A sentinel 12 minutes ahead moves the watermark (10 minutes) past A's and B's windows: their
    // dedupe keys are evicted; a copy that comes now is late and dropped, not counted again.
    await deliver("a sentinel that moves the watermark past the windows", [], m1 + 12 * 60_000);
    await deliver("the same messages after the watermark passed them", users, m1 + 12 * 60_000);
    await job!.stop();
    job = undefined;
  });
});
