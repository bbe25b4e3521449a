/** kafkajs client with pino logging, and the topics of the pipeline ensured. */
import { Kafka, logLevel as KafkaLogLevel, type Admin, type logCreator } from "kafkajs";
import { DLQ_TOPIC, USERS_TOPIC } from "../contracts/names";
import type { Logger } from "./logger";

function pinoLogCreator(log: Logger): logCreator {
  return () => ({ level, log: entry }) => {
    const { message, ...rest } = entry;
    const ctx = { kafkajs: rest.namespace ?? entry.namespace, ...rest };
    if (level === KafkaLogLevel.ERROR) log.error(ctx, message);
    else if (level === KafkaLogLevel.WARN) log.warn(ctx, message);
    else if (level === KafkaLogLevel.INFO) log.debug(ctx, message);
    else log.trace(ctx, message);
  };
}

export function createKafka(brokers: string[], clientId: string, log: Logger): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: KafkaLogLevel.WARN,
    logCreator: pinoLogCreator(log.child({ component: "kafkajs" })),
    // short backoffs (about 6 s in all): a broker back from a restart is noticed within ~2 s;
    // past that the error reaches the worker, which waits with its own backoff (lib/retry.ts)
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2_000 },
  });
}

/** Create users_created and its DLQ if absent (another worker may be doing the same). */
export async function ensureTopics(kafka: Kafka, partitions: number, replicationFactor: number): Promise<void> {
  const admin: Admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = [USERS_TOPIC, DLQ_TOPIC].filter((t) => !existing.has(t));
    if (wanted.length === 0) return;
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: wanted.map((topic) => ({ topic, numPartitions: partitions, replicationFactor })),
      });
    } catch (e) {
      const err = e as { type?: string; errors?: { type?: string }[] };
      const all = err.errors ?? [err];
      if (!all.every((x) => x.type === "TOPIC_ALREADY_EXISTS")) throw e;
    }
  } finally {
    await admin.disconnect();
  }
}
