/**
 * The relay worker: unpublished outbox rows → Kafka users_created (key = user id, value = Avro in
 * the Confluent wire format), marked published in the claiming transaction after Kafka acknowledges.
 *
 * Faults (runtime/lib/errors.ts):
 *  - a dependency that fails (PostgreSQL, Kafka) ends the round: the rows go back to the outbox,
 *    the loop is marked unhealthy and retries with backoff, for as long as it takes;
 *  - after ANY failed send the loop's producer is thrown away and a new one (new producer id) is
 *    built: after bounded retries kafkajs rolls the partition's sequence numbers back, and the next
 *    send could put other rows on the same numbers, which the broker acks as duplicates without
 *    writing them. Each loop has its own producer, so one loop's failure never touches another's;
 *  - a row that cannot be published (does not fit the schema, larger than the topic's
 *    max.message.bytes as read from Kafka, or refused by Kafka when sent alone: MESSAGE_TOO_LARGE
 *    and the like) is parked with its reason; the rest of the round goes on;
 *  - a send that may have landed before its commit failed is reconciled from the topic before its
 *    rows are claimed again (reconcile.ts): each row is on the topic once.
 * Sends are bounded by bytes (RELAY_MAX_SEND_BYTES and the topic's limit), so a round of many rows
 * on one partition never makes a record batch larger than the broker accepts.
 */
