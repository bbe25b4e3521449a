import assert from "node:assert/strict";
import { generateUser, malform, MALFORMATIONS } from "../../../runtime/api/generate";
import { normalizeUser } from "../../../runtime/ingest/normalize";
import { splitRecords } from "../../../runtime/ingest/ingest";
import { dedupeById } from "../../../runtime/ingest/store-batch";
import { isUserCreated, userCreatedSchema } from "../../../runtime/contracts/user-created";
import { isSourceUser, sourceUserSchema } from "../../../runtime/ingest/source-record";
import { isPgStorable } from "../../../runtime/lib/pg-text";

const AT = Date.UTC(2026, 0, 2, 3, 4, 5, 6);

describe("ingest: validation and normalization", () => {
  it("maps a randomuser record to the UserCreated shape", () => {
    const src = generateUser("norm", 1, 0);
    const n = normalizeUser(src, AT);
    assert.ok(n.ok);
    const u = n.user;
    assert.deepEqual(u, {
      id: src.login.uuid,
      first_name: src.name.first,
      last_name: src.name.last,
      gender: src.gender,
      address: `${src.location.street.number} ${src.location.street.name}, ${src.location.city}, ${src.location.state}, ${src.location.country}`,
      country: src.location.country,
      post_code: String(src.location.postcode),
      email: src.email,
      username: src.login.username,
      dob: Date.parse(src.dob.date),
      registered_date: Date.parse(src.registered.date),
      phone: src.phone,
      picture: src.picture.medium,
      fetched_at: AT,
    });
    assert.ok(userCreatedSchema.safeParse(u).success);
  });

  it("keeps text and numeric postcodes as text, and lower-cases the uuid", () => {
    const src = generateUser("norm", 1, 1);
    src.location.postcode = "K1A 0B1";
    src.login.uuid = src.login.uuid.toUpperCase();
    const n = normalizeUser(src, AT);
    assert.ok(n.ok);
    assert.equal(n.user.post_code, "K1A 0B1");
    assert.equal(n.user.id, src.login.uuid.toLowerCase());
  });

  const expectations: Record<(typeof MALFORMATIONS)[number], RegExp> = {
    "missing-uuid": /^login\.uuid: Required/,
    "bad-uuid": /^login\.uuid: Invalid uuid/,
    "bad-email": /^email: Invalid email/,
    "bad-dob": /^dob\.date: not an ISO-8601/,
    "no-name": /^name: Expected object, received null/,
  };
  MALFORMATIONS.forEach((kind, i) => {
    it(`rejects a record with ${kind}, saying why`, () => {
      const n = normalizeUser(malform(generateUser("bad", 1, i), i), AT);
      assert.ok(!n.ok);
      assert.match(n.reason, expectations[kind]);
    });
  });

  it("rejects things that are not records at all", () => {
    for (const raw of [null, 42, "user", [], {}]) {
      const n = normalizeUser(raw, AT);
      assert.ok(!n.ok, JSON.stringify(raw));
    }
  });

  it("splits a page into users and rejected records (with index and raw), and goes on", () => {
    const page = [generateUser("s", 1, 0), { nope: true }, generateUser("s", 1, 2)];
    const { users, rejected } = splitRecords(page, AT);
    assert.equal(users.length, 2);
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0].idx, 1);
    assert.deepEqual(rejected[0].raw, { nope: true });
  });

  it("dedupeById keeps the last record of an id", () => {
    const a = normalizeUser(generateUser("d", 1, 0), 1);
    const b = normalizeUser(generateUser("d", 1, 1), 2);
    assert.ok(a.ok && b.ok);
    const a2 = { ...a.user, email: "x@y.zz" };
    assert.deepEqual(dedupeById([a.user, b.user, a2]), [b.user, a2]);
  });
});

