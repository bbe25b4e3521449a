/**
 * After Cassandra starts (PasswordAuthenticator, CassandraAuthorizer): the roles and the keyspace
 * the stacks' cassandra-auth job makes, by the same statements (infra/catalog/db-roles.ts). The
 * setup role pipeline_admin ($CASSANDRA_ADMIN_PASSWORD) is made first, by the default superuser
 * (cassandra/cassandra the first time, or its generated $CASSANDRA_DEFAULT_PASSWORD) or, on a data
 * directory from before, by role pipeline (a superuser then); as pipeline_admin: keyspace
 * spark_streams, pipeline ($CASSANDRA_PASSWORD, no superuser), pipeline_reader
 * ($CASSANDRA_READER_PASSWORD, SELECT), cassandra disabled. Idempotent. Called by scripts/services
 * up; checks that the local data center is $CASSANDRA_LOCAL_DC.
 */
import { auth, Client } from "cassandra-driver";
import {
  CASSANDRA_ADMIN,
  CASSANDRA_USER,
  cassandraAuthReplicationCql,
  cassandraRolesCql,
} from "../infra/catalog/db-roles";

const contactPoints = (process.env.CASSANDRA_CONTACT_POINTS ?? "127.0.0.1:9042").split(",");
const localDataCenter = process.env.CASSANDRA_LOCAL_DC ?? "datacenter1";
const passwords = {
  pipeline: process.env.CASSANDRA_PASSWORD ?? "",
  admin: process.env.CASSANDRA_ADMIN_PASSWORD ?? "",
  reader: process.env.CASSANDRA_READER_PASSWORD ?? "",
  default: process.env.CASSANDRA_DEFAULT_PASSWORD ?? "",
};
/** A ring (scripts/services --nodes N): system_auth and the keyspace replicated N ways (at most 3). */
const rf = Number(process.env.CASSANDRA_AUTH_RF ?? "1");
const q = { consistency: 1 /* ONE: whichever node answers */ };

async function login(user: string, pass: string): Promise<Client | undefined> {
  const authProvider = new auth.PlainTextAuthProvider(user, pass);
  const client = new Client({ contactPoints, localDataCenter, authProvider });
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.shutdown().catch(() => undefined);
    if (/authentication|credentials|password|not permitted to log in/i.test(String(err))) return undefined;
    throw err;
  }
}

/** system_auth already NetworkTopologyStrategy with `rf` replicas in the local data center (and no other). */
async function authReplicatedAs(client: Client, n: number): Promise<boolean> {
  const rs = await client.execute(
    "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'system_auth'",
  );
  const r = (rs.first()?.replication ?? {}) as Record<string, string>;
  const dcs = Object.keys(r).filter((k) => k !== "class");
  return /NetworkTopologyStrategy$/.test(r.class ?? "") && dcs.length === 1 && r[localDataCenter] === String(n);
}

/**
 * The statements, less system_auth's ALTER when it is replicated already: an ALTER KEYSPACE is a
 * schema change on every node even when it changes nothing, and run at a restarted node's `up` it
 * can stall the processor's writes.
 */
async function run(client: Client, statements: string[]): Promise<void> {
  const skipAuthRf = rf === 1 || (await authReplicatedAs(client, rf));
  const authRf = new Set(cassandraAuthReplicationCql(rf, localDataCenter));
  for (const s of statements) if (!(skipAuthRf && authRf.has(s))) await client.execute(s, [], q);
}

/** The %s of the statements, in order (db-roles.ts: the pipeline's twice, the reader's twice, cassandra's). */
function fill(statements: string[], values: string[]): string[] {
  let i = 0;
  return statements.map((s) => s.replace(/%s/g, () => values[i++]));
}

/**
 * The default role, or pipeline where it was a superuser before, makes the admin. The default
 * superuser appears a moment after CQL does: retried.
 */
async function makeAdmin(): Promise<void> {
  let maker: Client | undefined;
  for (let attempt = 0; attempt < 30 && !maker; attempt++) {
    maker =
      (await login(CASSANDRA_USER, passwords.pipeline)) ??
      (await login("cassandra", passwords.default)) ??
      (await login("cassandra", "cassandra"));
    if (!maker) await new Promise((r) => setTimeout(r, 1000));
  }
  if (!maker) {
    throw new Error(`cannot log in as ${CASSANDRA_ADMIN}, nor as ${CASSANDRA_USER} or cassandra to make it`);
  }
  try {
    await run(maker, [
      ...cassandraAuthReplicationCql(rf, localDataCenter),
      `CREATE ROLE IF NOT EXISTS ${CASSANDRA_ADMIN} WITH PASSWORD = '${passwords.admin}' AND LOGIN = true
         AND SUPERUSER = true`,
    ]);
  } finally {
    await maker.shutdown();
  }
}

async function main(): Promise<void> {
  const missing = Object.entries(passwords)
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length) {
    const vars = "CASSANDRA_PASSWORD, CASSANDRA_ADMIN_PASSWORD, CASSANDRA_READER_PASSWORD, CASSANDRA_DEFAULT_PASSWORD";
    throw new Error(`passwords missing (${missing.join(", ")}): set ${vars}`);
  }
  let client = await login(CASSANDRA_ADMIN, passwords.admin);
  if (!client) {
    await makeAdmin();
    client = await login(CASSANDRA_ADMIN, passwords.admin);
    if (!client) throw new Error(`${CASSANDRA_ADMIN} was made but cannot log in`);
  }
  try {
    const p = passwords;
    const statements = cassandraRolesCql(rf, localDataCenter);
    await run(client, fill(statements, [p.pipeline, p.pipeline, p.reader, p.reader, p.default]));
    const row = (await client.execute("SELECT release_version, data_center FROM system.local")).first();
    if (row.data_center !== localDataCenter) {
      throw new Error(`local data center is ${row.data_center}, expected ${localDataCenter}`);
    }
    const who = `roles ready, none a superuser but ${CASSANDRA_ADMIN}`;
    process.stderr.write(`[cassandra-setup] Cassandra ${row.release_version}, dc ${row.data_center}: ${who}\n`);
  } finally {
    await client.shutdown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[cassandra-setup] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
