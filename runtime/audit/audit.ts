/**
 * The audit: what PostgreSQL staged (users, and each user's newest outbox row) against what
 * spark_streams.created_users holds, for a seed or a time range; with `redrive`, what is missing
 * goes through the pipeline again.
 *
 * Per staged user, by its newest outbox row (the version Cassandra must hold):
 *   - published: Cassandra's row must exist with WRITETIME >= 10^16 + that outbox id (write-time.ts);
 *     no row is `missing`, an older write time is `stale` (the newest version was lost);
 *   - unpublished: `pending` (the relay has not got there yet), parked: `parked` (its reason is in
 *     the outbox): neither is a loss;
 *   - no outbox row at all (the retention deleted its rows: relay/prune.ts): only the row's
 *     presence can be checked.
 * A re-drive writes a new outbox row for each missing or stale user from its `users` row (the
 * newest version staged): the relay publishes it like any other, and the processor writes it at
 * the write time of its new outbox id, above every version staged before it, so it also repairs
 * a row that a delete (at a write time above the old version's) took away. It never carries an
 * older version over a newer one: the users row is locked while it is copied (newVersions).
 */
import { z } from "zod";
import type { Pool } from "pg";
import type { Client } from "cassandra-driver";
import { generateUser } from "../api/generate";
import { KEYSPACE, USERS_TABLE } from "../contracts/names";
import { cassandraShape, commonShape, int, pgShape } from "../lib/config";
import { keyBucket } from "../lib/key-bucket";
import { outboxPayloadSql } from "../ingest/store-batch";
import { OUTBOX_WRITETIME_BASE } from "../processor/write-time";

export const auditSchema = z.object({
  ...commonShape,
  ...pgShape,
  ...cassandraShape,
  /** Users per page that ingest asked for: a seed's ids are regenerated page by page (--seed). */
  INGEST_BATCH_SIZE: int(1, 5000, 1000),
  /** How many missing ids the report lists (all are counted, and all are re-driven). */
  AUDIT_MAX_IDS: int(0, 1_000_000, 100),
});
export type AuditConfig = z.infer<typeof auditSchema>;

export type AuditScope = { seed: string; pageSize: number } | { since: Date; until: Date };

export interface AuditReport {
  scope: string;
  /** users staged in PostgreSQL in the scope */
  staged: number;
  /** in Cassandra at (at least) their newest published version */
  stored: number;
  missing: number;
  stale: number;
  pending: number;
  parked: number;
  /** missing and stale ids, at most AUDIT_MAX_IDS of them */
  ids: string[];
  /** new outbox rows written, and users skipped because an ingest held them (run it again) */
  redrive?: { written: number; busy: number };
}

export interface AuditArgs {
  scope: AuditScope;
  redrive: boolean;
  maxIds: number;
}

/** Statements take an id list in slices this large (one outbox scan each: it has no user_id index). */
const SLICE = 20_000;
const CASS_IN = 100;
const CASS_PARALLEL = 8;

interface Staged {
  id: string;
  outboxId?: bigint;
  state: "published" | "pending" | "parked" | "none";
}

/** A seed's user ids as the offline API serves them, pages 1..next_page-1 of its ingest cursor. */
async function seedIds(pg: Pool, seed: string, pageSize: number): Promise<string[]> {
  const r = await pg.query<{ next_page: number }>("SELECT next_page FROM ingest_cursor WHERE seed = $1", [seed]);
  const pages = (r.rows[0]?.next_page ?? 1) - 1;
  const ids: string[] = [];
  for (let p = 1; p <= pages; p++) {
    for (let i = 0; i < pageSize; i++) ids.push(generateUser(seed, p, i).login.uuid.toLowerCase());
  }
  return ids;
}

async function stagedUsers(pg: Pool, scope: AuditScope): Promise<Staged[]> {
  let ids: string[];
  if ("seed" in scope) {
    const all = await seedIds(pg, scope.seed, scope.pageSize);
    ids = [];
    for (let i = 0; i < all.length; i += SLICE) {
      const r = await pg.query<{ id: string }>("SELECT id::text FROM users WHERE id = ANY($1::uuid[])", [
        all.slice(i, i + SLICE),
      ]);
      ids.push(...r.rows.map((x) => x.id));
    }
  } else {
    const r = await pg.query<{ id: string }>("SELECT id::text FROM users WHERE updated_at >= $1 AND updated_at < $2", [
      scope.since,
      scope.until,
    ]);
    ids = r.rows.map((x) => x.id);
  }
  const out: Staged[] = [];
  for (let i = 0; i < ids.length; i += SLICE) {
    const slice = ids.slice(i, i + SLICE);
    const r = await pg.query<{ user_id: string; id: string; published: boolean; parked: boolean }>(
      // qualified: ORDER BY id would sort the text output column ('8' after '301')
      `SELECT DISTINCT ON (o.user_id) o.user_id::text AS user_id, o.id::text AS id,
              o.published_at IS NOT NULL AS published, o.parked_at IS NOT NULL AS parked
         FROM outbox o WHERE o.user_id = ANY($1::uuid[]) ORDER BY o.user_id, o.id DESC`,
      [slice],
    );
    const newest = new Map(r.rows.map((x) => [x.user_id, x]));
    for (const id of slice) {
      const o = newest.get(id);
      if (!o) out.push({ id, state: "none" });
      else {
        const state = o.parked ? "parked" : o.published ? "published" : "pending";
        out.push({ id, outboxId: BigInt(o.id), state });
      }
    }
  }
  return out;
}

