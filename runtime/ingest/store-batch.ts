/**
 * One page into PostgreSQL in ONE transaction: the seed's cursor moved on (if it is at this page),
 * users upserted by id, an outbox row per new or changed user, rejected records kept with their
 * reason.
 */
import type { Pool } from "pg";
import type { UserCreated } from "../contracts/user-created";
import { keyBucket } from "../lib/key-bucket";
import { pgJson, pgText, pgTextCut } from "../lib/pg-text";

export interface Rejected {
  idx: number;
  raw: unknown;
  reason: string;
}

export interface StoreBatchArgs {
  seed: string;
  page: number;
  users: UserCreated[];
  rejected: Rejected[];
  /** the page could not be had (a reason, its fetch attempts): recorded and skipped, in the same transaction */
  failed?: { reason: string; attempts: number };
  /** prepareUsers(users), built ahead (ingest builds it during the previous page's transaction) */
  prepared?: PreparedUsers;
  /** the one-shot run this page counts toward, and how many pages that run stores at most */
  run?: { id: string; pages: number };
}

export interface StoreBatchResult {
  /** false: another ingest already stored this page of this seed, or the run has all its pages; nothing written. */
  stored: boolean;
  /** set when not stored because the run (StoreBatchArgs.run) already has all its pages */
  runComplete?: true;
  upserted: number;
  outboxed: number;
  rejected: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Rows with the same id: the last one wins (a statement may touch a row only once). */
export function dedupeById(users: UserCreated[]): UserCreated[] {
  const m = new Map<string, UserCreated>();
  for (const u of users) {
    m.delete(u.id);
    m.set(u.id, u);
  }
  return [...m.values()];
}

/**
 * One column as a PostgreSQL array literal ({"a","b"}), escaped as node-postgres escapes an array
 * parameter (backslash and double quote; no value here is null): the driver then sends the string
 * as it is.
 */
export function pgArrayLiteral(values: readonly (string | number)[]): string {
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ",";
    out += '"' + String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }
  return out + "}";
}

/** A page's users as the upsert's parameters ($1..$15), deduplicated by id. */
export interface PreparedUsers {
  count: number;
  params: string[];
}

/**
 * The upsert's parameters, ready to send: ingest builds them while the previous page's transaction
 * runs (ingest.ts), so PostgreSQL does not wait for them between two pages (~15 µs a record).
 */
export function prepareUsers(all: UserCreated[]): PreparedUsers {
  const users = dedupeById(all);
  const col = <K extends keyof UserCreated>(k: K) => pgArrayLiteral(users.map((u) => u[k]));
  return {
    count: users.length,
    params: [
      col("id"),
      col("first_name"),
      col("last_name"),
      col("gender"),
      col("address"),
      col("country"),
      col("post_code"),
      col("email"),
      col("username"),
      pgArrayLiteral(users.map((u) => iso(u.dob))),
      pgArrayLiteral(users.map((u) => iso(u.registered_date))),
      col("phone"),
      col("picture"),
      pgArrayLiteral(users.map((u) => iso(u.fetched_at))),
      pgArrayLiteral(users.map((u) => keyBucket(u.id))),
    ],
  };
}

/**
 * Users upsert and outbox rows in ONE statement: the page is sent once as column arrays; the
 * outbox payload (the UserCreated value, timestamps as epoch millis) is built by PostgreSQL from
 * the same values, for the users that were new or changed, in page order.
 */
/**
 * The outbox payload of a users row (alias `a`): the UserCreated contract's fields, times in epoch
 * milliseconds. One definition for every writer of the outbox (ingest, the audit's re-drive).
 */
export function outboxPayloadSql(a: string): string {
  return `jsonb_build_object(
         'id', ${a}.id::text, 'first_name', ${a}.first_name, 'last_name', ${a}.last_name, 'gender', ${a}.gender,
         'address', ${a}.address, 'country', ${a}.country, 'post_code', ${a}.post_code, 'email', ${a}.email,
         'username', ${a}.username,
         'dob', (extract(epoch FROM ${a}.dob) * 1000)::bigint,
         'registered_date', (extract(epoch FROM ${a}.registered_date) * 1000)::bigint,
         'phone', ${a}.phone, 'picture', ${a}.picture,
         'fetched_at', (extract(epoch FROM ${a}.fetched_at) * 1000)::bigint)`;
}

const UPSERT_USERS_AND_OUTBOX = `
WITH src AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[],
                       $12::text[], $13::text[], $14::timestamptz[], $15::smallint[])
         WITH ORDINALITY AS t(id, first_name, last_name, gender, address, country, post_code, email,
                              username, dob, registered_date, phone, picture, fetched_at, bucket, n)
), up AS (
  INSERT INTO users AS u (id, first_name, last_name, gender, address, country, post_code, email,
                          username, dob, registered_date, phone, picture, fetched_at)
  SELECT id, first_name, last_name, gender, address, country, post_code, email,
         username, dob, registered_date, phone, picture, fetched_at FROM src
  ON CONFLICT (id) DO UPDATE SET
    first_name = excluded.first_name, last_name = excluded.last_name, gender = excluded.gender,
    address = excluded.address, country = excluded.country, post_code = excluded.post_code,
    email = excluded.email, username = excluded.username, dob = excluded.dob,
    registered_date = excluded.registered_date, phone = excluded.phone, picture = excluded.picture,
    fetched_at = excluded.fetched_at, updated_at = now()
  WHERE (u.first_name, u.last_name, u.gender, u.address, u.country, u.post_code, u.email,
         u.username, u.dob, u.registered_date, u.phone, u.picture)
    IS DISTINCT FROM
        (excluded.first_name, excluded.last_name, excluded.gender, excluded.address, excluded.country,
         excluded.post_code, excluded.email, excluded.username, excluded.dob, excluded.registered_date,
         excluded.phone, excluded.picture)
  RETURNING id
)
INSERT INTO outbox (user_id, bucket, payload)
SELECT s.id, s.bucket, ${outboxPayloadSql("s")}
  FROM src s JOIN up ON up.id = s.id
 ORDER BY s.n`;

