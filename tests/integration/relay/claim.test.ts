/**
 * The relay's claim against the real PostgreSQL, in a scratch schema whose statistics are stale
 * on purpose: the outbox was analyzed while every row was pending, then nearly all were published.
 * That is the outbox right after a burst (autoanalyze has not run yet), where a claim that walked
 * the primary key past the published rows took 5-6 s a round and stalled the relay (CI, 2026-11-26).
 */
import assert from "node:assert/strict";
import type { Pool } from "pg";
import { CLAIM_SQL, claimRows } from "../../../runtime/relay/claim";
import { scratchSchema } from "../workers/harness";

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  Plans?: PlanNode[];
}

/** Rows the plan's scans of `relation` read: returned plus filtered out, over all loops. */
function rowsRead(n: PlanNode, relation: string): number {
  const own =
    n["Relation Name"] === relation
      ? ((n["Actual Rows"] ?? 0) + (n["Rows Removed by Filter"] ?? 0)) * (n["Actual Loops"] ?? 1)
      : 0;
  return own + (n.Plans ?? []).reduce((a, p) => a + rowsRead(p, relation), 0);
}

describe("relay: the claim (real PostgreSQL, stale statistics)", function () {
  this.timeout(120_000);
  const published = 100_000;
  const pendingPerBucket = 300;
  let scratch: Awaited<ReturnType<typeof scratchSchema>> | undefined;
  let pg: Pool;

  before(async () => {
    scratch = await scratchSchema("it_claim", 2);
    pg = scratch.pg;
    await pg.query("ALTER TABLE outbox SET (autovacuum_enabled = false)");
    const insert = (n: number) =>
      pg.query(
        `INSERT INTO outbox (user_id, bucket, payload)
         SELECT gen_random_uuid(), (g % 64)::smallint, jsonb_build_object('n', g, 'pad', repeat('x', 300)) FROM generate_series(1, $1::int) g`,
        [n],
      );
    await insert(published);
    await pg.query("ANALYZE outbox");
    await pg.query("UPDATE outbox SET published_at = now()");
    await insert(64 * pendingPerBucket);
  });

  after(async () => {
    await scratch?.drop();
  });

  const buckets = [3, 17, 40, 63];
  const limit = 200;

  /** The claim's plan reads about the rows it claims; the claim returns each bucket's oldest, in id order. */
  async function checkClaim(): Promise<void> {
    const c = await pg.connect();
    try {
      await c.query("BEGIN");
      const plan = (
        await c.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${CLAIM_SQL}`, [
          buckets,
          limit,
        ])
      ).rows[0]["QUERY PLAN"][0].Plan;
      await c.query("ROLLBACK");
      const read = rowsRead(plan, "outbox");
      // at most each bucket's `limit` oldest through the index, then the claimed rows by key
      assert.ok(
        read <= buckets.length * limit + limit,
        `the claim read ${read} outbox rows for ${limit} (${published} published, ${64 * pendingPerBucket} pending)`,
      );

      await c.query("BEGIN");
      const rows = await claimRows(c, buckets, limit);
      await c.query("ROLLBACK");
      const expected = await pg.query<{ id: string }>(
        "SELECT id::text FROM outbox WHERE published_at IS NULL AND bucket = ANY($1::smallint[]) ORDER BY id LIMIT $2",
        [buckets, limit],
      );
      assert.deepEqual(
        rows.map((r) => r.id),
        expected.rows.map((r) => r.id),
      );
    } finally {
      c.release();
    }
  }

  it(
    "statistics from before the publish (all pending): reads about the rows it claims, not the published rows before them",
    checkClaim,
  );

  it("fresh statistics, the published rows' index entries not yet vacuumed: the same", async () => {
    await pg.query("ANALYZE outbox");
    await checkClaim();
  });
});
