import assert from "node:assert/strict";
import { userCreatedSchema } from "../../../runtime/contracts/user-created";
import { generateUser, malform, MALFORMATIONS } from "../../../runtime/api/generate";
import { sourceUserFast, userCreatedFast } from "../../../runtime/ingest/fast-validate";
import { normalizeUser } from "../../../runtime/ingest/normalize";
import { sourceUserSchema } from "../../../runtime/ingest/source-record";

describe("ingest fast validation (zod/v4) agrees with the zod 3 schemas", () => {
  const AT = 1_764_000_000_000;
  const good = Array.from({ length: 300 }, (_, i) => JSON.parse(JSON.stringify(generateUser("fast", 1, i))) as Record<string, unknown>);

  it("accepts the generated records, with the same parsed data", () => {
    for (const r of good) {
      const f = sourceUserFast.safeParse(r);
      const s = sourceUserSchema.safeParse(r);
      assert.ok(f.success && s.success);
      assert.deepEqual(f.data, s.data);
    }
  });

  it("rejects every malformation zod 3 rejects, and things that are not records", () => {
    const bad: unknown[] = [null, 42, "x", [], {}];
    for (let i = 0; i < 100; i++) bad.push(malform(JSON.parse(JSON.stringify(generateUser("fastbad", 1, i))), i % MALFORMATIONS.length));
    bad.push({ ...good[0], email: "a@b" }, { ...good[0], email: ".a@b.cc" }, { ...good[0], email: "a..b@c.de" });
    bad.push({ ...good[0], login: { uuid: "zzzzzzzz-9a8e-1d2c-3b4a-5f600b9b7c1e", username: "u" } });
    for (const r of bad) {
      assert.equal(sourceUserSchema.safeParse(r).success, false, JSON.stringify(r).slice(0, 80));
      assert.equal(sourceUserFast.safeParse(r).success, false, JSON.stringify(r).slice(0, 80));
    }
  });

  it("the UserCreated mirror rejects what userCreatedSchema rejects (extra key, bad id, non-integer ms)", () => {
    const n = normalizeUser(good[0], AT);
    assert.ok(n.ok);
    const u = n.user as Record<string, unknown>;
    for (const v of [{ ...u, extra: 1 }, { ...u, id: "nope" }, { ...u, dob: 1.5 }, { ...u, first_name: "" }, { ...u, email: "a@b" }]) {
      assert.equal(userCreatedSchema.safeParse(v).success, false);
      assert.equal(userCreatedFast.safeParse(v).success, false);
    }
    assert.deepEqual(userCreatedFast.parse(u), userCreatedSchema.parse(u));
  });
});
