/**
 * The processor's dead letters to users_created.dlq, through a producer this sender alone owns.
 *  - one send at a time, and after ANY failed send the producer is thrown away and the next send
 *    builds a new one (new producer id): kafkajs rolls a failed request's sequence numbers back, so
 *    another send on the same producer would reuse them and the broker would ack it as a duplicate
 *    without writing it (the relay's rule, relay/round-loop.ts);
 *  - every partition a send went to must be acknowledged (lib/produce-acks.ts);
 *  - a chunk's letters keep one id across its attempts (header dlq_letter_id): after a failed
 *    send the next attempt reads the DLQ from the end offsets taken before it and sends only the
 *    letters not found there, and letters acknowledged once are not sent again;
 *  - a send the DLQ refuses for what it holds (too large, ...) re-reads the DLQ topic's
 *    max.message.bytes and is retried with letters built to fit it (DlqRefusedError).
 * Every failure is an InfrastructureError for the caller (retry the chunk, keep the offset), but a
 * programming error (authorization, ...), which is thrown as it is.
 */
import { randomUUID } from "node:crypto";
import { Partitioners, type Admin, type Kafka, type RecordMetadata } from "kafkajs";
import { DLQ_TOPIC } from "../contracts/names";
import { chunkByBytes } from "../lib/chunk";
import { classify, describe, InfrastructureError } from "../lib/errors";
import { topicMessageLimit, type MessageLimit } from "../lib/kafka";
import type { Logger } from "../lib/logger";
import { OwnedProducer, type ProducerLike } from "../lib/owned-producer";
import { assertAcked, BATCH_OVERHEAD, keyPartitioner, recordBytes } from "../lib/produce-acks";
import { TopicLimit } from "../lib/topic-limit";
import { readFrom } from "../lib/topic-reader";
import { dlqMessage, DLQ_MAX_VALUE_BYTES, sourceId, type DlqSource } from "./dlq";

/** A message to dead-letter, and why. */
export interface DeadLetter {
  source: DlqSource;
  reason: string;
}

/** The header that names a letter: the same on every attempt of its chunk. */
export const LETTER_ID_HEADER = "dlq_letter_id";
/** Bytes of one send at most (the broker's default message.max.bytes is 1 MiB). */
const MAX_SEND_BYTES = 900_000;
/** Room in a record for the key (1,024 bytes at most) and the headers (error_reason ≤ 1,000 characters). */
const RECORD_HEADROOM = 5 * 1024;

/** A chunk's dead letters over its attempts: a retried chunk sends only those not yet on the DLQ. */
export class DlqDelivery {
  private readonly ids = new Map<string, string>();
  /** the letters (by source id) the DLQ acknowledged or was found to hold */
  readonly delivered = new Set<string>();
  /** the DLQ's end offsets before a send that failed: its letters may be there */
  uncertainSince?: Map<number, string>;

  letterId(source: string): string {
    let id = this.ids.get(source);
    if (id === undefined) this.ids.set(source, (id = randomUUID()));
    return id;
  }
}

/** What the sender needs of Kafka: the DLQ topic (a seam for unit tests). */
export interface DlqTopic {
  readonly name: string;
  newProducer(): DlqProducer;
  endOffsets(): Promise<Map<number, string>>;
  messageLimit(): Promise<MessageLimit>;
  /** the letter ids on the topic from `since` up to its end now */
  letterIdsSince(since: Map<number, string>): Promise<Set<string>>;
}

export type DlqProducer = ProducerLike;

export function kafkaDlqTopic(kafka: Kafka, admin: Admin, name = DLQ_TOPIC): DlqTopic {
  return {
    name,
    newProducer: () =>
      kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      }),
    endOffsets: async () => new Map((await admin.fetchTopicOffsets(name)).map((p) => [p.partition, p.high])),
    messageLimit: () => topicMessageLimit(admin, name),
    letterIdsSince: async (since) => {
      const ids = new Set<string>();
      await readFrom(kafka, name, since, (_partition, message) => {
        const header = message.headers?.[LETTER_ID_HEADER];
        const one = Array.isArray(header) ? header[0] : header;
        if (one !== undefined) ids.add(one.toString());
      });
      return ids;
    },
  };
}

/** The DLQ refused a letter (too large for it, invalid for its settings): retried, offset kept. */
export class DlqRefusedError extends InfrastructureError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DlqRefusedError";
  }
}

interface LetterRecord {
  source: string;
  partition: number;
  key: Buffer | null;
  value: Buffer;
  headers: Record<string, string>;
}

export class DlqSender {
  private readonly producer: OwnedProducer<DlqProducer>;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly limit: TopicLimit;

  constructor(
    private readonly topic: DlqTopic,
    private readonly log: Logger,
  ) {
    this.limit = new TopicLimit(() => topic.messageLimit(), topic.name, log);
    this.producer = new OwnedProducer(() => topic.newProducer());
  }

