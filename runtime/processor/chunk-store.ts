/**
 * One chunk of a partition's batch: decoded, the good written to Cassandra, the bad dead-lettered.
 * Throws when a dependency fails (nothing is committed then: the chunk is retried, chunk-retry.ts).
 */
import type { Client } from "cassandra-driver";
import type { KafkaMessage } from "kafkajs";
import type { FrameDecoder } from "../lib/avro";
import { classify } from "../lib/errors";
import { metrics } from "../lib/metrics";
import { writeUsers, type UserWrite } from "./cassandra-writer";
import { decodeUserLoaded } from "./decode";
import type { DeadLetter, DlqDelivery, DlqSender } from "./dlq-sender";
import { writeTimeOf } from "./write-time";

export interface ChunkOutcome {
  stored: number;
  deadLetters: DeadLetter[];
}

export interface ChunkStoreDeps {
  decoder: FrameDecoder;
  cassandra: Client;
  dlq: DlqSender;
  /** the topic the chunk was read from (users_created) */
  topic: string;
  concurrency: number;
}

export class ChunkStore {
  private readonly toKafka = metrics().stageSeconds.labels("fetch_to_kafka");
  private readonly toStore = metrics().stageSeconds.labels("kafka_to_store");

  constructor(private readonly deps: ChunkStoreDeps) {}

  /** `delivery` is the chunk's across its attempts: letters the DLQ already holds are not sent again. */
  async store(messages: KafkaMessage[], partition: number, delivery: DlqDelivery): Promise<ChunkOutcome> {
    const { decoder } = this.deps;
    const good: UserWrite[] = [];
    const sentAt: number[] = [];
    const deadLetters: DeadLetter[] = [];
    // the chunk's writer schemas once (a registry away throws here: the chunk is retried), then no wait per message
    await decoder.loadFor(messages.map((message) => message.value));
    for (const message of messages) {
      const writeTime = writeTimeOf(message.headers);
      // a record of our relay (its outbox_id header) whose schema id is lost stops the partition
      const ours = writeTime.ok && writeTime.micros !== undefined;
      const decoded = writeTime.ok ? decodeUserLoaded(decoder, message.value, message.key, ours) : writeTime;
      if (decoded.ok && writeTime.ok) {
        good.push({ user: decoded.user, writeTime: writeTime.micros });
        sentAt.push(Number(message.timestamp));
      } else if (!decoded.ok) {
        const at = { topic: this.deps.topic, partition, offset: message.offset, timestamp: message.timestamp };
        const source = { ...at, key: message.key, value: message.value, headers: message.headers };
        deadLetters.push({ source, reason: decoded.reason });
      }
    }
    // both settled before the chunk's attempt ends: a retry never overlaps a send still under way
    const results = await Promise.allSettled([
      writeUsers(this.deps.cassandra, good, this.deps.concurrency),
      this.deps.dlq.send(deadLetters, delivery),
    ]);
    const failures = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    if (failures.length > 0) throw failures.find((e) => classify(e) === "programming") ?? failures[0];
    this.observeLatency(good, sentAt);
    return { stored: good.length, deadLetters };
  }

  /** The latency a reader sees (WRITETIME is an outbox id now, not a time: write-time.ts). */
  private observeLatency(good: UserWrite[], sentAt: number[]): void {
    const now = Date.now();
    for (let i = 0; i < good.length; i++) {
      const fetchedAt = good[i].user.fetched_at;
      metrics().fetchToStoreSeconds.observe(Math.max(0, now - fetchedAt) / 1000);
      // the same in two parts at the Kafka message's timestamp (the relay's send)
      if (sentAt[i] > 0) {
        this.toKafka.observe(Math.max(0, sentAt[i] - fetchedAt) / 1000);
        this.toStore.observe(Math.max(0, now - sentAt[i]) / 1000);
      }
    }
  }
}
