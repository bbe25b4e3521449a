/**
 * storeBatch against the real PostgreSQL, in a scratch schema: the seed's cursor is checked and
 * moved in the page's transaction, so a page is stored once, in order, whoever else tries it.
 */
import assert from "node:assert/strict";
import type { Pool } from "pg";
import { generatePage } from "../../../runtime/api/generate";
import { normalizeUser } from "../../../runtime/ingest/normalize";
import { storeBatch } from "../../../runtime/ingest/store-batch";
import type { UserCreated } from "../../../runtime/contracts/user-created";
import { scratchSchema, uniq } from "./harness";

describe("ingest: storeBatch and the seed's cursor (real PostgreSQL)", function () {
  this.timeout(120_000);
  let scratch: Awaited<ReturnType<typeof scratchSchema>> | undefined;
  let pg: Pool;
  const seed = uniq("store-seed");
  const usersOf = (page: number): UserCreated[] =>
    generatePage(seed, page, 50).results.flatMap((r) => {
      const n = normalizeUser(r, Date.now());
      return n.ok ? [n.user] : [];
    });
  const count = async (sql: string) =>
    Number((await pg.query<{ n: string }>(sql, sql.includes("$1") ? [seed] : [])).rows[0].n);

  before(async () => {
    scratch = await scratchSchema("it_store");
    pg = scratch.pg;
  });

  after(async () => {
    await scratch?.drop();
  });

  it("a new seed's first page makes its cursor; a page that is not the cursor's is not stored and writes nothing", async () => {
    const early = await storeBatch(pg, { seed, page: 2, users: usersOf(2), rejected: [] });
    assert.equal(early.stored, false, "page 2 before page 1");
    assert.equal(await count("SELECT count(*)::text AS n FROM outbox"), 0);
    const first = await storeBatch(pg, { seed, page: 1, users: usersOf(1), rejected: [] });
    assert.deepEqual(first, { stored: true, upserted: 50, outboxed: 50, rejected: 0 });
    assert.equal(await count("SELECT next_page::text AS n FROM ingest_cursor WHERE seed = $1"), 2);
    const again = await storeBatch(pg, { seed, page: 1, users: usersOf(1), rejected: [] });
    assert.equal(again.stored, false, "page 1 a second time");
    assert.equal(await count("SELECT count(*)::text AS n FROM outbox"), 50);
  });

  it("two ingests storing the same page at once: one stores it, the other writes nothing; the cursor moves once", async () => {
    const users = usersOf(2);
    const r = await Promise.all([
      storeBatch(pg, { seed, page: 2, users, rejected: [] }),
      storeBatch(pg, { seed, page: 2, users, rejected: [] }),
    ]);
    assert.deepEqual(r.map((x) => x.stored).sort(), [false, true]);
    assert.equal(await count("SELECT next_page::text AS n FROM ingest_cursor WHERE seed = $1"), 3);
    assert.equal(await count("SELECT count(*)::text AS n FROM outbox"), 100);
    assert.equal(await count("SELECT count(*)::text AS n FROM users"), 100);
  });

  it("two tries of a run storing its last page at once: one stores it, the other is told the run is complete; the run counts its share, no more", async () => {
    const run = { id: uniq("run"), pages: 1 };
    const r = await Promise.all([
      storeBatch(pg, { seed, page: 3, users: usersOf(3), rejected: [], run }),
      storeBatch(pg, { seed, page: 3, users: usersOf(3), rejected: [], run }),
    ]);
    assert.deepEqual(r.map((x) => [x.stored, x.runComplete ?? false]).sort(), [
      [false, true],
      [true, false],
    ]);
    assert.equal(await count(`SELECT pages::text AS n FROM ingest_runs WHERE run_id = '${run.id}'`), 1);
    assert.equal(await count("SELECT count(*)::text AS n FROM users"), 150);
    assert.equal(await count("SELECT next_page::text AS n FROM ingest_cursor WHERE seed = $1"), 4);
  });
});
