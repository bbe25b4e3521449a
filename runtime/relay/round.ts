/**
 * One relay round in one PostgreSQL transaction: reconcile orphaned sends, lock buckets, claim,
 * encode, record the send in flight, publish, mark published or parked, commit.
 */
import { CompressionTypes, type Admin, type Kafka, type Producer } from "kafkajs";
import type { Pool } from "pg";
import { USERS_TOPIC } from "../contracts/names";
import type { AvroType } from "../lib/avro";
import { chunkByBytes } from "../lib/chunk";
import type { RelayConfig } from "../lib/config";
import { classify, ContentError, describe } from "../lib/errors";
import type { MessageLimit } from "../lib/kafka";
import type { Logger } from "../lib/logger";
import { assertAcked, BATCH_OVERHEAD, keyPartitioner, recordBytes, type PartitionAck } from "../lib/produce-acks";
import { claimRows, lockPendingBuckets, markParked, markPublished } from "./claim";
import { DEFAULT_MESSAGE_LIMIT, encodeRows } from "./encode";
import { clearInflight, reconcileOrphans, recordInflight } from "./reconcile";

/** Kafka refused a send for what it holds (too large, invalid): its rows, and why. */
export class SendRefused extends ContentError {
  constructor(
    readonly ids: string[],
    reason: string,
    options?: { cause?: unknown },
  ) {
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
export function assertEveryPartitionAcked(keys: string[], partitions: number, acked: PartitionAck[]): void {
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
export async function relayRound(round: RoundContext): Promise<RoundResult> {
  const config = round.config;
  const topic = round.topic ?? USERS_TOPIC;
  // the time of each step, logged when the round is slow: where a stall was (PostgreSQL's claim,
  // Kafka's send, the commit), which the round's histogram alone cannot say
  const startedAt = performance.now();
  const steps: Record<string, number> = {};
  let stepStart = startedAt;
  const step = (name: string) => {
    const now = performance.now();
    steps[name] = Math.round(now - stepStart);
    stepStart = now;
  };
  let claimed = 0;
  const client = await round.pool.connect();
  step("connect");
  try {
    await client.query("BEGIN");
    await reconcileOrphans(client, round.kafka, round.log);
    step("reconcile");
    const buckets = await lockPendingBuckets(client, config.RELAY_MAX_BUCKETS);
    step("lockBuckets");
    const rows = await claimRows(client, buckets, config.RELAY_BATCH_SIZE);
    step("claim");
    claimed = rows.length;
    if (rows.length === 0) {
      await client.query("COMMIT");
      step("commit");
      return { published: 0, parked: 0 };
    }
    const limit = round.limit ?? DEFAULT_MESSAGE_LIMIT;
    const { messages, parked } = encodeRows(rows, round.schemaId, round.type, limit, round.refused);
    step("encode");
    for (const row of parked) round.log.warn({ outboxId: row.id, reason: row.reason }, "outbox row parked");
    if (messages.length > 0) {
      const inflight = await recordInflight(client, round.pool, round.admin, topic, buckets);
      step("recordInflight");
      round.sent = true;
      // a suspect goes alone, so that a refusal names its row; the others in sends under the limit
      const suspects = messages.filter((m) => round.suspects?.has(m.id));
      const others = messages.filter((m) => !round.suspects?.has(m.id));
      const maxSend = Math.min(config.RELAY_MAX_SEND_BYTES, limit.bytes - BATCH_OVERHEAD);
      for (const group of [...suspects.map((m) => [m]), ...chunkByBytes(others, recordBytes, maxSend)]) {
        let acked: Awaited<ReturnType<Producer["send"]>>;
        try {
          acked = await round.producer.send({
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
        assertEveryPartitionAcked(
          group.map((m) => m.key),
          inflight.partitions,
          acked,
        );
      }
      step("send");
      await clearInflight(client, inflight);
    }
    await markPublished(
      client,
      messages.map((m) => m.id),
    );
    await markParked(client, parked);
    step("mark");
    await client.query("COMMIT");
    step("commit");
    const watched = (round.suspects?.size ?? 0) + (round.refused?.size ?? 0) > 0;
    const settled = watched ? [...messages.map((m) => m.id), ...parked.map((row) => row.id)] : undefined;
    return { published: messages.length, parked: parked.length, settled };
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    client.release();
    const ms = Math.round(performance.now() - startedAt);
    if (ms >= SLOW_ROUND_MS) round.log.warn({ ms, claimed, steps }, "slow relay round");
  }
}
