/**
 * The bucket lock and relay_inflight, interleaved in a fixed order on the real PostgreSQL. Relay
 * A holds bucket 5; relay B's lockPendingBuckets takes its snapshot and finds bucket 5 pending
 * and without an in-flight send; A then records its send and rolls back (its round failed after
 * Kafka's ack, say); only then does B try the lock, which is free now. B must not claim bucket 5:
 * A's rows may be on the topic, and only reconciliation knows.
 *
 * The pause inside B's statement: B's search_path finds this schema's pg_try_advisory_xact_lock
 * before pg_catalog's, and that one first waits at a gate the test opens, then takes the real lock.
 */
import assert from "node:assert/strict";
import { Pool, type PoolClient } from "pg";
import { BUCKET_LOCK_CLASS, claimRows, lockPendingBuckets } from "../../../runtime/relay/claim";
import { scratchSchema, servicesEnv } from "../workers/harness";

const GATE = [72_999, 1] as const;

async function waitFor(what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("relay: a bucket whose send was recorded and rolled back while we locked it (real PostgreSQL)", function () {
  this.timeout(60_000);
  let scratch: Awaited<ReturnType<typeof scratchSchema>> | undefined;
  let pg: Pool;
  let gated: Pool;

  before(async () => {
    scratch = await scratchSchema("it_claim_race", 4);
    pg = scratch.pg;
    const e = servicesEnv();
    gated = new Pool({
      host: e.PG_HOST,
      port: Number(e.PG_PORT),
      database: e.PG_DATABASE,
      user: e.PG_USER,
      password: e.PG_PASSWORD,
      max: 1,
      options: `-c search_path=${scratch.schema},pg_catalog`,
    });
    await pg.query(`
      CREATE FUNCTION pg_try_advisory_xact_lock(k1 int, k2 int) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_catalog.pg_advisory_lock_shared(${GATE[0]}, ${GATE[1]});
        PERFORM pg_catalog.pg_advisory_unlock_shared(${GATE[0]}, ${GATE[1]});
        RETURN pg_catalog.pg_try_advisory_xact_lock(k1, k2);
      END $$`);
    // pending rows in bucket 5 only
    await pg.query(
      "INSERT INTO outbox (user_id, bucket, payload) SELECT gen_random_uuid(), 5, jsonb_build_object('n', g) FROM generate_series(1, 10) g",
    );
  });

  after(async () => {
    await gated?.end();
    await scratch?.drop();
  });

  afterEach(async () => {
    await pg.query("DELETE FROM relay_inflight");
  });

  /**
   * A holds bucket 5 while B's statement passes its checks and waits at the gate; then `meanwhile`
   * runs (A's side), A rolls back, the gate opens. Returns what B locked and would claim.
   */
  async function interleave(meanwhile: () => Promise<void>): Promise<{ buckets: number[]; claimed: number }> {
    const gate = await pg.connect();
    const a = await pg.connect();
    const b: PoolClient = await gated.connect();
    try {
      await gate.query("SELECT pg_advisory_lock($1::int, $2::int)", [...GATE]);
      await a.query("BEGIN");
      await a.query("SELECT pg_advisory_xact_lock($1::int, 5)", [BUCKET_LOCK_CLASS]);
      await b.query("BEGIN");
      const bPid = (await b.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const locking = lockPendingBuckets(b, 16);
      locking.catch(() => undefined);
      await waitFor(
        "B at the gate",
        async () =>
          ((await pg.query("SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted", [bPid]))
            .rowCount ?? 0) > 0,
      );
      await meanwhile();
      await a.query("ROLLBACK");
      await gate.query("SELECT pg_advisory_unlock($1::int, $2::int)", [...GATE]);
      const buckets = await locking;
      const claimed = (await claimRows(b, buckets, 100)).length;
      await b.query("ROLLBACK");
      return { buckets, claimed };
    } finally {
      gate.release();
      a.release();
      b.release();
    }
  }

  it("without a send recorded meanwhile, B locks bucket 5 once A lets it go and claims its rows (the gate works)", async () => {
    assert.deepEqual(await interleave(async () => undefined), { buckets: [5], claimed: 10 });
  });

  it("A's send recorded then rolled back between B's snapshot and B's lock: B does not claim bucket 5", async () => {
    const r = await interleave(async () => {
      // recordInflight's insert: autocommit, visible to every statement that starts after it
      await pg.query(
        "INSERT INTO relay_inflight (id, lock_key, buckets, topic, offsets) VALUES (gen_random_uuid(), 1, '{5}', 'users_created', '{}')",
      );
    });
    assert.deepEqual(r, { buckets: [], claimed: 0 });
  });
});
