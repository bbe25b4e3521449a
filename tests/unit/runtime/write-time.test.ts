import assert from "node:assert/strict";
import { OUTBOX_WRITETIME_BASE, writeTimeOf } from "../../../runtime/processor/write-time";

describe("processor: write time from the outbox id", () => {
  it("is 10^16 µs + the outbox id, from a Buffer or a string header", () => {
    assert.deepEqual(writeTimeOf({ outbox_id: Buffer.from("41") }), { ok: true, micros: OUTBOX_WRITETIME_BASE + 41n });
    assert.deepEqual(writeTimeOf({ outbox_id: "9007199254740993" }), {
      ok: true,
      micros: 10_000_000_000_000_000n + 9_007_199_254_740_993n,
    });
  });

  it("grows with the outbox id: a later version always wins", () => {
    const a = writeTimeOf({ outbox_id: "999" });
    const b = writeTimeOf({ outbox_id: "1000" });
    assert.ok(a.ok && b.ok && a.micros !== undefined && b.micros !== undefined && b.micros > a.micros);
  });

  it("without the header: the driver's clock (undefined)", () => {
    assert.deepEqual(writeTimeOf(undefined), { ok: true });
    assert.deepEqual(writeTimeOf({ other: "x" }), { ok: true });
  });

  it("a header that is no outbox id is a content reason naming the header", () => {
    for (const bad of ["", "0", "-3", "12a", "1.5", " 7", "99999999999999999999"]) {
      const r = writeTimeOf({ outbox_id: bad });
      assert.ok(!r.ok, bad);
      assert.match(r.reason, /^invalid: header outbox_id .* is not an outbox id/);
    }
  });
});
