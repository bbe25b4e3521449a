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
  /** set instead of headers_base64 when the headers were too large to carry with the rest */
  headers_bytes?: number;
  failed_at: string;
}

/**
 * The largest DLQ envelope we send: well under the broker's 1 MiB message.max.bytes, so a poison
 * message can always be parked (a DLQ send refused for size would stop the partition forever).
 * The DLQ sender lowers it to what the DLQ topic takes (dlq-sender.ts).
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

/** The source's position: what identifies a dead letter across retries of its chunk. */
export const sourceId = (src: Pick<DlqSource, "topic" | "partition" | "offset">) =>
  `${src.topic}/${src.partition}/${src.offset}`;

/**
 * The DLQ record of a poison message. Its envelope stays under `maxBytes`: a value that would not
 * fit is replaced by its size and sha256, then headers that still do not fit by their size.
 */
export function dlqMessage(src: DlqSource, reason: string, now: Date = new Date(), maxBytes = DLQ_MAX_VALUE_BYTES) {
  const tooLarge = src.value !== null && src.value.length * 1.34 + 2048 > maxBytes;
  const key = src.key && src.key.length > 1024 ? src.key.subarray(0, 1024) : src.key;
  const headers = src.headers ? headersBase64(src.headers) : undefined;
  const envelope: DlqEnvelope = {
    reason: reason.slice(0, 4000),
    source: {
      topic: src.topic,
      partition: src.partition,
      offset: src.offset,
      ...(src.timestamp ? { timestamp: src.timestamp } : {}),
    },
    key_base64: key ? key.toString("base64") : null,
    value_base64: src.value && !tooLarge ? src.value.toString("base64") : null,
    ...(tooLarge && src.value ? valueDigest(src.value) : {}),
    ...(headers ? { headers_base64: headers } : {}),
    failed_at: now.toISOString(),
  };
  let value = Buffer.from(JSON.stringify(envelope));
  if (value.length > maxBytes && envelope.value_base64 !== null && src.value) {
    Object.assign(envelope, { value_base64: null, ...valueDigest(src.value) });
    value = Buffer.from(JSON.stringify(envelope));
  }
  if (value.length > maxBytes && headers) {
    delete envelope.headers_base64;
    envelope.headers_bytes = Object.values(headers).reduce((n, v) => n + Buffer.byteLength(v, "base64"), 0);
    value = Buffer.from(JSON.stringify(envelope));
  }
  return {
    key,
    value,
    headers: {
      error_reason: reason.slice(0, 1000),
      source_topic: src.topic,
      source_partition: String(src.partition),
      source_offset: src.offset,
    } as Record<string, string>,
  };
}

function valueDigest(value: Buffer): Pick<DlqEnvelope, "value_bytes" | "value_sha256"> {
  return { value_bytes: value.length, value_sha256: createHash("sha256").update(value).digest("hex") };
}