  /**
   * Resolves once the DLQ holds every letter (acknowledged now or on an earlier attempt of the same
   * delivery). Sends run one at a time, in the order asked.
   */
  send(letters: DeadLetter[], delivery: DlqDelivery): Promise<void> {
    if (letters.length === 0) return Promise.resolve();
    const sent = this.queue.then(() => this.sendInTurn(letters, delivery));
    this.queue = sent.catch(() => undefined);
    return sent;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.producer.drop();
  }

  private async sendInTurn(letters: DeadLetter[], delivery: DlqDelivery): Promise<void> {
    if (delivery.uncertainSince) await this.findLanded(letters, delivery, delivery.uncertainSince);
    const pending = letters.filter((letter) => !delivery.delivered.has(sourceId(letter.source)));
    if (pending.length === 0) return;
    const limit = await this.limit.get();
    const ends = await this.topic.endOffsets();
    const records = this.build(pending, delivery, limit, ends.size);
    const producer = await this.producer.get();
    for (const group of chunkByBytes(records, recordBytes, Math.min(MAX_SEND_BYTES, limit.bytes - BATCH_OVERHEAD))) {
      delivery.uncertainSince = ends;
      let acked: RecordMetadata[];
      try {
        acked = await producer.send({
          topic: this.topic.name,
          acks: -1,
          messages: group.map(({ partition, key, value, headers }) => ({ partition, key, value, headers })),
        });
      } catch (e) {
        await this.producer.drop();
        throw await this.asRetry(e, group, limit);
      }
      const ok = new Set(acked.filter((answer) => answer.errorCode === 0).map((answer) => answer.partition));
      for (const record of group) if (ok.has(record.partition)) delivery.delivered.add(record.source);
      try {
        assertAcked(
          this.topic.name,
          group.map((record) => record.partition),
          acked,
          "the letters are sent again",
        );
      } catch (e) {
        await this.producer.drop();
        throw e;
      }
    }
    delivery.uncertainSince = undefined;
  }

  /** After a failed send: the letters it may have written are looked for on the DLQ. */
  private async findLanded(letters: DeadLetter[], delivery: DlqDelivery, since: Map<number, string>): Promise<void> {
    const onTopic = await this.topic.letterIdsSince(since);
    let found = 0;
    for (const letter of letters) {
      const source = sourceId(letter.source);
      if (!delivery.delivered.has(source) && onTopic.has(delivery.letterId(source))) {
        delivery.delivered.add(source);
        found++;
      }
    }
    delivery.uncertainSince = undefined;
    if (found > 0) {
      const counts = { found, letters: letters.length };
      this.log.warn(counts, "dead letters of a failed send found on the DLQ: not sent again");
    }
  }

  /** Each letter as a record that fits the topic, on the partition its key hashes to (else its source's). */
  private build(letters: DeadLetter[], delivery: DlqDelivery, limit: MessageLimit, partitions: number) {
    const partitionOf = keyPartitioner(this.topic.name, partitions);
    const maxEnvelope = Math.min(DLQ_MAX_VALUE_BYTES, limit.bytes - BATCH_OVERHEAD - RECORD_HEADROOM);
    const now = new Date();
    return letters.map((letter) => {
      const source = sourceId(letter.source);
      const message = dlqMessage(letter.source, letter.reason, now, maxEnvelope);
      const record: LetterRecord = {
        source,
        partition: message.key ? partitionOf(message.key) : letter.source.partition % partitions,
        key: message.key,
        value: message.value,
        headers: { ...message.headers, [LETTER_ID_HEADER]: delivery.letterId(source) },
      };
      const bytes = BATCH_OVERHEAD + recordBytes(record);
      if (bytes > limit.bytes) {
        this.limit.stale(); // the next attempt reads the limit again: raised by then, the letter goes
        const takes = `${this.topic.name} takes ${limit.source}`;
        throw new DlqRefusedError(`dead letter of ${source} needs ${bytes} bytes, ${takes}: raise it`);
      }
      return record;
    });
  }

  private async asRetry(e: unknown, group: LetterRecord[], limit: MessageLimit): Promise<unknown> {
    const fault = classify(e);
    if (fault !== "content") return e; // infrastructure: retried as it is; programming: a crash
    this.limit.stale(); // what the DLQ refused for its size or settings: read its limit again
    await this.limit.get().catch(() => undefined);
    const bytes = group.reduce((n, record) => n + recordBytes(record), BATCH_OVERHEAD);
    return new DlqRefusedError(
      `${this.topic.name} refused ${group.length} dead letter(s): ${describe(e)} ` +
        `(${bytes} bytes, the topic took ${limit.source}); retried`,
      { cause: e },
    );
  }
}