/** id → the row's write time (µs), for the ids that have a row. */
async function writeTimes(cass: Client, ids: string[]): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  const q = `SELECT id, WRITETIME(first_name) AS wt FROM ${KEYSPACE}.${USERS_TABLE} WHERE id IN ?`;
  const slices: string[][] = [];
  for (let i = 0; i < ids.length; i += CASS_IN) slices.push(ids.slice(i, i + CASS_IN));
  let next = 0;
  const worker = async () => {
    while (next < slices.length) {
      const slice = slices[next++];
      const r = await cass.execute(q, [slice], { prepare: true, fetchSize: CASS_IN * 2 });
      for (const row of r.rows) out.set(String(row.id), BigInt(String(row.wt)));
    }
  };
  await Promise.all(Array.from({ length: CASS_PARALLEL }, worker));
  return out;
}

/**
 * A new version of each user, built from `users` as ingest builds it (the newest staged version),
 * in a new outbox row: its id, and so its write time, is above every version staged before. Each
 * row is locked first, so an ingest changing that user meanwhile either commits first (its version
 * is the one copied) or waits and gets the larger id; a row locked right now is skipped (`busy`),
 * never waited for (no deadlock with an ingest's page). Returns the rows written and the skipped.
 */
async function newVersions(pg: Pool, ids: string[]): Promise<{ written: number; busy: number }> {
  let written = 0;
  for (let i = 0; i < ids.length; i += SLICE) {
    const slice = ids.slice(i, i + SLICE);
    const r = await pg.query(
      `INSERT INTO outbox (user_id, bucket, payload)
       SELECT u.id, t.bucket, ${outboxPayloadSql("u")}
         FROM unnest($1::uuid[], $2::smallint[]) AS t(id, bucket) JOIN users u ON u.id = t.id
          FOR UPDATE OF u SKIP LOCKED`,
      [slice, slice.map((id) => keyBucket(id))],
    );
    written += r.rowCount ?? 0;
  }
  return { written, busy: ids.length - written };
}

export function describeScope(s: AuditScope): string {
  return "seed" in s
    ? `seed ${s.seed} (pages of ${s.pageSize})`
    : `staged from ${s.since.toISOString()} until ${s.until.toISOString()}`;
}

export async function runAudit(pg: Pool, cass: Client, a: AuditArgs): Promise<AuditReport> {
  const staged = await stagedUsers(pg, a.scope);
  const wt = await writeTimes(
    cass,
    staged.map((s) => s.id),
  );
  const rep: AuditReport = {
    scope: describeScope(a.scope),
    staged: staged.length,
    stored: 0,
    missing: 0,
    stale: 0,
    pending: 0,
    parked: 0,
    ids: [],
  };
  const redrive: string[] = [];
  for (const s of staged) {
    const have = wt.get(s.id);
    if (s.state === "pending") rep.pending++;
    else if (s.state === "parked") rep.parked++;
    else if (have === undefined || (s.outboxId !== undefined && have < OUTBOX_WRITETIME_BASE + s.outboxId)) {
      if (have === undefined) rep.missing++;
      else rep.stale++;
      if (rep.ids.length < a.maxIds) rep.ids.push(s.id);
      redrive.push(s.id);
    } else rep.stored++;
  }
  if (a.redrive) rep.redrive = await newVersions(pg, redrive);
  return rep;
}

/** `audit [--seed S | --since T --until T] [--redrive]`: the scope, or a usage error. */
export function parseAuditArgs(
  argv: string[],
  pageSize: number,
): { scope: AuditScope; redrive: boolean } | { error: string } {
  let seed: string | undefined;
  let since: string | undefined;
  let until: string | undefined;
  let redrive = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new Error(`${a} needs a value`);
      return v;
    };
    try {
      if (a === "--seed") seed = value();
      else if (a === "--since") since = value();
      else if (a === "--until") until = value();
      else if (a === "--redrive") redrive = true;
      else return { error: `unknown option ${a}` };
    } catch (e) {
      return { error: (e as Error).message };
    }
  }
  if (seed !== undefined) {
    if (since !== undefined || until !== undefined) return { error: "give --seed or --since/--until, not both" };
    return { scope: { seed, pageSize }, redrive };
  }
  if (since === undefined) return { error: "give --seed S, or --since T [--until T] (ISO 8601 times)" };
  const s = new Date(since);
  const u = until === undefined ? new Date() : new Date(until);
  const notATime = (flag: string, v: string) => ({
    error: `${flag} ${v} is not a time (ISO 8601, e.g. 2026-01-31T12:00:00Z)`,
  });
  if (Number.isNaN(s.getTime())) return notATime("--since", since);
  if (Number.isNaN(u.getTime())) return notATime("--until", until ?? "");
  if (u <= s) return { error: "--until must be after --since" };
  return { scope: { since: s, until: u }, redrive };
}

/** The report as a person reads it; the JSON line follows it on stdout. */
export function formatReport(r: AuditReport): string {
  const lines = [
    `audit of ${r.scope}: ${r.staged} staged, ${r.stored} stored, ${r.missing} missing, ${r.stale} stale ` +
      `(an older version), ${r.pending} pending (not published yet), ${r.parked} parked`,
  ];
  const bad = r.missing + r.stale;
  if (bad > 0) lines.push(`missing or stale ids (${r.ids.length} of ${bad}): ${r.ids.join(" ")}`);
  if (r.redrive) {
    lines.push(
      `re-driven: ${r.redrive.written} users in new outbox rows for the relay` +
        (r.redrive.busy > 0 ? `; ${r.redrive.busy} held by an ingest right now: audit again` : ""),
    );
  }
  return lines.join("\n");
}
