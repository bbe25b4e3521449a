/**
 * The DLQ replay's sends to users_created, through a producer this sender alone owns (the relay's
 * and the DLQ sender's rules):
 *  - every partition a send went to must be acknowledged (lib/produce-acks.ts): kafkajs can resolve
 *    a send that skipped a partition whose leader moved, and the replay would then commit its DLQ
 *    offsets past letters that never went back;
 *  - after ANY failed send the producer is thrown away and the next attempt builds a new one (new
 *    producer id): a failed request's sequence numbers are rolled back, and reused they would be
 *    acked as duplicates the broker never wrote;
 *  - an infrastructure failure is retried (RETRIES attempts, growing pauses); a programming one
 *    (not authorized, ...) is thrown at once. When the attempts are spent the replay stops with the
 *    batch's DLQ offsets not committed: the same command again takes it from there.
 * A retried send may put a record on users_created twice: upserts at its outbox id's write time,
 * so harmless.
 */
import { Partitioners, type IHeaders, type Kafka } from "kafkajs";
import { classify, describe, InfrastructureError } from "../lib/errors";
import type { Logger } from "../lib/logger";
import { OwnedProducer, type ProducerLike } from "../lib/owned-producer";
import { assertAcked, keyPartitioner } from "../lib/produce-acks";
import { sleep } from "../lib/sleep";

export type ReplayProducer = ProducerLike;

/** A record to re-publish. */
export interface Replayable {
  key: Buffer | null;
  value: Buffer;
  headers: IHeaders;
}

export interface ReplaySenderOptions {
  topic: string;
  /** The topic's partition count: each record's partition is known, and checked in the ack. */
  partitions: number;
  newProducer: () => ReplayProducer;
  log: Logger;
  /** Attempts of one send (5), and the first pause between two (500 ms, doubling). */
  attempts?: number;
  pauseMs?: number;
}

export function kafkaReplayProducer(kafka: Kafka): () => ReplayProducer {
  return () =>
    kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
}

export class ReplaySender {
  private readonly producer: OwnedProducer<ReplayProducer>;
  private readonly partitionOf: (key: Buffer) => number;
  private keyless = 0;

  constructor(private readonly o: ReplaySenderOptions) {
    this.partitionOf = keyPartitioner(o.topic, o.partitions);
    this.producer = new OwnedProducer(o.newProducer);
  }

  /** Sends the records, every partition acknowledged, or throws. */
  async send(records: Replayable[]): Promise<void> {
    if (records.length === 0) return;
    // a keyless record gets its partition here (round robin), so that its ack can be checked too
    const messages = records.map((r) => ({
      ...r,
      partition: r.key === null ? this.keyless++ % this.o.partitions : this.partitionOf(r.key),
    }));
    const attempts = this.o.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        const producer = await this.producer.get();
        const acked = await producer.send({ topic: this.o.topic, acks: -1, messages });
        assertAcked(
          this.o.topic,
          messages.map((m) => m.partition),
          acked,
          "the batch is sent again",
        );
        return;
      } catch (e) {
        await this.producer.drop();
        if (classify(e) === "programming") throw e;
        if (attempt >= attempts) {
          throw new InfrastructureError(
            `${this.o.topic} did not take ${records.length} replayed record(s) after ${attempts} attempts: ${describe(e)}; ` +
              "their DLQ offsets are not committed: run the same replay again once Kafka answers",
            { cause: e },
          );
        }
        const pause = (this.o.pauseMs ?? 500) * 2 ** (attempt - 1);
        this.o.log.warn(
          { attempt, pauseMs: pause, err: describe(e) },
          "replayed records not acknowledged: sending again with a new producer",
        );
        await sleep(pause);
      }
    }
  }

  async close(): Promise<void> {
    await this.producer.drop();
  }
}