export async function storeBatch(pool: Pool, a: StoreBatchArgs): Promise<StoreBatchResult> {
  const users = a.prepared ?? prepareUsers(a.users);
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    // The run's page count first (row lock: two tries of one run take turns), then the cursor's.
    if (a.run) {
      const counted = await c.query(
        `INSERT INTO ingest_runs (run_id, seed, pages) VALUES ($1, $2, 1)
         ON CONFLICT (run_id) DO UPDATE SET pages = ingest_runs.pages + 1, updated_at = now() WHERE ingest_runs.pages < $3`,
        [a.run.id, a.seed, a.run.pages],
      );
      if (counted.rowCount === 0) {
        await c.query("ROLLBACK");
        return { stored: false, upserted: 0, outboxed: 0, rejected: 0, runComplete: true };
      }
    }
    // The seed's cursor moved past this page, if it is at this page: the check and the row lock in
    // one round trip (PostgreSQL waits while its reply is on its way: every round trip counts). A
    // second ingest at the same page waits for the lock, then finds the page taken: nothing written.
    // A seed's first page makes its row first.
    const MOVE =
      "UPDATE ingest_cursor SET next_page = $2::int + 1, updated_at = now() WHERE seed = $1 AND next_page = $2::int";
    let moved = await c.query(MOVE, [a.seed, a.page]);
    if (moved.rowCount === 0) {
      await c.query("INSERT INTO ingest_cursor (seed, next_page) VALUES ($1, 1) ON CONFLICT (seed) DO NOTHING", [
        a.seed,
      ]);
      moved = await c.query(MOVE, [a.seed, a.page]);
    }
    if (moved.rowCount === 0) {
      await c.query("ROLLBACK");
      return { stored: false, upserted: 0, outboxed: 0, rejected: 0 };
    }
    let outboxed = 0;
    if (users.count > 0) {
      const r = await c.query(UPSERT_USERS_AND_OUTBOX, users.params);
      outboxed = r.rowCount ?? 0;
    }
    if (a.rejected.length > 0) {
      // a NUL or a lone surrogate in a record (or its reason) must not fail the page: escaped, the original kept
      const raws = a.rejected.map((r) => pgJson(r.raw));
      await c.query(
        `INSERT INTO rejected_records (seed, page, idx, raw, raw_json, reason)
         SELECT $1::text, $2::int, * FROM unnest($3::int[], $4::jsonb[], $5::text[], $6::text[])
         ON CONFLICT (seed, page, idx) DO UPDATE SET raw = excluded.raw, raw_json = excluded.raw_json, reason = excluded.reason`,
        [
          a.seed,
          a.page,
          a.rejected.map((r) => r.idx),
          raws.map((r) => r.json),
          raws.map((r) => r.original ?? null),
          a.rejected.map((r) => pgText(r.reason)),
        ],
      );
    }
    if (a.failed) await recordPageFailure(c, a.seed, a.page, a.failed.reason, a.failed.attempts, true);
    await c.query("COMMIT");
    return { stored: true, upserted: users.count, outboxed, rejected: a.rejected.length };
  } catch (e) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

/** Pages a one-shot run has stored so far (0: a run not seen before). */
export async function runPages(pool: Pool, runId: string): Promise<number> {
  const r = await pool.query<{ pages: number }>("SELECT pages FROM ingest_runs WHERE run_id = $1", [runId]);
  return r.rows[0]?.pages ?? 0;
}

export async function nextPage(pool: Pool, seed: string): Promise<number> {
  const r = await pool.query<{ next_page: number }>("SELECT next_page FROM ingest_cursor WHERE seed = $1", [seed]);
  return r.rows[0]?.next_page ?? 1;
}

/** A page's failure, kept visible in ingest_page_failures (attempts add up over rounds). */
export async function recordPageFailure(
  c: { query: Pool["query"] },
  seed: string,
  page: number,
  reason: string,
  attempts: number,
  skipped: boolean,
): Promise<void> {
  await c.query(
    `INSERT INTO ingest_page_failures (seed, page, reason, attempts, skipped) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (seed, page) DO UPDATE SET reason = excluded.reason, attempts = ingest_page_failures.attempts + excluded.attempts,
       skipped = excluded.skipped, last_failed_at = now(), recovered_at = NULL`,
    // the reason may quote the API's body or a parse error's excerpt of it: made storable
    [seed, page, pgTextCut(reason, 2000), attempts, skipped],
  );
}

/** A page that failed for a while (a storm) was fetched after all. */
export async function recordPageRecovered(pool: Pool, seed: string, page: number): Promise<void> {
  await pool.query("UPDATE ingest_page_failures SET recovered_at = now() WHERE seed = $1 AND page = $2", [seed, page]);
}
