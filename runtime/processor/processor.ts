/**
 * The processor worker: consumer group on users_created → Cassandra upserts. Offsets are
 * committed only after Cassandra acknowledged the rows (and the DLQ the bad messages) of a chunk.
 */
import { Partitioners, type Admin, type Consumer, type KafkaMessage, type Producer } from "kafkajs";
import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Client } from "cassandra-driver";
import { DLQ_TOPIC, USERS_TOPIC } from "../contracts/names";
import type { UserCreated } from "../contracts/user-created";
import { createCassandraClient, ensureCassandraSchema } from "../lib/cassandra";
import type { ProcessorConfig } from "../lib/config";
import { markFailing, markHealthy } from "../lib/health";
import { createKafka, ensureTopics } from "../lib/kafka";
import { createLogger, type Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { createRegistry } from "../lib/schema-registry";
import { sleep } from "../lib/sleep";
import { startStoppable, type WorkerHandle } from "../lib/stoppable";
import { writeUsers } from "./cassandra-writer";
import { decodeUser } from "./decode";
import { dlqMessage } from "./dlq";

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
}

export type ProcessorHandle = WorkerHandle<ProcessorSummary>;

const nextOffset = (o: string) => (BigInt(o) + 1n).toString();

/** Total lag of the group on users_created; sets the lag gauge per partition. */
export async function groupLag(admin: Admin, groupId: string): Promise<number> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(USERS_TOPIC),
    admin.fetchOffsets({ groupId, topics: [USERS_TOPIC] }),
  ]);
  const done = new Map<number, bigint>();
  for (const p of committed[0]?.partitions ?? []) done.set(p.partition, BigInt(p.offset));
  let total = 0n;
  for (const e of ends) {
    const c = done.get(e.partition) ?? -1n;
    const from = c >= 0n ? c : BigInt(e.low);
    const lag = BigInt(e.high) - from;
    metrics().consumerLag.set({ topic: USERS_TOPIC, partition: String(e.partition), group: groupId }, Number(lag));
    total += lag;
  }
  return Number(total);
}

export function startProcessor(o: ProcessorOptions): ProcessorHandle {
  const c = o.config;
  const log = o.log ?? createLogger("processor", c.LOG_LEVEL);
  const m = metrics();
  const s: ProcessorSummary = { stored: 0, deadLettered: 0, batches: 0, seconds: 0 };
  let lastActivity = Date.now();

  async function handleChunk(
    msgs: KafkaMessage[],
    partition: number,
    registry: SchemaRegistry,
    cass: Client,
    dlq: Producer,
  ): Promise<void> {
    const good: UserCreated[] = [];
    const bad: ReturnType<typeof dlqMessage>[] = [];
    for (const msg of msgs) {
      const d = await decodeUser(registry, msg.value, msg.key);
      if (d.ok) good.push(d.user);
      else {
        bad.push(dlqMessage({ topic: USERS_TOPIC, partition, offset: msg.offset, timestamp: msg.timestamp, key: msg.key, value: msg.value }, d.reason));
        log.warn({ partition, offset: msg.offset, reason: d.reason }, "message dead-lettered");
      }
    }
    await Promise.all([
      writeUsers(cass, good, c.PROCESSOR_CONCURRENCY),
      bad.length > 0 ? dlq.send({ topic: DLQ_TOPIC, acks: -1, messages: bad }) : Promise.resolve(undefined),
    ]);
    s.stored += good.length;
    s.deadLettered += bad.length;
    m.recordsOut.inc({ worker: "processor" }, good.length);
    for (const b of bad) m.recordsFailed.inc({ worker: "processor", reason: b.headers.error_reason.split(":")[0] });
  }

  return startStoppable(o.signal, async (signal, abort): Promise<ProcessorSummary> => {
    const t0 = Date.now();
    const kafka = createKafka(c.KAFKA_BROKERS, "processor", log);
    const registry = createRegistry(c.SCHEMA_REGISTRY_URL);
    const cass = createCassandraClient(c);
    const admin = kafka.admin();
    const dlq = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    let crashed: Error | undefined;
    const consumer: Consumer = kafka.consumer({ groupId: c.PROCESSOR_GROUP_ID, maxBytes: 16 << 20, retry: { retries: 10 } });
    try {
      await ensureTopics(kafka, c.TOPIC_PARTITIONS, c.TOPIC_REPLICATION_FACTOR);
      await cass.connect();
      await ensureCassandraSchema(cass, c.CASSANDRA_REPLICATION_FACTOR);
      await Promise.all([admin.connect(), dlq.connect(), consumer.connect()]);
      consumer.on(consumer.events.CRASH, (e) => {
        markFailing("processor", `consumer crashed: ${e.payload.error.message}`);
        if (!e.payload.restart) {
          crashed = e.payload.error;
          abort();
        }
      });
      await consumer.subscribe({ topic: USERS_TOPIC, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: c.PROCESSOR_PARTITIONS_CONCURRENCY,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          const end = m.batchSeconds.startTimer({ worker: "processor" });
          const msgs = batch.messages;
          m.recordsIn.inc({ worker: "processor" }, msgs.length);
          for (let i = 0; i < msgs.length; i += c.PROCESSOR_CHUNK_SIZE) {
            if (!isRunning() || isStale()) break; // the rest is given back: not committed
            const chunk = msgs.slice(i, i + c.PROCESSOR_CHUNK_SIZE);
            await handleChunk(chunk, batch.partition, registry, cass, dlq);
            const last = chunk[chunk.length - 1].offset;
            resolveOffset(last);
            await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: nextOffset(last) }]);
            m.consumerLag.set(
              { topic: batch.topic, partition: String(batch.partition), group: c.PROCESSOR_GROUP_ID },
              Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(nextOffset(last)))),
            );
            lastActivity = Date.now();
            markHealthy("processor");
            await heartbeat();
          }
          s.batches++;
          end();
        },
      });
      log.info({ group: c.PROCESSOR_GROUP_ID }, "processor started");
      // watch the lag (metric) until stopped, or until caught up in one-shot mode
      while (!signal.aborted) {
        await sleep(1000, signal);
        if (signal.aborted) break;
        let lag = -1;
        try {
          lag = await groupLag(admin, c.PROCESSOR_GROUP_ID);
        } catch (e) {
          log.debug({ err: e }, "lag not available yet");
        }
        if (o.untilCaughtUp && lag === 0 && Date.now() - lastActivity >= c.PROCESSOR_IDLE_EXIT_MS) break;
      }
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await Promise.all([dlq.disconnect().catch(() => undefined), admin.disconnect().catch(() => undefined)]);
      await cass.shutdown().catch(() => undefined);
    }
    if (crashed) throw crashed;
    s.seconds = (Date.now() - t0) / 1000;
    log.info(s, "processor stopped");
    return s;
  });
}
