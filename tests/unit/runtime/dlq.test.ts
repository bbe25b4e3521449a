import assert from "node:assert/strict";
import { dlqMessage, type DlqEnvelope } from "../../../runtime/processor/dlq";

describe("processor: dead-letter envelope", () => {
  it("carries the original bytes, the reason and the source", () => {
    const value = Buffer.from([0, 0, 0, 0, 7, 0xff, 0x00, 0x10]);
    const m = dlqMessage(
      { topic: "users_created", partition: 4, offset: "1234", timestamp: "1700000000000", key: Buffer.from("k1"), value },
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
    assert.deepEqual(m.headers, { error_reason: "decode: unknown schema", source_topic: "users_created", source_partition: "4", source_offset: "1234" });
  });

  it("handles a null key and value", () => {
    const env = JSON.parse(dlqMessage({ topic: "t", partition: 0, offset: "0", key: null, value: null }, "decode: empty value").value.toString()) as DlqEnvelope;
    assert.equal(env.key_base64, null);
    assert.equal(env.value_base64, null);
  });
});
