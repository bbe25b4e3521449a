/**
 * A Kafka producer that one sender owns alone: built and connected on first use, thrown away after
 * any failed send, so that the next send gets a new producer id. kafkajs rolls a failed request's
 * sequence numbers back; sent again on the same producer, the broker would acknowledge as a
 * duplicate a batch it never wrote. The relay's round loops, the DLQ sender and the DLQ replay each
 * hold one.
 */
import type { Producer } from "kafkajs";

export type ProducerLike = Pick<Producer, "connect" | "disconnect" | "send">;

export class OwnedProducer<P extends ProducerLike = Producer> {
  private producer?: P;

  constructor(private readonly make: () => P) {}

  /** Whether a producer is up now (none after `drop`, until the next `get`). */
  get held(): boolean {
    return this.producer !== undefined;
  }

  /** The producer, connected; a new one when there is none. */
  async get(): Promise<P> {
    if (this.producer) return this.producer;
    const producer = this.make();
    try {
      await producer.connect();
    } catch (e) {
      await producer.disconnect().catch(() => undefined);
      throw e;
    }
    this.producer = producer;
    return producer;
  }

  /** Disconnects and forgets the producer: the next `get` builds a new one. */
  async drop(): Promise<void> {
    const old = this.producer;
    this.producer = undefined;
    await old?.disconnect().catch(() => undefined);
  }
}
