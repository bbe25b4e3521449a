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
    retry: { ...CLIENT_RETRY },
  });
}

/** kafkajs's retry settings (its defaults for factor and multiplier: ±20 % jitter, doubling). */
export interface KafkaRetry {
  retries: number;
  initialRetryTime: number;
  maxRetryTime: number;
}

/**
 * Every client's retries (the relay's producer, admins): about 6 s in all, past that the error
 * reaches the worker, which waits with its own backoff (lib/retry.ts). In steps of at most 600 ms:
 * when a broker dies, its partitions' new leaders come 4-6 s later (the local set's ZooKeeper
 * session) and the next try after that finds them within 0.6 s. The former 2 s steps (5 retries)
 * had the same budget but could sleep up to 2 s past the leaders' move, on the stream's stall.
 */
export const CLIENT_RETRY: KafkaRetry = { retries: 12, initialRetryTime: 100, maxRetryTime: 600 };

/**
 * The processor's consumer: after these the consumer crashes and kafkajs restarts it, and only a
 * restart asks the cluster for the group's coordinator again. 10 retries up to 2 s (15 s) kept
 * asking a dead one: a kill -9 of the broker coordinating the group evicted the member (6 s
 * session) and it rejoined 31 s after the kill (kill suite, 2026-11-26). Spent in under the
 * session time-out (3 s: 200, 480, 600, 600, 600 ms), the member finds the new coordinator sooner.
 */
export const CONSUMER_RETRY: KafkaRetry = { retries: 5, initialRetryTime: 200, maxRetryTime: 600 };

/** The longest kafkajs waits between tries before it gives up (every jitter at its largest). */
export function retryBudgetMs(r: KafkaRetry, factor = 0.2, multiplier = 2): number {
  let wait = r.initialRetryTime;
  let sum = 0;
  for (let i = 0; i < r.retries; i++) {
    sum += wait;
    wait = Math.min(Math.ceil(wait * (1 + factor)) * multiplier, r.maxRetryTime);
  }
  return sum;
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
