import assert from "node:assert/strict";
import avro from "avsc";
import { userCreatedAvsc } from "../../../runtime/contracts/user-created";
import { avroType } from "../../../runtime/lib/avro";
import { chunkByBytes } from "../../../runtime/lib/chunk";
import { encodeRows } from "../../../runtime/relay/encode";
import { normalizeUser } from "../../../runtime/ingest/normalize";
import { generateUser } from "../../../runtime/api/generate";

describe("relay: encoding a round", () => {
  const type = avroType(userCreatedAvsc());
  const n = normalizeUser(generateUser("enc", 1, 0), 1_700_000_000_000);
  assert.ok(n.ok);
  const u = n.user;
  const row = (id: string, payload: Record<string, unknown>) => ({ id, user_id: String(payload.id ?? u.id), payload });

  it("encodes in the Confluent wire format (magic 0, schema id, Avro) with the outbox id header", () => {
    const { messages, parked } = encodeRows([row("41", { ...u })], 7, type);
    assert.deepEqual(parked, []);
    const v = messages[0].value;
    assert.equal(v.readUInt8(0), 0);
    assert.equal(v.readUInt32BE(1), 7);
    assert.deepEqual(
      { ...(avro.Type.forSchema(JSON.parse(userCreatedAvsc()) as avro.Schema).fromBuffer(v.subarray(5)) as object) },
      u,
    );
    assert.deepEqual(messages[0].headers, { outbox_id: "41" });
  });

  it("parks a row that does not fit the schema, and one too large for Kafka, with reasons; the others go", () => {
    const huge = { ...u, id: "00000000-0000-4000-8000-000000000001", picture: "x".repeat(1_100_000) };
    const { messages, parked } = encodeRows(
      [row("1", { ...u, dob: null }), row("2", { ...u }), row("3", huge), row("4", { ...u, email: undefined })],
      1,
      type,
    );
    assert.deepEqual(
      messages.map((m) => m.id),
      ["2"],
    );
    assert.deepEqual(
      parked.map((p) => p.id),
      ["1", "3", "4"],
    );
    assert.match(parked[0].reason, /^encode: value does not match the schema at dob/);
    assert.match(parked[1].reason, /^too large: \d+ bytes/);
    assert.match(parked[2].reason, /email/);
  });

  it("sends are bounded by bytes, whatever the number of rows", () => {
    const sizes = Array.from({ length: 5000 }, () => 300);
    const groups = chunkByBytes(sizes, (s) => s, 900_000);
    assert.equal(groups.length, 2);
    assert.ok(groups.every((g) => g.reduce((a, b) => a + b, 0) <= 900_000));
    assert.equal(groups.flat().length, 5000);
    assert.deepEqual(
      chunkByBytes([2_000_000, 1], (s) => s, 900_000),
      [[2_000_000], [1]],
      "an oversized item alone",
    );
  });
});
