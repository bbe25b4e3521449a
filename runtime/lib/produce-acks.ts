/**
 * What a kafkajs send must be checked for before its records count as written, and how large a
 * record is in the batch the broker checks against max.message.bytes.
 */
import { Partitioners } from "kafkajs";
import { InfrastructureError } from "./errors";

/** What a record's size depends on. */
export interface SizedRecord {
  key: string | Buffer | null;
  value: Buffer;
  headers: Record<string, string>;
}

/** A partition's answer to a send. */
export interface PartitionAck {
  partition: number;
  errorCode: number;
}

/** A record batch's fixed header: the broker compares the whole batch with max.message.bytes. */
export const BATCH_OVERHEAD = 61;

/** An upper bound of one record's bytes in a batch (varints at their largest). */
export function recordBytes(m: SizedRecord): number {
  let n = 31 + (m.key === null ? 0 : Buffer.byteLength(m.key)) + m.value.length;
  for (const [k, v] of Object.entries(m.headers)) n += 10 + Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

/** The partition the producer's DefaultPartitioner gives each key (murmur2, as Kafka's Java client). */
export function keyPartitioner(topic: string, partitions: number): (key: string | Buffer) => number {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_x, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  return (key) => partitioner({ topic, partitionMetadata, message: { key, value: null } });
}

/** The partitions of `expected` that the send's answer does not acknowledge without an error. */
export function unackedPartitions(expected: Iterable<number>, acked: PartitionAck[]): number[] {
  const ok = new Set(acked.filter((r) => r.errorCode === 0).map((r) => r.partition));
  return [...new Set(expected)].filter((p) => !ok.has(p)).sort((a, b) => a - b);
}

/**
 * kafkajs 2.2.4 can resolve a send without having written part of it: when a partition's leader
 * moves during the send (a broker killed, a preferred-leader election), its retry regroups the
 * messages by the new leaders and skips every broker that already answered, so a partition whose
 * new leader had answered for other partitions is never sent (producer/sendMessages.js,
 * `brokersWithoutResponse`). The kill suite lost 12 records to it (docs/replication.md). So: every
 * partition the messages went to must be in the answer without an error, or the send failed.
 */
export function assertAcked(topic: string, expected: Iterable<number>, acked: PartitionAck[], then: string): void {
  const missing = unackedPartitions(expected, acked);
  if (missing.length > 0) {
    const partitions = `partition(s) ${missing.join(", ")} of ${topic}`;
    const why = `kafka: the send resolved without an ack for ${partitions} (a leader moved mid-send)`;
    throw new InfrastructureError(`${why}; ${then}`);
  }
}
