/** Outbox rows as Kafka records (Avro in the Confluent wire format), or parked with why. */
import type { Message } from "kafkajs";
import { encodeFrame, type AvroType } from "../lib/avro";
import { ContentError } from "../lib/errors";
import type { MessageLimit } from "../lib/kafka";
import { BATCH_OVERHEAD, recordBytes } from "../lib/produce-acks";
import type { OutboxRow } from "./claim";

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
