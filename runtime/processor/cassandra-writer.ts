/** Upserts of users into spark_streams.created_users: prepared, bounded concurrency. */
import { concurrent, type Client } from "cassandra-driver";
import { KEYSPACE, USERS_TABLE } from "../contracts/names";
import { USER_CREATED_FIELDS, type UserCreated } from "../contracts/user-created";

export const INSERT_USER_CQL = `INSERT INTO ${KEYSPACE}.${USERS_TABLE} (${USER_CREATED_FIELDS.join(", ")}) VALUES (${USER_CREATED_FIELDS.map(() => "?").join(", ")})`;

export function userParams(u: UserCreated): unknown[] {
  return [
    u.id, u.first_name, u.last_name, u.gender, u.address, u.country, u.post_code, u.email, u.username,
    new Date(u.dob), new Date(u.registered_date), u.phone, u.picture, new Date(u.fetched_at),
  ];
}

/** Upsert all; resolves only when Cassandra acknowledged every row; rejects on the first failure. */
export async function writeUsers(client: Client, users: UserCreated[], concurrencyLevel: number): Promise<void> {
  if (users.length === 0) return;
  // the same id twice in one round: keep the last (the latest offset), writes run concurrently
  const last = new Map<string, UserCreated>();
  for (const u of users) last.set(u.id, u);
  await concurrent.executeConcurrent(client, INSERT_USER_CQL, [...last.values()].map(userParams), { concurrencyLevel } /* always prepared */);
}
