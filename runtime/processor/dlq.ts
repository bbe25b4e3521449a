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
}

export interface DlqEnvelope {
  reason: string;
  source: { topic: string; partition: number; offset: string; timestamp?: string };
  key_base64: string | null;
  value_base64: string | null;
  failed_at: string;
}

export function dlqMessage(src: DlqSource, reason: string, now: Date = new Date()) {
  const envelope: DlqEnvelope = {
    reason,
    source: { topic: src.topic, partition: src.partition, offset: src.offset, ...(src.timestamp ? { timestamp: src.timestamp } : {}) },
    key_base64: src.key ? src.key.toString("base64") : null,
    value_base64: src.value ? src.value.toString("base64") : null,
    failed_at: now.toISOString(),
  };
  return {
    key: src.key,
    value: Buffer.from(JSON.stringify(envelope)),
    headers: {
      error_reason: reason.slice(0, 1000),
      source_topic: src.topic,
      source_partition: String(src.partition),
      source_offset: src.offset,
    },
  };
}
