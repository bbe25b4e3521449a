/**
 * The relay worker: unpublished outbox rows → Kafka users_created (key = user id, value = Avro in
 * the Confluent wire format), marked published in the claiming transaction after Kafka acknowledges.
 *
 * Faults (runtime/lib/errors.ts):
 *  - a dependency that fails (PostgreSQL, Kafka) ends the round: the rows go back to the outbox,
 *    the loop is marked unhealthy and retries with backoff, for as long as it takes;
 *  - after ANY failed send the loop's producer is thrown away and a new one (new producer id) is
 *    built (round-loop.ts); each loop has its own producer;
 *  - a row that cannot be published (does not fit the schema, larger than the topic's
 *    max.message.bytes as read from Kafka, or refused by Kafka when sent alone: MESSAGE_TOO_LARGE
 *    and the like) is parked with its reason; the rest of the round goes on;
 *  - a send that may have landed before its commit failed is reconciled from the topic before its
 *    rows are claimed again (reconcile.ts): each row is on the topic once.
 * Sends are bounded by bytes (RELAY_MAX_SEND_BYTES and the topic's limit), so a round of many rows
 * on one partition never makes a record batch larger than the broker accepts.
 * The parts: round-loop.ts (a loop of rounds and its producer), round.ts (one round), encode.ts.
 */
import type { Pool } from "pg";
import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { USERS_TOPIC } from "../contracts/names";
import { userCreatedAvsc } from "../contracts/user-created";
import { avroType } from "../lib/avro";
import type { RelayConfig } from "../lib/config";
import { describe } from "../lib/errors";
import { markHealthy } from "../lib/health";
import { createKafka, ensureTopics, topicMessageLimit } from "../lib/kafka";
import { createLogger, type Logger } from "../lib/logger";
import { createPgPool } from "../lib/pg";
import { migrate } from "../lib/pg-schema";
import { untilAvailable, type UntilAvailableOptions } from "../lib/retry";
import { createRegistry, registerUserCreated } from "../lib/schema-registry";
import { sleep } from "../lib/sleep";
import { startStoppable, type WorkerHandle } from "../lib/stoppable";
import { TopicLimit } from "../lib/topic-limit";
import { PendingGauge, Refusals } from "./loop-state";
import { keepOutboxPruned } from "./prune";
import { RoundLoop, type RelayShared, type RelayTotals } from "./round-loop";

export interface RelaySummary extends RelayTotals {
  seconds: number;
  /** CPU seconds (user and system) this process spent from the relay's start to its stop. */
  cpuSeconds: number;
}

export interface RelayOptions {
  config: RelayConfig;
  log?: Logger;
  signal?: AbortSignal;
  pool?: Pool;
  /** Stop when no unpublished rows remain (after other relays' claims are done too). */
  untilDrained?: boolean;
  /** The topic published to (users_created); a test's own topic can have its own limits. */
  topic?: string;
}

/** `done` also settles when an untilDrained relay has drained the outbox. */
export type RelayHandle = WorkerHandle<RelaySummary>;

export function startRelay(options: RelayOptions): RelayHandle {
  const log = options.log ?? createLogger("relay", options.config.LOG_LEVEL);
  return startStoppable(options.signal, (signal) => runRelay(options, log, signal));
}

async function runRelay(options: RelayOptions, log: Logger, signal: AbortSignal): Promise<RelaySummary> {
  const config = options.config;
  const startedAt = Date.now();
  const cpuAtStart = process.cpuUsage();
  const summary: RelaySummary = { published: 0, parked: 0, rounds: 0, failedRounds: 0, seconds: 0, cpuSeconds: 0 };
  const pool = options.pool ?? createPgPool(config, 2 * config.RELAY_CONCURRENCY + 2, log);
  const kafka = createKafka(config.KAFKA_BROKERS, "relay", log);
  const admin = kafka.admin();
  const loops: RoundLoop[] = [];
  const wait: UntilAvailableOptions = { signal, log, health: "relay" };
  try {
    await untilAvailable("postgres: migrate", () => migrate(pool), wait);
    const topics = () => ensureTopics(kafka, config.TOPIC_PARTITIONS, config.TOPIC_REPLICATION_FACTOR);
    await untilAvailable("kafka: ensure topics", topics, wait);
    await untilAvailable("kafka: admin", () => admin.connect(), wait);
    // the schema id is learnt once: encoding is local, a registry outage later does not matter
    const registry = createRegistry(config.SCHEMA_REGISTRY_URL);
    const schema = {
      id: await untilAvailable("schema registry: register", () => registerUserCreated(registry), wait),
    };
    const topic = options.topic ?? USERS_TOPIC;
    const limit = new TopicLimit(() => topicMessageLimit(admin, topic), topic, log);
    await untilAvailable("kafka: the topic's max.message.bytes", () => limit.get(), wait);
    markHealthy("relay");
    const started = { schemaId: schema.id, concurrency: config.RELAY_CONCURRENCY, limit: limit.current.source };
    log.info(started, "relay started");
    const shared: RelayShared = {
      pool,
      kafka,
      admin,
      config,
      log,
      signal,
      topic,
      limit,
      type: avroType(userCreatedAvsc()),
      schemaId: () => schema.id,
      refusals: new Refusals(),
      pending: new PendingGauge(pool, log),
      totals: summary,
      untilDrained: options.untilDrained,
    };
    // RELAY_CONCURRENCY round loops, each with its own PostgreSQL connection, bucket locks and
    // producer: while one waits for Kafka, another claims, encodes or commits. Per-key order
    // holds: a loop's bucket locks live until its commit, after the Kafka ack.
    for (let index = 0; index < config.RELAY_CONCURRENCY; index++) loops.push(new RoundLoop(index, shared));
    const loopsDone = new AbortController();
    const background = AbortSignal.any([signal, loopsDone.signal]);
    const watching = watchSchemaId(registry, schema, log, background);
    const pruning =
      config.RELAY_OUTBOX_RETENTION_S > 0
        ? keepOutboxPruned(pool, {
            retentionSeconds: config.RELAY_OUTBOX_RETENTION_S,
            batch: config.RELAY_PRUNE_BATCH,
            pauseMs: config.RELAY_PRUNE_PAUSE_MS,
            everyMs: config.RELAY_PRUNE_EVERY_MS,
            log,
            signal: background,
          })
        : undefined;
    try {
      await Promise.all(loops.map((loop) => loop.run()));
    } finally {
      loopsDone.abort();
      await Promise.all([watching, pruning]);
    }
  } finally {
    await Promise.all(loops.map((loop) => loop.close()));
    await admin.disconnect().catch(() => undefined);
    if (!options.pool) await pool.end().catch(() => undefined);
  }
  summary.seconds = (Date.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  summary.cpuSeconds = Number(((cpu.user + cpu.system) / 1e6).toFixed(3));
  log.info(summary, "relay stopped");
  return summary;
}

/**
 * A registry that lost its data (restarted empty) no longer knows our id: register again every
 * 30 s (idempotent) and use the id it answers, so new messages stay decodable. A registry that is
 * down changes nothing here: encoding is local.
 */
async function watchSchemaId(
  registry: SchemaRegistry,
  schema: { id: number },
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    await sleep(30_000, signal);
    if (signal.aborted) break;
    try {
      const id = await registerUserCreated(registry);
      if (id !== schema.id) {
        log.warn({ was: schema.id, now: id }, "the registry gave our schema another id (it lost its data?): using it");
        schema.id = id;
      }
    } catch (e) {
      log.debug({ err: describe(e) }, "schema registration not checked now");
    }
  }
}
