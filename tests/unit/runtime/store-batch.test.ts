import { strict as assert } from "node:assert";
// node-postgres' own encoding of an array parameter, which pgArrayLiteral must equal
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { prepareValue } = require("pg/lib/utils") as { prepareValue: (v: unknown) => unknown };
import { pgArrayLiteral, prepareUsers } from "../../../runtime/ingest/store-batch";
import type { UserCreated } from "../../../runtime/contracts/user-created";

describe("store-batch: the upsert's parameters built ahead", () => {
  it("pgArrayLiteral encodes a column exactly as node-postgres encodes the array", () => {
    const tricky = [
      "plain",
      'a "quoted" name',
      "back\\slash",
      'both \\" at once',
      "{braces},commas",
      "NULL",
      "",
      "josé@exemple.fr",
      "tab\tnew\nline",
      "emoji 😀",
    ];
    assert.equal(pgArrayLiteral(tricky), prepareValue(tricky));
    assert.equal(pgArrayLiteral([0, 5, 63]), prepareValue([0, 5, 63]));
  });

  it("prepareUsers keeps the last row of an id and counts the rows sent", () => {
    const u = (id: string, first: string): UserCreated => ({
      id,
      first_name: first,
      last_name: "L",
      gender: "x",
      address: "a",
      country: "c",
      post_code: "1",
      email: "e@x.y",
      username: "u",
      dob: 0,
      registered_date: 0,
      phone: "p",
      picture: "i",
      fetched_at: 1_700_000_000_000,
    });
    const p = prepareUsers([
      u("00000000-0000-0000-0000-000000000001", "first"),
      u("00000000-0000-0000-0000-000000000002", "b"),
      u("00000000-0000-0000-0000-000000000001", "second"),
    ]);
    assert.equal(p.count, 2);
    assert.equal(p.params.length, 15);
    assert.equal(p.params[1], '{"b","second"}');
    assert.equal(p.params[13], '{"2023-11-14T22:13:20.000Z","2023-11-14T22:13:20.000Z"}');
  });
});
