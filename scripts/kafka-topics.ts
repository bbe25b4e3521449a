/**
 * Creates the pipeline's topics on the local broker if absent (auto.create.topics.enable=false).
 * A convenience of scripts/services up: the relay and processor ensure their topics as well.
 *
 *   KAFKA_BROKERS=127.0.0.1:9092 [TOPIC_REPLICATION_FACTOR=1] tsx scripts/kafka-topics.ts
 * (scripts/services --nodes 3 passes its three brokers and RF 3.)
 */
import { Kafka, logLevel } from "kafkajs";
import { DLQ_TOPIC, USERS_TOPIC } from "../runtime/contracts/names";

const RF = Number(process.env.TOPIC_REPLICATION_FACTOR ?? "1");
export const LOCAL_TOPICS = [
  { topic: USERS_TOPIC, numPartitions: 6, replicationFactor: RF },
  { topic: DLQ_TOPIC, numPartitions: 1, replicationFactor: RF },
];

async function main(): Promise<void> {
  const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
  const kafka = new Kafka({ clientId: "services-script", brokers, logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = LOCAL_TOPICS.filter((t) => !existing.has(t.topic));
    if (missing.length > 0) {
      await admin.createTopics({ topics: missing, waitForLeaders: true });
    }
    const meta = await admin.fetchTopicMetadata({ topics: LOCAL_TOPICS.map((t) => t.topic) });
    for (const t of meta.topics) {
      process.stderr.write(`[kafka-topics] ${t.name}: ${t.partitions.length} partitions\n`);
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * Right after the broker turns healthy its metadata may not be settled yet ("This server does not
 * host this topic-partition"): try a few times before failing `up`.
 */
async function withAttempts(attempts: number): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      return await main();
    } catch (err) {
      if (i >= attempts) throw err;
      process.stderr.write(
        `[kafka-topics] attempt ${i} failed (${err instanceof Error ? err.message : String(err)}); again in 2 s\n`,
      );
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

withAttempts(5).catch((err: unknown) => {
  process.stderr.write(`[kafka-topics] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
