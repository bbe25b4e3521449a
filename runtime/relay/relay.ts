/**
 * The relay worker: unpublished outbox rows → Kafka users_created (key = user id, value = Avro
 * via Schema Registry), marked published in the claiming transaction after Kafka acknowledges.
 * A failed send rolls the transaction back: the rows go back to the outbox for the next round.
 */
import { CompressionTypes, Partitioners, type Producer } from "kafkajs";
import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Pool } from "pg";
import { USERS_TOPIC } from "../contracts/names";
import type { RelayConfig } from "../lib/config";
import { markFailing, markHealthy } from "../lib/health";
import { createKafka, ensureTopics } from "../lib/kafka";
import { createLogger, type Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { createPgPool } from "../lib/pg";
import { migrate } from "../lib/pg-schema";
import { backoffDelay } from "../lib/retry";
import { createRegistry, registerUserCreated } from "../lib/schema-registry";
import { sleep } from "../lib/sleep";
import { startStoppable, type WorkerHandle } from "../lib/stoppable";
import { claimRows, lockPendingBuckets, markPublished, pendingCount } from "./claim";

export interface RelaySummary {
  published: number;
  rounds: number;
  failedRounds: number;
  seconds: number;
}

export interface RelayOptions {
  config: RelayConfig;
  log?: Logger;
  signal?: AbortSignal;
  pool?: Pool;
  /** Stop when no unpublished rows remain (after other relays' claims are done too). */
  untilDrained?: boolean;
}

/** `done` also settles when an untilDrained relay has drained the outbox. */
export type RelayHandle = WorkerHandle<RelaySummary>;

/** One round: claim, publish, mark. Returns the number of rows published (0: nothing claimable). */
export async function relayRound(pool: Pool, producer: Producer, registry: SchemaRegistry, schemaId: number, c: RelayConfig): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const buckets = await lockPendingBuckets(client, c.RELAY_MAX_BUCKETS);
    const rows = await claimRows(client, buckets, c.RELAY_BATCH_SIZE);
    if (rows.length === 0) {
      await client.query("COMMIT");
      return 0;
    }
    const messages = await Promise.all(
      rows.map(async (r) => ({ key: r.user_id, value: await registry.encode(schemaId, r.payload), headers: { outbox_id: r.id } })),
    );
    await producer.send({ topic: USERS_TOPIC, acks: -1, compression: CompressionTypes.None, messages });
    await markPublished(client, rows.map((r) => r.id));
    await client.query("COMMIT");
    return rows.length;
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

export function startRelay(o: RelayOptions): RelayHandle {
  const c = o.config;
  const log = o.log ?? createLogger("relay", c.LOG_LEVEL);
  const m = metrics();

  return startStoppable(o.signal, async (signal): Promise<RelaySummary> => {
    const t0 = Date.now();
    const s: RelaySummary = { published: 0, rounds: 0, failedRounds: 0, seconds: 0 };
    const pool = o.pool ?? createPgPool(c, c.RELAY_CONCURRENCY + 1);
    const kafka = createKafka(c.KAFKA_BROKERS, "relay", log);
    // Retries are bounded on purpose (kafkajs warns about it): a send that keeps failing must end
    // the round, roll the claim back and free the buckets, rather than hold them forever. Such a
    // failed-but-landed send may repeat a message on the topic; the processor's upserts absorb it.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    try {
      await migrate(pool);
      await ensureTopics(kafka, c.TOPIC_PARTITIONS, c.TOPIC_REPLICATION_FACTOR);
      const registry = createRegistry(c.SCHEMA_REGISTRY_URL);
      const schemaId = await registerUserCreated(registry);
      await producer.connect();
      log.info({ schemaId, concurrency: c.RELAY_CONCURRENCY }, "relay started");
      // RELAY_CONCURRENCY round loops share the producer and the pool: while one waits for
      // Kafka, another claims, encodes or commits. Per-key order holds: each loop's bucket locks
      // live until its commit, after the Kafka ack, so no two loops ever hold the same key.
      let pendingAt = 0;
      const loop = async (): Promise<void> => {
        let failures = 0;
        while (!signal.aborted) {
          if (Date.now() - pendingAt >= 1000) {
            pendingAt = Date.now();
            m.outboxPending.set(await pendingCount(pool).catch(() => -1));
          }
          const end = m.batchSeconds.startTimer({ worker: "relay" });
          let n: number;
          try {
            n = await relayRound(pool, producer, registry, schemaId, c);
            failures = 0;
            markHealthy("relay");
          } catch (e) {
            s.failedRounds++;
            if (failures >= 3) markFailing("relay", (e as Error).message);
            m.retries.inc({ worker: "relay" });
            const delay = backoffDelay(failures++, { baseMs: 200, maxMs: 10_000 });
            log.warn({ err: e, delay }, "relay round failed; rows given back, retrying");
            await sleep(delay, signal);
            continue;
          }
          s.rounds++;
          if (n > 0) {
            end();
            s.published += n;
            m.recordsIn.inc({ worker: "relay" }, n);
            m.recordsOut.inc({ worker: "relay" }, n);
            log.debug({ published: n }, "round published");
            continue;
          }
          const pending = await pendingCount(pool);
          m.outboxPending.set(pending);
          if (o.untilDrained && pending === 0) break;
          await sleep(c.RELAY_POLL_MS, signal);
        }
      };
      await Promise.all(Array.from({ length: c.RELAY_CONCURRENCY }, () => loop()));
    } finally {
      await producer.disconnect().catch(() => undefined);
      if (!o.pool) await pool.end().catch(() => undefined);
    }
    s.seconds = (Date.now() - t0) / 1000;
    log.info(s, "relay stopped");
    return s;
  });
}
