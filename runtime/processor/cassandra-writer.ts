/** Upserts of users into spark_streams.created_users: prepared, bounded concurrency. */
import { concurrent, types, type Client } from "cassandra-driver";
import { KEYSPACE, USERS_TABLE } from "../contracts/names";
import { USER_CREATED_FIELDS, type UserCreated } from "../contracts/user-created";

export const INSERT_USER_CQL = `INSERT INTO ${KEYSPACE}.${USERS_TABLE} (${USER_CREATED_FIELDS.join(", ")}) VALUES (${USER_CREATED_FIELDS.map(() => "?").join(", ")})`;
/** The same with the write time of the version (write-time.ts): last write wins by outbox id. */
export const INSERT_USER_AT_CQL = `${INSERT_USER_CQL} USING TIMESTAMP ?`;

/** A user to store, and its write time in µs when it came from the outbox (else the driver's clock). */
export interface UserWrite {
  user: UserCreated;
  writeTime?: bigint;
}

export function userParams(u: UserCreated): unknown[] {
  return [
    u.id,
    u.first_name,
    u.last_name,
    u.gender,
    u.address,
    u.country,
    u.post_code,
    u.email,
    u.username,
    new Date(u.dob),
    new Date(u.registered_date),
    u.phone,
    u.picture,
    new Date(u.fetched_at),
  ];
}

/** The statement and parameters of one write: with its write time when it has one. */
export function userWrite(w: UserWrite): { query: string; params: unknown[] } {
  return w.writeTime === undefined
    ? { query: INSERT_USER_CQL, params: userParams(w.user) }
    : { query: INSERT_USER_AT_CQL, params: [...userParams(w.user), types.Long.fromString(w.writeTime.toString())] };
}

/**
 * Upsert all; resolves only when Cassandra acknowledged every row; rejects on the first failure.
 * An ack is durable only where the commitlog is synced before it (group or batch commitlog_sync,
 * cassandraSettings): the caller commits offsets after this, and counts the rows as stored.
 */
export async function writeUsers(client: Client, writes: UserWrite[], concurrencyLevel: number): Promise<void> {
  if (writes.length === 0) return;
  // the same id twice in one round: one write, the latest version (highest write time; else the
  // later offset): the writes of a round run concurrently
  const last = new Map<string, UserWrite>();
  for (const w of writes) {
    const prev = last.get(w.user.id);
    if (!prev || prev.writeTime === undefined || (w.writeTime !== undefined && w.writeTime >= prev.writeTime))
      last.set(w.user.id, w);
  }
  const queries = [...last.values()].map(userWrite);
  await concurrent.executeConcurrent(client, queries, { concurrencyLevel } /* always prepared */);
}
