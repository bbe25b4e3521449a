import { createHash } from "node:crypto";

/**
 * The dead-letter envelope of users_created.dlq: the original bytes (base64), the reason, and
 * where the message came from; the same facts in headers for tools that read only headers.
 */
export interface DlqSource {
  topic: string;
  partition: number;
  offset: string;
  timestamp?: string;
  key: Buffer | null;
  value: Buffer | null;
  /** the original headers (outbox_id: a replay must keep the record's write time) */
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
}

export interface DlqEnvelope {
  reason: string;
  source: { topic: string; partition: number; offset: string; timestamp?: string };
  key_base64: string | null;
  /** null when the value was too large to carry: then value_bytes and value_sha256 identify it */
  value_base64: string | null;
  value_bytes?: number;
  value_sha256?: string;
  /** the original headers, each value base64 (a replay sends them again) */
  headers_base64?: Record<string, string>;
  failed_at: string;
}

/**
 * The largest DLQ record we send: well under the broker's 1 MiB message.max.bytes, so a poison
 * message can always be parked (a DLQ send refused for size would stop the partition forever).
 */
export const DLQ_MAX_VALUE_BYTES = 512 * 1024;

function headersBase64(h: NonNullable<DlqSource["headers"]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    const one = Array.isArray(v) ? v[0] : v;
    if (one !== undefined) out[k] = Buffer.from(one).toString("base64");
  }
  return out;
}

export function dlqMessage(src: DlqSource, reason: string, now: Date = new Date(), maxValueBytes = DLQ_MAX_VALUE_BYTES) {
  const tooLarge = src.value !== null && src.value.length * 1.34 + 2048 > maxValueBytes;
  const key = src.key && src.key.length > 1024 ? src.key.subarray(0, 1024) : src.key;
  const envelope: DlqEnvelope = {
    reason: reason.slice(0, 4000),
    source: { topic: src.topic, partition: src.partition, offset: src.offset, ...(src.timestamp ? { timestamp: src.timestamp } : {}) },
    key_base64: key ? key.toString("base64") : null,
    value_base64: src.value && !tooLarge ? src.value.toString("base64") : null,
    ...(tooLarge && src.value ? { value_bytes: src.value.length, value_sha256: createHash("sha256").update(src.value).digest("hex") } : {}),
    ...(src.headers ? { headers_base64: headersBase64(src.headers) } : {}),
    failed_at: now.toISOString(),
  };
  return {
    key,
    value: Buffer.from(JSON.stringify(envelope)),
    headers: {
      error_reason: reason.slice(0, 1000),
      source_topic: src.topic,
      source_partition: String(src.partition),
      source_offset: src.offset,
    },
  };
}
