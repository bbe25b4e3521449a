import assert from "node:assert/strict";
import { dlqMessage, type DlqEnvelope } from "../../../runtime/processor/dlq";

describe("processor: dead-letter envelope", () => {
  it("carries the original bytes, the reason and the source", () => {
    const value = Buffer.from([0, 0, 0, 0, 7, 0xff, 0x00, 0x10]);
    const m = dlqMessage(
      {
        topic: "users_created",
        partition: 4,
        offset: "1234",
        timestamp: "1700000000000",
        key: Buffer.from("k1"),
        value,
      },
      "decode: unknown schema",
      new Date(Date.UTC(2026, 0, 1)),
    );
    const env = JSON.parse(m.value.toString()) as DlqEnvelope;
    assert.equal(env.reason, "decode: unknown schema");
    assert.deepEqual(env.source, { topic: "users_created", partition: 4, offset: "1234", timestamp: "1700000000000" });
    assert.deepEqual(Buffer.from(env.value_base64 ?? "", "base64"), value);
    assert.equal(Buffer.from(env.key_base64 ?? "", "base64").toString(), "k1");
    assert.equal(env.failed_at, "2026-01-01T00:00:00.000Z");
    assert.deepEqual(m.key, Buffer.from("k1"));
    assert.deepEqual(m.headers, {
      error_reason: "decode: unknown schema",
      source_topic: "users_created",
      source_partition: "4",
      source_offset: "1234",
    });
  });

  it("handles a null key and value", () => {
    const env = JSON.parse(
      dlqMessage(
        { topic: "t", partition: 0, offset: "0", key: null, value: null },
        "decode: empty value",
      ).value.toString(),
    ) as DlqEnvelope;
    assert.equal(env.key_base64, null);
    assert.equal(env.value_base64, null);
  });
});

describe("processor: a poison message always fits the DLQ", () => {
  it("a value too large to carry is replaced by its size and sha256, the envelope stays under 1 MiB", () => {
    const value = Buffer.alloc(1_500_000, 7);
    const m = dlqMessage(
      { topic: "users_created", partition: 0, offset: "9", key: Buffer.alloc(5000, 65), value },
      "decode: x".repeat(2000),
    );
    assert.ok(m.value.length < 600_000, `${m.value.length} bytes`);
    const env = JSON.parse(m.value.toString()) as DlqEnvelope;
    assert.equal(env.value_base64, null);
    assert.equal(env.value_bytes, 1_500_000);
    assert.match(env.value_sha256 ?? "", /^[0-9a-f]{64}$/);
    assert.ok((m.key?.length ?? 0) <= 1024);
  });
});

describe("processor: a dead letter fits the size it is given (the DLQ topic's limit)", () => {
  it("the value goes first, then headers too large to carry, each replaced by its size", () => {
    const src = {
      topic: "users_created",
      partition: 0,
      offset: "5",
      key: Buffer.from("k"),
      value: Buffer.alloc(20_000, 1),
      headers: { outbox_id: "42", junk: Buffer.alloc(30_000, 2) },
    };
    const m = dlqMessage(src, "decode: not avro", new Date(0), 16_000);
    assert.ok(m.value.length <= 16_000, `${m.value.length} bytes`);
    const env = JSON.parse(m.value.toString()) as DlqEnvelope;
    assert.equal(env.value_base64, null);
    assert.equal(env.value_bytes, 20_000);
    assert.equal(env.headers_base64, undefined);
    assert.equal(env.headers_bytes, 30_002);
    const roomy = JSON.parse(dlqMessage(src, "decode: not avro", new Date(0), 200_000).value.toString()) as DlqEnvelope;
    assert.equal(Buffer.from(roomy.headers_base64?.outbox_id ?? "", "base64").toString(), "42");
    assert.equal(roomy.value_bytes, undefined);
  });
});
