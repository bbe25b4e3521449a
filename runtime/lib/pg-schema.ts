/**
 * The PostgreSQL schema of the pipeline (staging + outbox), created idempotently at start by
 * ingest and relay. An advisory lock keeps concurrent starts from racing on CREATE.
 */
import type { Pool } from "pg";

export const PG_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS users (
  id              uuid PRIMARY KEY,
  first_name      text NOT NULL,
  last_name       text NOT NULL,
  gender          text NOT NULL,
  address         text NOT NULL,
  country         text NOT NULL,
  post_code       text NOT NULL,
  email           text NOT NULL,
  username        text NOT NULL,
  dob             timestamptz NOT NULL,
  registered_date timestamptz NOT NULL,
  phone           text NOT NULL,
  picture         text NOT NULL,
  fetched_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS outbox (
  id            bigserial PRIMARY KEY,
  user_id       uuid NOT NULL,
  bucket        smallint NOT NULL,
  payload       jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz
);
-- a row that cannot be published (does not fit the schema, too large) is parked with its reason
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS park_reason text;
-- a relay's send in flight: the topic's end offsets before it. A row left behind by a relay that
-- died (or failed) between Kafka's ack and its commit is reconciled from the topic before its
-- rows are claimed again, so a row is on the topic once (see runtime/relay/reconcile.ts)
CREATE TABLE IF NOT EXISTS relay_inflight (
  id          uuid PRIMARY KEY,
  lock_key    integer NOT NULL,
  buckets     smallint[] NOT NULL,
  topic       text NOT NULL,
  offsets     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (bucket, id) WHERE published_at IS NULL;
-- the retention's deletes walk the oldest rows only (runtime/relay/prune.ts)
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created_at);
CREATE TABLE IF NOT EXISTS rejected_records (
  id          bigserial PRIMARY KEY,
  seed        text NOT NULL,
  page        integer NOT NULL,
  idx         integer NOT NULL,
  raw         jsonb NOT NULL,
  reason      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (seed, page, idx)
);
-- raw holds the record with each NUL character and lone surrogate (jsonb refuses them) written as
-- its JSON escape text; raw_json, set only then, is the record's exact JSON text (JSON.parse gives it back)
ALTER TABLE rejected_records ADD COLUMN IF NOT EXISTS raw_json text;
-- a page the API could not give: wrongly shaped, not JSON, over the size cap (skipped = true: the
-- cursor went past it, its records were never fetched; re-fetch by hand), or a storm longer than
-- the retry budget (skipped = false: fetched again after a backoff; recovered_at once it came)
CREATE TABLE IF NOT EXISTS ingest_page_failures (
  seed            text NOT NULL,
  page            integer NOT NULL,
  reason          text NOT NULL,
  attempts        integer NOT NULL,
  skipped         boolean NOT NULL,
  first_failed_at timestamptz NOT NULL DEFAULT now(),
  last_failed_at  timestamptz NOT NULL DEFAULT now(),
  recovered_at    timestamptz,
  PRIMARY KEY (seed, page)
);
-- a one-shot run's pages so far (INGEST_RUN_ID, the DAG run): a retry stores only the rest
CREATE TABLE IF NOT EXISTS ingest_runs (
  run_id      text PRIMARY KEY,
  seed        text NOT NULL,
  pages       integer NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ingest_cursor (
  seed        text PRIMARY KEY,
  next_page   integer NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
`;

const MIGRATE_LOCK = 7_201_001;

export async function migrate(pool: Pool): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    await c.query("SELECT pg_advisory_xact_lock($1)", [MIGRATE_LOCK]);
    await c.query(PG_SCHEMA_SQL);
    await c.query("COMMIT");
  } catch (e) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}