import { CompressionTypes, Partitioners, type Admin, type Kafka, type Message, type Producer } from "kafkajs";
import type { Pool } from "pg";
import { USERS_TOPIC } from "../contracts/names";
import { userCreatedAvsc } from "../contracts/user-created";
import { avroType, encodeFrame, type AvroType } from "../lib/avro";
import { chunkByBytes } from "../lib/chunk";
import type { RelayConfig } from "../lib/config";
import { classify, ContentError, describe } from "../lib/errors";
import { markFailing, markHealthy } from "../lib/health";
import { createKafka, ensureTopics, topicMessageLimit, type MessageLimit } from "../lib/kafka";
import { createLogger, type Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { createPgPool } from "../lib/pg";
import { assertAcked, BATCH_OVERHEAD, keyPartitioner, recordBytes } from "../lib/produce-acks";
import { migrate } from "../lib/pg-schema";
import { backoffDelay, INFRA_RETRY, untilAvailable } from "../lib/retry";
import { createRegistry, registerUserCreated } from "../lib/schema-registry";
import { sleep } from "../lib/sleep";
import { startStoppable, type WorkerHandle } from "../lib/stoppable";
import { claimRows, lockPendingBuckets, markParked, markPublished, pendingCount, type OutboxRow } from "./claim";
import { clearInflight, reconcileOrphans, recordInflight } from "./reconcile";

export interface RelaySummary {
  published: number;
  parked: number;
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
  /** The topic published to (users_created); a test's own topic can have its own limits. */
  topic?: string;
}

/** `done` also settles when an untilDrained relay has drained the outbox. */
export type RelayHandle = WorkerHandle<RelaySummary>;

/** Kafka's default message.max.bytes: only for callers that have not read the topic's limit. */
export const DEFAULT_MESSAGE_LIMIT: MessageLimit = {
  bytes: 1_048_588,
  source: "Kafka's default message.max.bytes 1048588",
};

export interface Encoded {
  messages: (Message & { key: string; value: Buffer; headers: Record<string, string>; id: string })[];
  parked: { id: string; reason: string }[];
}

/**
 * Encode rows; a row that cannot be encoded, is larger than the topic takes (`limit`, read from
 * Kafka), or that Kafka already refused (`refused`: id → reason) is parked with why.
 */
export function encodeRows(
  rows: OutboxRow[],
  schemaId: number,
  type: AvroType,
  limit: MessageLimit = DEFAULT_MESSAGE_LIMIT,
  refused?: ReadonlyMap<string, string>,
): Encoded {
  const out: Encoded = { messages: [], parked: [] };
  for (const r of rows) {
    try {
      const why = refused?.get(r.id);
      if (why !== undefined) throw new ContentError(why);
      const value = encodeFrame(schemaId, type, r.payload);
      const m = { id: r.id, key: r.user_id, value, headers: { outbox_id: r.id } };
      const size = BATCH_OVERHEAD + recordBytes(m);
      if (size > limit.bytes) {
        throw new ContentError(`too large: ${size} bytes as a Kafka record batch, the topic takes ${limit.source}`);
      }
      out.messages.push(m);
    } catch (e) {
      if (!(e instanceof ContentError)) throw e;
      out.parked.push({ id: r.id, reason: e.reason });
    }
  }
  return out;
}

/** Kafka refused a send for what it holds (too large, invalid): its rows, and why. */
export class SendRefused extends ContentError {
  constructor(readonly ids: string[], reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = "SendRefused";
  }
}

export interface RoundContext {
  pool: Pool;
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  schemaId: number;
  type: AvroType;
  config: RelayConfig;
  log: Logger;
  /** set when a send was attempted: the producer must be rebuilt if the round fails */
  sent?: boolean;
  /** users_created unless a test says otherwise */
  topic?: string;
  /** the topic's max.message.bytes as last read from Kafka */
  limit?: MessageLimit;
  /** rows Kafka refused when sent alone: parked with that reason when claimed again */
  refused?: ReadonlyMap<string, string>;
  /** rows of a refused send: sent one per send until each is published or refused alone */
  suspects?: ReadonlySet<string>;
}

/** Every partition the keys hash to must be acknowledged, or the round fails (lib/produce-acks.ts). */
export function assertEveryPartitionAcked(keys: string[], partitions: number, acked: { partition: number; errorCode: number }[]): void {
  const partitionOf = keyPartitioner(USERS_TOPIC, partitions);
  assertAcked(USERS_TOPIC, keys.map(partitionOf), acked, "the round is retried");
}

/** A round slower than this is logged (warn) with the time of each of its steps. */
export const SLOW_ROUND_MS = 1000;

export interface RoundResult {
  published: number;
  parked: number;
  /** the ids this round published or parked, when the loop has suspects or refused rows to forget */
  settled?: string[];
}

/** One round: reconcile, claim, encode, publish, mark. Returns rows published and parked (0, 0: nothing claimable). */
export async function relayRound(x: RoundContext): Promise<RoundResult> {
  const c = x.config;
  const topic = x.topic ?? USERS_TOPIC;
  // the time of each step, logged when the round is slow: where a stall was (PostgreSQL's claim,
  // Kafka's send, the commit), which the round's histogram alone cannot say
  const t0 = performance.now();
  const steps: Record<string, number> = {};
  let tPrev = t0;
  const step = (name: string) => {
    const t = performance.now();
    steps[name] = Math.round(t - tPrev);
    tPrev = t;
  };
  let claimed = 0;
  const client = await x.pool.connect();
  step("connect");
  try {
    await client.query("BEGIN");
    await reconcileOrphans(client, x.kafka, x.log);
    step("reconcile");
    const buckets = await lockPendingBuckets(client, c.RELAY_MAX_BUCKETS);
    step("lockBuckets");
    const rows = await claimRows(client, buckets, c.RELAY_BATCH_SIZE);
    step("claim");
    claimed = rows.length;
    if (rows.length === 0) {
      await client.query("COMMIT");
      step("commit");
      return { published: 0, parked: 0 };
    }
    const limit = x.limit ?? DEFAULT_MESSAGE_LIMIT;
    const { messages, parked } = encodeRows(rows, x.schemaId, x.type, limit, x.refused);
    step("encode");
    for (const p of parked) x.log.warn({ outboxId: p.id, reason: p.reason }, "outbox row parked");
    if (messages.length > 0) {
      const inflight = await recordInflight(client, x.pool, x.admin, topic, buckets);
      step("recordInflight");
      x.sent = true;
      // a suspect goes alone, so that a refusal names its row; the others in sends under the limit
      const suspects = messages.filter((m) => x.suspects?.has(m.id));
      const others = messages.filter((m) => !x.suspects?.has(m.id));
      const maxSend = Math.min(c.RELAY_MAX_SEND_BYTES, limit.bytes - BATCH_OVERHEAD);
      for (const group of [...suspects.map((m) => [m]), ...chunkByBytes(others, recordBytes, maxSend)]) {
        let acked: Awaited<ReturnType<Producer["send"]>>;
        try {
          acked = await x.producer.send({
            topic,
            acks: -1,
            compression: CompressionTypes.None,
            messages: group.map(({ key, value, headers }) => ({ key, value, headers })),
          });
        } catch (e) {
          if (classify(e) !== "content") throw e;
          const ids = group.map((m) => m.id);
          const bytes = group.reduce((n, m) => n + recordBytes(m), BATCH_OVERHEAD);
          const why = `kafka refused the send: ${describe(e)} (${bytes} bytes, the topic takes ${limit.source})`;
          throw new SendRefused(ids, why, { cause: e });
        }
        assertEveryPartitionAcked(group.map((m) => m.key), inflight.partitions, acked);
      }
      step("send");
      await clearInflight(client, inflight);
    }
    await markPublished(client, messages.map((m) => m.id));
    await markParked(client, parked);
    step("mark");
    await client.query("COMMIT");
    step("commit");
    const watched = (x.suspects?.size ?? 0) + (x.refused?.size ?? 0) > 0;
    const settled = watched ? [...messages.map((m) => m.id), ...parked.map((p) => p.id)] : undefined;
    return { published: messages.length, parked: parked.length, settled };
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    client.release();
    const ms = Math.round(performance.now() - t0);
    if (ms >= SLOW_ROUND_MS) x.log.warn({ ms, claimed, steps }, "slow relay round");
  }
}

export function startRelay(o: RelayOptions): RelayHandle {
  const c = o.config;
  const log = o.log ?? createLogger("relay", c.LOG_LEVEL);
  const m = metrics();

  return startStoppable(o.signal, async (signal): Promise<RelaySummary> => {
    const t0 = Date.now();
    const s: RelaySummary = { published: 0, parked: 0, rounds: 0, failedRounds: 0, seconds: 0 };
    const pool = o.pool ?? createPgPool(c, 2 * c.RELAY_CONCURRENCY + 1, log);
    const kafka = createKafka(c.KAFKA_BROKERS, "relay", log);
    const admin = kafka.admin();
    // Retries are bounded on purpose (kafkajs warns about it): a send that keeps failing must end
    // the round, roll the claim back and free the buckets, rather than hold them forever.
    const newProducer = () => kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    const producers: Producer[] = [];
    const wait = { signal, log, health: "relay" };
    try {
      await untilAvailable("postgres: migrate", () => migrate(pool), wait);
      await untilAvailable("kafka: ensure topics", () => ensureTopics(kafka, c.TOPIC_PARTITIONS, c.TOPIC_REPLICATION_FACTOR), wait);
      await untilAvailable("kafka: admin", () => admin.connect(), wait);
      // the schema id is learnt once: encoding is local, a registry outage later does not matter
      const registry = createRegistry(c.SCHEMA_REGISTRY_URL);
      let schemaId = await untilAvailable("schema registry: register", () => registerUserCreated(registry), wait);
      const type = avroType(userCreatedAvsc());
      // the topic's limit, read again every minute and after Kafka refused a send as too large
      const topic = o.topic ?? USERS_TOPIC;
      const readLimit = () => topicMessageLimit(admin, topic);
      let limit = await untilAvailable("kafka: the topic's max.message.bytes", readLimit, wait);
      let limitAt = Date.now();
      const refreshLimit = async (): Promise<void> => {
        limitAt = Date.now();
        try {
          const now = await readLimit();
          if (now.bytes !== limit.bytes) log.warn({ was: limit.source, now: now.source }, "topic size limit changed");
          limit = now;
        } catch (e) {
          log.debug({ err: describe(e) }, "the topic's message size limit not read now; keeping the last");
        }
      };
      // rows of a refused send, sent alone afterwards; a row refused alone, parked when claimed again
      const suspects = new Set<string>();
      const refused = new Map<string, string>();
      markHealthy("relay");
      log.info({ schemaId, concurrency: c.RELAY_CONCURRENCY, limit: limit.source }, "relay started");
      // RELAY_CONCURRENCY round loops, each with its own PostgreSQL connection, bucket locks and
      // producer: while one waits for Kafka, another claims, encodes or commits. Per-key order
      // holds: a loop's bucket locks live until its commit, after the Kafka ack.
      let pendingAt = 0;
      let counting = false;
      /** the outbox's pending count (a gauge), between rounds: logged when it holds the loop up */
      const timedPendingCount = async (): Promise<number> => {
        const t = performance.now();
        const n = await pendingCount(pool);
        const ms = Math.round(performance.now() - t);
        if (ms >= SLOW_ROUND_MS) log.warn({ ms, pending: n }, "slow outbox pending count");
        return n;
      };
      const loop = async (i: number): Promise<void> => {
        const health = `relay[${i}]`;
        let producer: Producer | undefined;
        let failures = 0;
        while (!signal.aborted) {
          // the gauge, at most once a second and never awaited here: a count over a large outbox
          // whose statistics are stale is a sequential scan (0.4-0.5 s over 400,000 published
          // rows, measured), which would hold every round behind it
          if (Date.now() - pendingAt >= 1000 && !counting) {
            pendingAt = Date.now();
            counting = true;
            void timedPendingCount()
              .then((n) => m.outboxPending.set(n), () => m.outboxPending.set(-1))
              .finally(() => (counting = false));
          }
          const end = m.batchSeconds.startTimer({ worker: "relay" });
          const ctx: Partial<RoundContext> = {};
          let r: RoundResult;
          try {
            if (Date.now() - limitAt >= 60_000) await refreshLimit();
            if (!producer) {
              producer = newProducer();
              producers[i] = producer;
              await producer.connect();
            }
            const round: RoundContext = {
              pool, kafka, admin, producer, schemaId, type, config: c, log, topic, limit, refused, suspects,
            };
            Object.assign(ctx, round);
            r = await relayRound(ctx as RoundContext);
            if (failures > 0) log.info({ loop: i, failures }, "relay round succeeded again");
            failures = 0;
            markHealthy(health);
          } catch (e) {
            if (classify(e) === "programming") throw e;
            if (e instanceof SendRefused) {
              // what Kafka will never take: the limit read again (the pre-check parks what is over it),
              // and the send's rows tried alone, so that the one refused alone is parked with why
              await refreshLimit();
              if (e.ids.length === 1) refused.set(e.ids[0], e.reason);
              else for (const id of e.ids) suspects.add(id);
              // the round was rolled back: its sent part is reconciled, its rows claimed again
              failures = 0;
            }
            s.failedRounds++;
            markFailing(health, describe(e));
            m.retries.inc({ worker: "relay" });
            if (ctx.sent || !ctx.producer) {
              // a new producer id: the old one's sequence numbers are no longer to be trusted
              const old = producer;
              producer = undefined;
              await old?.disconnect().catch(() => undefined);
            }
            const delay = backoffDelay(failures++, INFRA_RETRY) + 50;
            log.warn({ loop: i, err: describe(e), delay, producerRebuilt: !producer }, "relay round failed; rows given back, retrying");
            await sleep(delay, signal);
            continue;
          }
          s.rounds++;
          // settled rows (published or parked) leave the sets; a bound keeps the sets of rows that
          // another relay settled from growing without end
          for (const id of r.settled ?? []) {
            suspects.delete(id);
            refused.delete(id);
          }
          if (suspects.size + refused.size > 100_000) {
            suspects.clear();
            refused.clear();
          }
          s.parked += r.parked;
          if (r.parked > 0) m.recordsFailed.inc({ worker: "relay", reason: "parked" }, r.parked);
          if (r.published + r.parked > 0) {
            end();
            s.published += r.published;
            m.recordsIn.inc({ worker: "relay" }, r.published + r.parked);
            m.recordsOut.inc({ worker: "relay" }, r.published);
            log.debug({ published: r.published, parked: r.parked }, "round done");
            continue;
          }
          // an empty round: the background count keeps the gauge; only a relay that stops when the
          // outbox is drained needs a count of its own, now
          if (o.untilDrained) {
            let pending = -1;
            try {
              pending = await timedPendingCount();
              m.outboxPending.set(pending);
            } catch (e) {
              if (classify(e) === "programming") throw e;
            }
            if (pending === 0) break;
          }
          await sleep(c.RELAY_POLL_MS, signal);
        }
        await producer?.disconnect().catch(() => undefined);
      };
      // A registry that lost its data (restarted empty) no longer knows our id: register again
      // every 30 s (idempotent) and use the id it answers, so new messages stay decodable. A
      // registry that is down changes nothing here: encoding is local.
      const loopsDone = new AbortController();
      const watchSignal = AbortSignal.any([signal, loopsDone.signal]);
      const watchSchema = async (): Promise<void> => {
        while (!watchSignal.aborted) {
          await sleep(30_000, watchSignal);
          if (watchSignal.aborted) break;
          try {
            const id = await registerUserCreated(registry);
            if (id !== schemaId) {
              log.warn({ was: schemaId, now: id }, "the registry gave our schema another id (it lost its data?): using it");
              schemaId = id;
            }
          } catch (e) {
            log.debug({ err: describe(e) }, "schema registration not checked now");
          }
        }
      };
      const watching = watchSchema();
      try {
        await Promise.all(Array.from({ length: c.RELAY_CONCURRENCY }, (_x, i) => loop(i)));
      } finally {
        loopsDone.abort();
        await watching;
      }
    } finally {
      await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
      await admin.disconnect().catch(() => undefined);
      if (!o.pool) await pool.end().catch(() => undefined);
    }
    s.seconds = (Date.now() - t0) / 1000;
    log.info(s, "relay stopped");
    return s;
  });
}
