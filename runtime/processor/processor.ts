/**
 * The processor worker: consumer group on users_created → Cassandra upserts. Offsets are
 * committed only after Cassandra acknowledged the rows (and the DLQ the bad messages) of a chunk.
 *
 * Faults (runtime/lib/errors.ts): a dependency that fails (Cassandra, the registry, Kafka) is
 * retried in place with backoff while the member keeps heartbeating, so it keeps its partitions
 * and its offsets stay where they are; only a bad message is dead-lettered, with its reason.
 * Nothing makes the worker exit but a stop signal or a programming error.
 */
import { Partitioners, type Admin, type Consumer, type Kafka, type KafkaMessage, type Producer } from "kafkajs";
import type { Client } from "cassandra-driver";
import { DLQ_TOPIC, USERS_TOPIC, USERS_VALUE_SUBJECT } from "../contracts/names";
import { userCreatedAvsc } from "../contracts/user-created";
import { avroType, FrameDecoder } from "../lib/avro";
import { createCassandraClient, ensureCassandraSchema } from "../lib/cassandra";
import { chunkByBytes } from "../lib/chunk";
import type { ProcessorConfig } from "../lib/config";
import { Gauge } from "prom-client";
import { classify, describe, ProgrammingError, SchemaLostError } from "../lib/errors";
import { keepPartitions, markFailing, markHealthy, partitionKey } from "../lib/health";
import { CONSUMER_RETRY, createKafka, ensureTopics } from "../lib/kafka";
import { createLogger, type Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { backoffDelay, INFRA_RETRY, untilAvailable } from "../lib/retry";
import { createRegistry } from "../lib/schema-registry";
import { sleep } from "../lib/sleep";
import { startStoppable, type WorkerHandle } from "../lib/stoppable";
import { writeUsers, type UserWrite } from "./cassandra-writer";
import { asRejoin, commitOrRejoin, CoordinatorLost, watchCoordinator } from "./coordinator";
import { decodeUserLoaded } from "./decode";
import { dlqMessage } from "./dlq";
import { writeTimeOf } from "./write-time";

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

const HEALTH = "processor";
/** How often a commit under way checks that the coordinator still answers heartbeats. */
const COMMIT_PROBE_MS = 250;
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

/** DLQ records in sends that stay under the broker's message size, whatever their number. */
async function sendDlq(dlq: Producer, bad: ReturnType<typeof dlqMessage>[]): Promise<void> {
  for (const group of chunkByBytes(bad, (m) => m.value.length + (m.key?.length ?? 0) + 256, 900_000)) {
    await dlq.send({ topic: DLQ_TOPIC, acks: -1, messages: group });
  }
}

export function startProcessor(o: ProcessorOptions): ProcessorHandle {
  const c = o.config;
  const log = o.log ?? createLogger("processor", c.LOG_LEVEL);
  const m = metrics();
  const s: ProcessorSummary = { stored: 0, deadLettered: 0, batches: 0, seconds: 0 };
  let lastActivity = Date.now();

  return startStoppable(o.signal, async (signal): Promise<ProcessorSummary> => {
    const t0 = Date.now();
    const kafka: Kafka = createKafka(c.KAFKA_BROKERS, "processor", log);
    const registry = createRegistry(c.SCHEMA_REGISTRY_URL);
    const decoder = new FrameDecoder(registry, avroType(userCreatedAvsc()), USERS_VALUE_SUBJECT);
    let cass: Client = createCassandraClient(c);
    const admin = kafka.admin();
    const dlq = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    const wait = { signal, log, health: HEALTH };

    // 1 while a partition is stopped on a schema id the registry lost or reassigned (alert on it)
    const lostBefore = m.registry.getSingleMetric("pipeline_schema_lost") as Gauge<"partition"> | undefined;
    const schemaLost = lostBefore ?? new Gauge({
      name: "pipeline_schema_lost",
      help: "1 while the partition is stopped: the registry lost or reassigned the schema id of our relay's records",
      labelNames: ["partition"],
      registers: [m.registry],
    });
    const toKafka = m.stageSeconds.labels("fetch_to_kafka");
    const toStore = m.stageSeconds.labels("kafka_to_store");

    /** Decode, write the good, dead-letter the bad. Throws on an infrastructure failure (nothing committed). */
    async function handleChunk(msgs: KafkaMessage[], partition: number): Promise<{ good: number; bad: ReturnType<typeof dlqMessage>[] }> {
      const good: UserWrite[] = [];
      const sentAt: number[] = [];
      const bad: ReturnType<typeof dlqMessage>[] = [];
      // the chunk's writer schemas once (a registry away throws here: the chunk is retried), then no wait per message
      await decoder.loadFor(msgs.map((msg) => msg.value));
      for (const msg of msgs) {
        const wt = writeTimeOf(msg.headers);
        // a record of our relay (its outbox_id header) whose schema id is lost stops the partition
        const d = wt.ok ? decodeUserLoaded(decoder, msg.value, msg.key, wt.micros !== undefined) : wt;
        if (d.ok && wt.ok) {
          good.push({ user: d.user, writeTime: wt.micros });
          sentAt.push(Number(msg.timestamp));
        }
        else if (!d.ok) {
          const at = { topic: USERS_TOPIC, partition, offset: msg.offset, timestamp: msg.timestamp };
          bad.push(dlqMessage({ ...at, key: msg.key, value: msg.value, headers: msg.headers }, d.reason));
        }
      }
      await Promise.all([writeUsers(cass, good, c.PROCESSOR_CONCURRENCY), bad.length > 0 ? sendDlq(dlq, bad) : undefined]);
      // the latency a reader sees (WRITETIME is an outbox id now, not a time: write-time.ts)
      const now = Date.now();
      for (let i = 0; i < good.length; i++) {
        const fetchedAt = good[i].user.fetched_at;
        m.fetchToStoreSeconds.observe(Math.max(0, now - fetchedAt) / 1000);
        // the same in two parts at the Kafka message's timestamp (the relay's send)
        if (sentAt[i] > 0) {
          toKafka.observe(Math.max(0, sentAt[i] - fetchedAt) / 1000);
          toStore.observe(Math.max(0, now - sentAt[i]) / 1000);
        }
      }
      return { good: good.length, bad };
    }

    try {
      await untilAvailable("kafka: ensure topics", () => ensureTopics(kafka, c.TOPIC_PARTITIONS, c.TOPIC_REPLICATION_FACTOR), wait);
      await untilAvailable(
        "cassandra: connect",
        async () => {
          await cass.connect();
          await ensureCassandraSchema(cass, c.CASSANDRA_REPLICATION_FACTOR, c.CASSANDRA_LOCAL_DC);
        },
        { ...wait, onFailure: async () => {
          // a client whose first connect failed is not reused: start again from a fresh one
          await cass.shutdown().catch(() => undefined);
          cass = createCassandraClient(c);
        } },
      );
      await untilAvailable("kafka: connect", () => Promise.all([admin.connect(), dlq.connect()]), wait);
      // the writer schema of the subject's latest version, fetched now: a registry outage later
      // only matters for schema ids never seen, and those wait (never dead-lettered)
      await untilAvailable("schema registry: latest schema", async () => {
        try {
          await decoder.load(await registry.getLatestSchemaId(USERS_VALUE_SUBJECT));
        } catch (e) {
          if ((e as { status?: number }).status !== 404) throw e; // no subject yet: the relay registers it
        }
      }, wait);
      markHealthy(HEALTH);

      let consumerRuns = 0;
      // four heartbeats a session: a loaded host may delay one or two without losing the member
      const heartbeatMs = Math.min(1_000, Math.floor(c.PROCESSOR_SESSION_TIMEOUT_MS / 4));
      while (!signal.aborted) {
        consumerRuns++;
        const consumer: Consumer = kafka.consumer({
          groupId: c.PROCESSOR_GROUP_ID,
          maxBytes: 16 << 20,
          minBytes: c.PROCESSOR_FETCH_MIN_BYTES,
          // kafkajs heartbeats between fetches: a fetch's wait must end well inside the session (its
          // default, 5 s, outlasts a 3 s session on an idle topic), so at most one heartbeat interval
          maxWaitTimeInMs: Math.min(c.PROCESSOR_FETCH_MAX_WAIT_MS, heartbeatMs),
          sessionTimeout: c.PROCESSOR_SESSION_TIMEOUT_MS,
          heartbeatInterval: heartbeatMs,
          rebalanceTimeout: 30_000,
          retry: { ...CONSUMER_RETRY },
        });
        let resolveCrash: (e: Error) => void = () => undefined;
        const crashed = new Promise<Error>((r) => (resolveCrash = r));
        consumer.on(consumer.events.CRASH, (e) => {
          markFailing(HEALTH, `consumer crashed: ${e.payload.error.message}`);
          if (!e.payload.restart) resolveCrash(e.payload.error); // kafkajs gave up on it: we start a new one
          else log.warn({ err: describe(e.payload.error) }, "consumer crashed; kafkajs restarts it");
        });
        consumer.on(consumer.events.GROUP_JOIN, (e) => {
          markHealthy(HEALTH);
          // a partition moved to another member is its health now; ours that stay, stay failing
          keepPartitions(HEALTH, e.payload.memberAssignment[USERS_TOPIC] ?? []);
        });
        const coordinator = watchCoordinator(consumer, c.PROCESSOR_SESSION_TIMEOUT_MS);
        try {
          await untilAvailable("kafka: consumer start", async () => {
            await consumer.connect();
            await consumer.subscribe({ topic: USERS_TOPIC, fromBeginning: true });
          }, wait);
          await consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: c.PROCESSOR_PARTITIONS_CONCURRENCY,
            eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
              try {
                const end = m.batchSeconds.startTimer({ worker: "processor" });
                const msgs = batch.messages;
                m.recordsIn.inc({ worker: "processor" }, msgs.length);
                for (let i = 0; i < msgs.length; i += c.PROCESSOR_CHUNK_SIZE) {
                  if (!isRunning() || isStale()) break; // the rest is given back: not committed
                  coordinator.check(); // another partition's batch found the coordinator lost: no write, no wait
                  const chunk = msgs.slice(i, i + c.PROCESSOR_CHUNK_SIZE);
                  let r: Awaited<ReturnType<typeof handleChunk>> | undefined;
                  for (let attempt = 0; !r; attempt++) {
                    // a chunk's writes can outlast the session on a loaded host: keep heartbeating meanwhile,
                    // or the group evicts us mid-chunk and every commit after it fails. Errors (a rebalance)
                    // surface at the heartbeat after the chunk, where kafkajs expects them.
                    const beating = setInterval(() => void heartbeat().catch(() => undefined), heartbeatMs);
                    try {
                      r = await handleChunk(chunk, batch.partition);
                    } catch (e) {
                      if (classify(e) !== "infrastructure") throw e;
                      markFailing(partitionKey(HEALTH, batch.partition), describe(e));
                      if (e instanceof SchemaLostError) {
                        schemaLost.set({ partition: String(batch.partition) }, 1);
                        const at = { partition: batch.partition, schemaId: e.schemaId, err: describe(e) };
                        log.error(at, "partition stopped: schema lost");
                      }
                      m.retries.inc({ worker: "processor" });
                      const delay = backoffDelay(attempt, INFRA_RETRY) + 50;
                      log.warn({ partition: batch.partition, err: describe(e), attempt: attempt + 1, delay }, "chunk not stored (dependency down); retrying, offset kept");
                      await sleep(delay, signal);
                      // keep our partitions while we wait: a rebalance or a dead broker ends the batch here
                      // (a lost coordinator: a rejoin under the same member id, coordinator.ts)
                      await heartbeat().catch((e: unknown) => {
                        throw asRejoin(e);
                      });
                      if (!isRunning() || isStale() || signal.aborted) return;
                    } finally {
                      clearInterval(beating);
                    }
                  }
                  for (const b of r.bad) log.warn({ partition: batch.partition, offset: b.headers.source_offset, reason: b.headers.error_reason }, "message dead-lettered");
                  const last = chunk[chunk.length - 1].offset;
                  resolveOffset(last);
                  // a commit to a dead or moved coordinator ends the batch at once with a rejoin under
                  // the same member id (coordinator.ts), not after kafkajs's retries and a crash
                  await commitOrRejoin(
                    // the payload's commit is kafkajs's consumerGroup.commitOffsets itself, without the retrier
                    // of consumer.commitOffsets: a stale coordinator ("Broker N not found", ECONNREFUSED)
                    // answers in one round trip and becomes a rejoin
                    () => commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: nextOffset(last) }] }] }),
                    heartbeat,
                    COMMIT_PROBE_MS,
                    c.PROCESSOR_SESSION_TIMEOUT_MS,
                  );
                  s.stored += r.good;
                  s.deadLettered += r.bad.length;
                  m.recordsOut.inc({ worker: "processor" }, r.good);
                  for (const b of r.bad) m.recordsFailed.inc({ worker: "processor", reason: b.headers.error_reason.split(":")[0] });
                  m.consumerLag.set(
                    { topic: batch.topic, partition: String(batch.partition), group: c.PROCESSOR_GROUP_ID },
                    Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(nextOffset(last)))),
                  );
                  lastActivity = Date.now();
                  // this partition's only: another partition's chunk may still be failing
                  markHealthy(partitionKey(HEALTH, batch.partition));
                  schemaLost.set({ partition: String(batch.partition) }, 0);
                  await heartbeat().catch((e: unknown) => {
                    throw asRejoin(e);
                  });
                }
                s.batches++;
                end();
              } catch (e) {
                if (e instanceof CoordinatorLost) coordinator.lost();
                throw e;
              }
            },
          });
          log.info({ group: c.PROCESSOR_GROUP_ID, run: consumerRuns }, "processor started");
          // watch the lag (metric) until stopped, or until caught up in one-shot mode
          let caughtUp = false;
          const watch = (async () => {
            while (!signal.aborted) {
              await sleep(1000, signal);
              if (signal.aborted) break;
              let lag = -1;
              try {
                lag = await groupLag(admin, c.PROCESSOR_GROUP_ID);
              } catch (e) {
                log.debug({ err: e }, "lag not available now");
              }
              if (o.untilCaughtUp && lag === 0 && Date.now() - lastActivity >= c.PROCESSOR_IDLE_EXIT_MS) {
                caughtUp = true;
                return;
              }
            }
          })();
          const crash = await Promise.race([crashed, watch.then(() => undefined)]);
          if (caughtUp || !crash) break;
          if ((crash as { type?: string }).type === "INVALID_SESSION_TIMEOUT") {
            throw new ProgrammingError(
              `PROCESSOR_SESSION_TIMEOUT_MS=${c.PROCESSOR_SESSION_TIMEOUT_MS} is outside the brokers' group.min/max.session.timeout.ms: raise it (Kafka's own minimum is 6000) or lower the brokers' minimum (ours: 2000)`,
              { cause: crash },
            );
          }
          if (classify(crash) === "programming") throw crash;
          log.warn({ err: describe(crash) }, "consumer stopped for good; starting a new one");
          await sleep(backoffDelay(Math.min(consumerRuns, 4), INFRA_RETRY), signal);
        } finally {
          await consumer.disconnect().catch(() => undefined); // leaves the group: partitions move at once
        }
      }
    } finally {
      keepPartitions(HEALTH, []); // stopped: no partition of ours is retried any more
      await Promise.all([dlq.disconnect().catch(() => undefined), admin.disconnect().catch(() => undefined)]);
      await cass.shutdown().catch(() => undefined);
    }
    s.seconds = (Date.now() - t0) / 1000;
    log.info(s, "processor stopped");
    return s;
  });
}