describe("ingest: records real sources send", () => {
  it("accepts a Unicode e-mail address, as randomuser.me sends them", () => {
    const src = generateUser("uni", 1, 0);
    src.email = "josé.müller@exemple.fr";
    const n = normalizeUser(src, AT);
    assert.ok(n.ok, JSON.stringify(n));
    assert.equal(n.user.email, "josé.müller@exemple.fr");
    assert.ok(userCreatedSchema.safeParse(n.user).success, "the contract (and so the processor) accepts it too");
  });

  it("rejects a date-time without a zone (it would be read in local time), naming the field", () => {
    const src = generateUser("zone", 1, 0);
    src.dob.date = "1980-05-06T07:08:09";
    const n = normalizeUser(src, AT);
    assert.ok(!n.ok);
    assert.match(n.reason, /^dob\.date: not an ISO-8601 date-time with a zone/);
    src.dob.date = "1980-05-06T07:08:09+02:00";
    assert.ok(normalizeUser(src, AT).ok);
  });

  it("rejects a record with a NUL character in any field (PostgreSQL text cannot hold it), naming the field", () => {
    const src = generateUser("nul", 1, 0);
    src.location.city = "Ber\u0000lin";
    const n = normalizeUser(src, AT);
    assert.deepEqual(n, { ok: false, reason: "location.city: contains a NUL character" });
  });

  it("rejects a record with a NUL in a key, or a lone surrogate in a value or a key, with a reason PostgreSQL can store", () => {
    const cases: [(r: Record<string, unknown>) => void, string][] = [
      [(r) => (r["extra\u0000"] = 1), "extra\\u0000: contains a NUL character in a key"],
      [
        (r) => ((r.name as Record<string, unknown>).first = "Ann\ud800"),
        "name.first: contains a lone surrogate (U+D800)",
      ],
      [
        (r) => ((r.location as Record<string, unknown>)["\udc00"] = "x"),
        "location.\\udc00: contains a lone surrogate (U+DC00) in a key",
      ],
    ];
    for (const [mutate, reason] of cases) {
      const src = generateUser("nul", 1, 0) as unknown as Record<string, unknown>;
      mutate(src);
      const n = normalizeUser(src, AT);
      assert.deepEqual(n, { ok: false, reason });
      assert.ok(!n.ok && isPgStorable(n.reason));
    }
  });

  it("a duplicate id in a page: the last is kept, the earlier one rejected with a reason", () => {
    const a = generateUser("dup", 1, 0);
    const b = { ...generateUser("dup", 1, 1), login: { ...generateUser("dup", 1, 1).login, uuid: a.login.uuid } };
    const { users, rejected } = splitRecords([a, generateUser("dup", 1, 2), b], AT);
    assert.equal(users.length, 2);
    assert.deepEqual(
      rejected.map((r) => r.idx),
      [0],
    );
    assert.match(rejected[0].reason, /duplicate id .* record 2 kept/);
  });
});

describe("ingest: the compiled checks agree with the schemas", () => {
  // every leaf path of a record, and values to put there
  const leaves = (v: unknown, path: string[] = []): string[][] =>
    v !== null && typeof v === "object" ? Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k])) : [path];
  const odd: unknown[] = [
    undefined,
    null,
    "",
    "x",
    " ",
    0,
    1.5,
    -1,
    NaN,
    true,
    {},
    [],
    "2020-01-01",
    "2020-01-01T00:00:00Z",
    "a@b.c",
    "00000000-0000-0000-0000-00000000000g",
  ];
  const set = (o: unknown, path: string[], val: unknown) => {
    const c = JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
    let at = c;
    for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
    if (val === undefined) delete at[path[path.length - 1]];
    else at[path[path.length - 1]] = val;
    return c;
  };

  it("isSourceUser accepts no record the schema refuses, and the generated ones", () => {
    let accepted = 0;
    for (let i = 0; i < 5; i++) {
      const u = generateUser("agree", 1, i);
      assert.ok(isSourceUser(u));
      assert.ok(!isSourceUser(malform(u, i)));
      for (const path of [
        ...leaves(u),
        ["name"],
        ["location"],
        ["login"],
        ["dob"],
        ["picture"],
        ["location", "street"],
      ]) {
        for (const val of odd) {
          const m = set(u, path, val);
          if (isSourceUser(m)) {
            accepted++;
            assert.ok(sourceUserSchema.safeParse(m).success, `${path.join(".")} = ${JSON.stringify(val)}`);
          }
        }
      }
    }
    assert.ok(accepted > 25); // the mutations it may accept (extra fields, strings for strings) were tried
  });

  it("isUserCreated accepts no value the schema refuses", () => {
    const good = normalizeUser(generateUser("agree", 2, 0), AT);
    assert.ok(good.ok);
    assert.ok(isUserCreated({ ...good.user }));
    for (const path of leaves(good.user)) {
      for (const val of [...odd, 1e20, -1e20, 253_402_300_800_000]) {
        const m = set(good.user, path, val);
        if (isUserCreated(m))
          assert.ok(userCreatedSchema.safeParse(m).success, `${path.join(".")} = ${JSON.stringify(val)}`);
      }
    }
    assert.ok(!isUserCreated({ ...good.user, extra: 1 }));
  });
});
