/** kafkajs client with pino logging, and the topics of the pipeline ensured. */
import { ConfigResourceTypes, Kafka, logLevel as KafkaLogLevel, type Admin, type logCreator } from "kafkajs";
import { DLQ_TOPIC, USERS_TOPIC } from "../contracts/names";
import { InfrastructureError } from "./errors";
import type { Logger } from "./logger";

function pinoLogCreator(log: Logger): logCreator {
  return () =>
    ({ level, log: entry }) => {
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
 * The processor's consumer (and its cluster's lookups): long enough to outlast a failover, in the
 * same steps of at most 600 ms. A lost coordinator makes the processor rejoin under the same member
 * id (processor/coordinator.ts), and that rejoin's coordinator lookup retries with this budget
 * until the new coordinator answers: the local set's 4 s session, the new leaders and the group's
 * reload took 4.0-5.5 s after a kill -9, up to ~7 s on a loaded host. Spent before that, the
 * consumer crashes and kafkajs restarts it under a NEW member id, which the new coordinator makes
 * wait until the old member's session is out (+3 s). The former 5 retries (~2.5 s) did exactly
 * that: crash +6-8 s, records +10-18 s (kill suite, 2026-11-26).
 */
export const CONSUMER_RETRY: KafkaRetry = { retries: 16, initialRetryTime: 200, maxRetryTime: 600 };

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

/** The largest record batch a topic takes, and where that figure comes from (for reasons and logs). */
export interface MessageLimit {
  bytes: number;
  source: string;
}

/**
 * The topic's max.message.bytes (the broker checks each record batch against it; unset, it is the
 * broker's message.max.bytes), read from the cluster rather than assumed, and the brokers' own
 * message.max.bytes when the topic's is not given.
 */
export async function topicMessageLimit(admin: Admin, topic: string): Promise<MessageLimit> {
  const { brokers } = await admin.describeCluster();
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [
      { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ["max.message.bytes"] },
      ...brokers.map((b) => ({
        type: ConfigResourceTypes.BROKER,
        name: String(b.nodeId),
        configNames: ["message.max.bytes"],
      })),
    ],
  });
  const value = (name: string, type: ConfigResourceTypes) =>
    resources
      .filter((r) => r.resourceType === type)
      .flatMap((r) => r.configEntries.filter((e) => e.configName === name).map((e) => Number(e.configValue)))
      .filter((n) => Number.isFinite(n) && n > 0);
  const ofTopic = value("max.message.bytes", ConfigResourceTypes.TOPIC);
  if (ofTopic.length > 0) return { bytes: ofTopic[0], source: `max.message.bytes ${ofTopic[0]} of ${topic}` };
  const ofBrokers = value("message.max.bytes", ConfigResourceTypes.BROKER);
  if (ofBrokers.length > 0) {
    const bytes = Math.min(...ofBrokers);
    return { bytes, source: `message.max.bytes ${bytes} of the brokers` };
  }
  throw new InfrastructureError(`kafka: neither ${topic}'s max.message.bytes nor the brokers' message.max.bytes read`);
}
