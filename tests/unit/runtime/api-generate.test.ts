import assert from "node:assert/strict";
import { generatePage, generateUser, malformedDraw } from "../../../runtime/api/generate";
import { sourceUserSchema } from "../../../runtime/ingest/source-record";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("offline API: generated users", () => {
  it("is deterministic for a seed and page", () => {
    assert.deepEqual(generatePage("s1", 3, 50), generatePage("s1", 3, 50));
  });

  it("differs between pages and seeds, and a smaller page is a prefix of a larger one", () => {
    const p1 = generatePage("s1", 1, 100);
    const p2 = generatePage("s1", 2, 100);
    const other = generatePage("s2", 1, 100);
    const ids = (p: typeof p1) => p.results.map((u) => (u as { login: { uuid: string } }).login.uuid);
    assert.equal(new Set([...ids(p1), ...ids(p2), ...ids(other)]).size, 300);
    assert.deepEqual(generatePage("s1", 1, 10).results, p1.results.slice(0, 10));
  });

  it("has the randomuser.me JSON shape", () => {
    const page = generatePage("shape", 1, 3);
    assert.deepEqual(page.info, { seed: "shape", results: 3, page: 1, version: "1.4" });
    const u = page.results[0] as Record<string, unknown>;
    assert.deepEqual(Object.keys(u).sort(), [
      "cell",
      "dob",
      "email",
      "gender",
      "id",
      "location",
      "login",
      "name",
      "nat",
      "phone",
      "picture",
      "registered",
    ]);
    const g = generateUser("shape", 1, 0);
    assert.deepEqual(Object.keys(g.name).sort(), ["first", "last", "title"]);
    assert.deepEqual(Object.keys(g.location).sort(), [
      "city",
      "coordinates",
      "country",
      "postcode",
      "state",
      "street",
      "timezone",
    ]);
    assert.deepEqual(Object.keys(g.location.street).sort(), ["name", "number"]);
    assert.deepEqual(Object.keys(g.login).sort(), ["md5", "password", "salt", "sha1", "sha256", "username", "uuid"]);
    assert.deepEqual(Object.keys(g.picture).sort(), ["large", "medium", "thumbnail"]);
    assert.match(g.login.uuid, UUID);
    assert.ok(["male", "female"].includes(g.gender));
    assert.equal(typeof g.dob.age, "number");
    assert.ok(Number.isFinite(Date.parse(g.dob.date)) && Number.isFinite(Date.parse(g.registered.date)));
  });

  it("every generated record passes ingest's validation", () => {
    for (const u of generatePage("valid", 7, 2000).results) {
      const r = sourceUserSchema.safeParse(u);
      assert.ok(r.success, JSON.stringify(r.error?.issues));
    }
  });

  it("malforms about the asked fraction, the same records every time", () => {
    const a = generatePage("mal", 1, 5000, 0.1);
    const b = generatePage("mal", 1, 5000, 0.1);
    assert.deepEqual(a, b);
    const bad = a.results.filter((u) => !sourceUserSchema.safeParse(u).success).length;
    assert.ok(bad > 400 && bad < 600, `malformed ${bad} of 5000`);
    let expected = 0;
    for (let i = 0; i < 5000; i++) if (malformedDraw("mal", 1, i) < 0.1) expected++;
    assert.equal(bad, expected);
    assert.equal(
      generatePage("mal", 1, 500, 0).results.filter((u) => !sourceUserSchema.safeParse(u).success).length,
      0,
    );
  });
});
