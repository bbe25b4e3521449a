import assert from "node:assert/strict";
import avro from "avsc";
import { checkDecoded } from "../../../runtime/processor/decode";
import { userCreatedAvsc, type UserCreated } from "../../../runtime/contracts/user-created";
import { normalizeUser } from "../../../runtime/ingest/normalize";
import { generateUser } from "../../../runtime/api/generate";

describe("processor: checking a decoded value", () => {
  const type = avro.Type.forSchema(JSON.parse(userCreatedAvsc()) as avro.Schema);
  const n = normalizeUser(generateUser("dec", 1, 0), 1_700_000_000_123);
  assert.ok(n.ok);
  const user: UserCreated = n.user;

  it("accepts what avsc decodes from the contract schema (a record instance)", () => {
    const decoded: unknown = type.fromBuffer(type.toBuffer(user));
    assert.notEqual(Object.getPrototypeOf(decoded), Object.prototype);
    const d = checkDecoded(decoded, Buffer.from(user.id));
    assert.ok(d.ok);
    // the record instance itself on the hot path (no copy); its own fields are the user's
    assert.deepEqual({ ...d.user }, user);
  });

  it("rejects a value that breaks the contract, with the field", () => {
    const r = checkDecoded(type.fromBuffer(type.toBuffer({ ...user, email: "nope" })), null);
    assert.deepEqual(r, { ok: false, reason: "invalid: email: Invalid email" });
  });

  it("rejects a key that is not the id", () => {
    const r = checkDecoded({ ...user }, Buffer.from("other"));
    assert.ok(!r.ok);
    assert.match(r.reason, /^invalid: key other is not the id/);
  });

  it("rejects non-records", () => {
    assert.ok(!checkDecoded(null, null).ok);
    assert.ok(!checkDecoded("x", null).ok);
  });
});
