/**
 * Outbox retention on the real PostgreSQL: a pass deletes exactly the rows staged and published
 * more than the retention ago, in batches, and keeps pending, parked and recently published rows;
 * a second pruner (another relay) skips while one holds the lock.
 */
import assert from "node:assert/strict";
import type { Pool } from "pg";
import { PRUNE_LOCK, pruneOutbox } from "../../../runtime/relay/prune";
import { scratchSchema } from "../workers/harness";

/** label → the row's created_at and published_at / parked_at, as ages in seconds (null: not set). */
const ROWS: Record<string, { created: number; published: number | null; parked?: number }> = {
  oldPublished1: { created: 7200, published: 7100 },
  oldPublished2: { created: 7000, published: 6900 },
  oldPublished3: { created: 6000, published: 5000 },
  oldPublished4: { created: 5000, published: 4000 },
  oldPublished5: { created: 4000, published: 3800 },
  oldPending: { created: 7200, published: null },
  oldParked: { created: 7200, published: null, parked: 7000 },
  publishedLately: { created: 7200, published: 60 },
  recent: { created: 30, published: 20 },
  recentPending: { created: 10, published: null },
};
const RETENTION_S = 3600;

describe("relay: outbox retention (real PostgreSQL)", function () {
  this.timeout(60_000);
  let scratch: Awaited<ReturnType<typeof scratchSchema>> | undefined;
  let pg: Pool;

  beforeEach(async () => {
    scratch = await scratchSchema("it_prune", 3);
    pg = scratch.pg;
    for (const [label, r] of Object.entries(ROWS)) {
      await pg.query(
        `INSERT INTO outbox (user_id, bucket, payload, created_at, published_at, parked_at)
         VALUES (gen_random_uuid(), 1, jsonb_build_object('label', $1::text), now() - make_interval(secs => $2),
                 now() - make_interval(secs => $3), now() - make_interval(secs => $4))`,
        [label, r.created, r.published, r.parked ?? null],
      );
    }
  });

  afterEach(async () => {
    await scratch?.drop();
  });

  const left = async () =>
    (await pg.query<{ label: string }>("SELECT payload->>'label' AS label FROM outbox ORDER BY id")).rows.map(
      (r) => r.label,
    );

  it("deletes the rows staged and published before the retention, a batch at a time, and nothing else", async () => {
    const r = await pruneOutbox(pg, { retentionSeconds: RETENTION_S, batch: 2 });
    assert.deepEqual(r, { deleted: 5, statements: 3, skipped: false });
    assert.deepEqual(await left(), ["oldPending", "oldParked", "publishedLately", "recent", "recentPending"]);
    assert.deepEqual(await pruneOutbox(pg, { retentionSeconds: RETENTION_S, batch: 2 }), {
      deleted: 0,
      statements: 1,
      skipped: false,
    });
  });

  it("skips while another relay prunes (holds the lock), and prunes once it is free", async () => {
    const other = await pg.connect();
    try {
      await other.query("SELECT pg_advisory_lock($1)", [PRUNE_LOCK]);
      assert.deepEqual(await pruneOutbox(pg, { retentionSeconds: RETENTION_S, batch: 100 }), {
        deleted: 0,
        statements: 0,
        skipped: true,
      });
      assert.equal((await left()).length, Object.keys(ROWS).length);
      await other.query("SELECT pg_advisory_unlock($1)", [PRUNE_LOCK]);
    } finally {
      other.release();
    }
    assert.equal((await pruneOutbox(pg, { retentionSeconds: RETENTION_S, batch: 100 })).deleted, 5);
  });

  it("walks the index on created_at, not the whole outbox", async () => {
    await pg.query("SET enable_seqscan = off"); // a table this small would be scanned: ask for the plan an outbox of millions gets
    const plan = (
      await pg.query<{ "QUERY PLAN": string }>(
        `EXPLAIN SELECT id FROM outbox WHERE created_at < now() - make_interval(secs => 3600)
         AND published_at < now() - make_interval(secs => 3600) ORDER BY created_at LIMIT 100`,
      )
    ).rows
      .map((r) => r["QUERY PLAN"])
      .join("\n");
    await pg.query("RESET enable_seqscan");
    assert.match(plan, /(using|on) outbox_created/);
  });
});
