import assert from "node:assert/strict";
import {
  isPgStorable,
  isPgStorableJson,
  pgJson,
  pgText,
  pgTextCut,
  unstorablePath,
} from "../../../runtime/lib/pg-text";

describe("pg-text: what PostgreSQL text and jsonb can store", () => {
  it("NUL characters and lone surrogates are escaped as their JSON escape text; pairs and the rest are kept", () => {
    assert.equal(pgText("plain é 😀"), "plain é 😀");
    assert.equal(pgText("a\u0000b"), "a\\u0000b");
    assert.equal(pgText("x\ud800y\udc00z"), "x\\ud800y\\udc00z");
    assert.equal(pgText("\udc00\ud83d\ude00\ud83d"), "\\udc00😀\\ud83d");
    for (const s of ["a\u0000b", "x\ud800y", "\udfff"]) {
      assert.equal(isPgStorable(s), false, JSON.stringify(s));
      assert.equal(isPgStorable(pgText(s)), true, JSON.stringify(s));
    }
  });

  it("a cut through a surrogate pair leaves its half escaped, not mangled", () => {
    assert.equal(pgTextCut("ab😀", 3), "ab\\ud83d");
    assert.equal(pgTextCut("abc", 10), "abc");
  });

  it("finds the first unstorable value or key of a record, and names it with a storable path", () => {
    assert.equal(isPgStorableJson({ a: ["x", { b: 1 }], c: null }), true);
    assert.deepEqual(unstorablePath({ a: { b: ["ok", "n\u0000"] } }), { path: "a.b.1", what: "a NUL character" });
    assert.deepEqual(unstorablePath({ a: { "k\u0000": 1 } }), { path: "a.k\\u0000", what: "a NUL character in a key" });
    assert.deepEqual(unstorablePath({ "\ud800": "x" }), {
      path: "\\ud800",
      what: "a lone surrogate (U+D800) in a key",
    });
    assert.deepEqual(unstorablePath({ name: { first: "Jo\udc01" } }), {
      path: "name.first",
      what: "a lone surrogate (U+DC01)",
    });
    assert.deepEqual(unstorablePath("\u0000"), { path: "(record)", what: "a NUL character" });
  });

  it("a raw value for jsonb: as it is when storable; else a storable copy and the exact original JSON text", () => {
    assert.deepEqual(pgJson({ a: "b" }), { json: '{"a":"b"}' });
    assert.deepEqual(pgJson(undefined), { json: "null" });
    const raw = { "k\u0000": ["v\ud800", 1, { x: "\u0000" }] };
    const r = pgJson(raw);
    assert.ok(r.original !== undefined);
    assert.deepEqual(JSON.parse(r.original), raw, "the original comes back whole");
    assert.deepEqual(JSON.parse(r.json), { "k\\u0000": ["v\\ud800", 1, { x: "\\u0000" }] });
    assert.ok(!r.json.includes("\\u0000") || r.json.includes("\\\\u0000"), "no \\u0000 escape jsonb would refuse");
    assert.ok(!/(?<!\\)\\ud[89a-f]/i.test(r.json), "no lone surrogate escape jsonb would refuse");
  });
});
