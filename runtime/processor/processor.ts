/**
 * The processor worker: consumer group on users_created → Cassandra upserts. Offsets are
 * committed only after Cassandra acknowledged the rows (and the DLQ the bad messages) of a chunk.
 *
 * Faults (runtime/lib/errors.ts): a dependency that fails (Cassandra, the registry, Kafka, the
 * DLQ) is retried in place with backoff while the member keeps heartbeating, so it keeps its
 * partitions and its offsets stay where they are; only a bad message is dead-lettered, with its
 * reason. Nothing makes the worker exit but a stop signal or a programming error.
 * The parts: consumer-run.ts (one consumer), batch.ts (a batch, chunk by chunk, and its commits),
 * chunk-retry.ts (a chunk retried in place), chunk-store.ts (decode, write, dead-letter),
 * dlq-sender.ts (the DLQ's producer).
 */
import type { Client } from "cassandra-driver";
import { USERS_TOPIC, USERS_VALUE_SUBJECT } from "../contracts/names";
import { userCreatedAvsc } from "../contracts/user-created";
import { avroType, FrameDecoder } from "../lib/avro";
import { createCassandraClient, ensureCassandraSchema } from "../lib/cassandra";
import type { ProcessorConfig } from "../lib/config";
import { classify, describe, ProgrammingError } from "../lib/errors";
import { keepPartitions, markHealthy } from "../lib/health";
import { createKafka, ensureTopics } from "../lib/kafka";
import { createLogger, type Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { backoffDelay, INFRA_RETRY, untilAvailable, type UntilAvailableOptions } from "../lib/retry";
import { createRegistry } from "../lib/schema-registry";
import { sleep } from "../lib/sleep";
import { startStoppable, type WorkerHandle } from "../lib/stoppable";
import { handleBatch, type BatchContext } from "./batch";
import { HEALTH, schemaLostGauge } from "./chunk-retry";
import { ChunkStore } from "./chunk-store";
import { runConsumer, type ConsumerRunContext } from "./consumer-run";
import { DlqSender, kafkaDlqTopic } from "./dlq-sender";

export { groupLag } from "./lag";

export interface ProcessorSummary {
  stored: number;
  deadLettered: number;
  batches: number;
  seconds: number;
}

export interface ProcessorOptions {
  config: ProcessorConfig;
  log?: Logger;
  signal?: AbortSignal;
  /** Stop once the group has no lag left and nothing arrived for PROCESSOR_IDLE_EXIT_MS. */
  untilCaughtUp?: boolean;
  /** The topic consumed (users_created) and the DLQ (users_created.dlq): a test's own can have its own limits. */
  topic?: string;
  dlqTopic?: string;
}

export type ProcessorHandle = WorkerHandle<ProcessorSummary>;

export function startProcessor(options: ProcessorOptions): ProcessorHandle {
  const config = options.config;
  const log = options.log ?? createLogger("processor", config.LOG_LEVEL);
  return startStoppable(options.signal, (signal) => runProcessor(options, config, log, signal));
}

async function runProcessor(
  options: ProcessorOptions,
  config: ProcessorConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<ProcessorSummary> {
  const startedAt = Date.now();
  const summary: ProcessorSummary = { stored: 0, deadLettered: 0, batches: 0, seconds: 0 };
  const topic = options.topic ?? USERS_TOPIC;
  const kafka = createKafka(config.KAFKA_BROKERS, "processor", log);
  const registry = createRegistry(config.SCHEMA_REGISTRY_URL);
  const decoder = new FrameDecoder(registry, avroType(userCreatedAvsc()), USERS_VALUE_SUBJECT);
  const admin = kafka.admin();
  const dlq = new DlqSender(kafkaDlqTopic(kafka, admin, options.dlqTopic), log);
  const wait: UntilAvailableOptions = { signal, log, health: HEALTH };
  let cassandra: Client | undefined;
  try {
    const topics = () => ensureTopics(kafka, config.TOPIC_PARTITIONS, config.TOPIC_REPLICATION_FACTOR);
    await untilAvailable("kafka: ensure topics", topics, wait);
    cassandra = await connectCassandra(config, wait);
    await untilAvailable("kafka: connect", () => admin.connect(), wait);
    // the writer schema of the subject's latest version, fetched now: a registry outage later
    // only matters for schema ids never seen, and those wait (never dead-lettered)
    await untilAvailable(
      "schema registry: latest schema",
      async () => {
        try {
          await decoder.load(await registry.getLatestSchemaId(USERS_VALUE_SUBJECT));
        } catch (e) {
          if ((e as { status?: number }).status !== 404) throw e; // no subject yet: the relay registers it
        }
      },
      wait,
    );
    markHealthy(HEALTH);

    let lastActivity = Date.now();
    // four heartbeats a session: a loaded host may delay one or two without losing the member
    const heartbeatMs = Math.min(1_000, Math.floor(config.PROCESSOR_SESSION_TIMEOUT_MS / 4));
    const batchContext: Omit<BatchContext, "checkCoordinator"> = {
      config,
      log,
      signal,
      heartbeatMs,
      totals: summary,
      chunks: new ChunkStore({ decoder, cassandra, dlq, topic, concurrency: config.PROCESSOR_CONCURRENCY }),
      schemaLost: schemaLostGauge(metrics().registry),
      onProgress: () => (lastActivity = Date.now()),
    };
    const runContext: ConsumerRunContext = {
      kafka,
      config,
      topic,
      log,
      signal,
      heartbeatMs,
      lag: {
        admin,
        groupId: config.PROCESSOR_GROUP_ID,
        topic,
        log,
        untilCaughtUp: options.untilCaughtUp
          ? { idleExitMs: config.PROCESSOR_IDLE_EXIT_MS, lastActivity: () => lastActivity }
          : undefined,
      },
      handleBatch: (payload, checkCoordinator) => handleBatch(payload, { ...batchContext, checkCoordinator }),
    };
    for (let run = 1; !signal.aborted; run++) {
      const crash = await runConsumer(runContext, run);
      if (!crash) break;
      throwIfBug(crash, config);
      log.warn({ err: describe(crash) }, "consumer stopped for good; starting a new one");
      await sleep(backoffDelay(Math.min(run, 4), INFRA_RETRY), signal);
    }
  } finally {
    keepPartitions(HEALTH, []); // stopped: no partition of ours is retried any more
    await Promise.all([dlq.close().catch(() => undefined), admin.disconnect().catch(() => undefined)]);
    await cassandra?.shutdown().catch(() => undefined);
  }
  summary.seconds = (Date.now() - startedAt) / 1000;
  log.info(summary, "processor stopped");
  return summary;
}

async function connectCassandra(config: ProcessorConfig, wait: UntilAvailableOptions): Promise<Client> {
  let cassandra = createCassandraClient(config);
  const connecting = untilAvailable(
    "cassandra: connect",
    async () => {
      await cassandra.connect();
      await ensureCassandraSchema(cassandra, config.CASSANDRA_REPLICATION_FACTOR, config.CASSANDRA_LOCAL_DC);
    },
    {
      ...wait,
      onFailure: async () => {
        // a client whose first connect failed is not reused: start again from a fresh one
        await cassandra.shutdown().catch(() => undefined);
        cassandra = createCassandraClient(config);
      },
    },
  );
  try {
    await connecting;
    return cassandra;
  } catch (e) {
    await cassandra.shutdown().catch(() => undefined); // stopped while waiting: no client left open
    throw e;
  }
}

/** A consumer that stopped for good on our mistake: the worker stops, saying which. */
function throwIfBug(crash: Error, config: ProcessorConfig): void {
  if ((crash as { type?: string }).type === "INVALID_SESSION_TIMEOUT") {
    throw new ProgrammingError(
      `PROCESSOR_SESSION_TIMEOUT_MS=${config.PROCESSOR_SESSION_TIMEOUT_MS} is outside the brokers' ` +
        "group.min/max.session.timeout.ms: raise it (Kafka's own minimum is 6000) " +
        "or lower the brokers' minimum (ours: 2000)",
      { cause: crash },
    );
  }
  if (classify(crash) === "programming") throw crash;
}
