/**
 * After Cassandra starts (PasswordAuthenticator): makes sure role `pipeline` (superuser, login)
 * exists with $CASSANDRA_PASSWORD, and that the default `cassandra` superuser no longer has its
 * well-known password ($CASSANDRA_ADMIN_PASSWORD instead). Idempotent. Called by
 * scripts/services up; checks that the local data center is $CASSANDRA_LOCAL_DC.
 */
import { auth, Client } from "cassandra-driver";

const contactPoints = (process.env.CASSANDRA_CONTACT_POINTS ?? "127.0.0.1:9042").split(",");
const localDataCenter = process.env.CASSANDRA_LOCAL_DC ?? "datacenter1";
const password = process.env.CASSANDRA_PASSWORD ?? "";
const adminPassword = process.env.CASSANDRA_ADMIN_PASSWORD ?? "";
/** A ring (scripts/services --nodes N): system_auth replicated like the pipeline's keyspace, so a login survives a node down. */
const authRf = Number(process.env.CASSANDRA_AUTH_RF ?? "1");

async function login(user: string, pass: string): Promise<Client | undefined> {
  const client = new Client({
    contactPoints,
    localDataCenter,
    authProvider: new auth.PlainTextAuthProvider(user, pass),
  });
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.shutdown().catch(() => undefined);
    if (/authentication|credentials|password/i.test(String(err))) return undefined;
    throw err;
  }
}

/** system_auth already NetworkTopologyStrategy with `rf` replicas in the local data center (and no other). */
async function authReplicatedAs(client: Client, rf: number): Promise<boolean> {
  const rs = await client.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'system_auth'");
  const r = (rs.first()?.replication ?? {}) as Record<string, string>;
  const dcs = Object.keys(r).filter((k) => k !== "class");
  return /NetworkTopologyStrategy$/.test(r.class ?? "") && dcs.length === 1 && r[localDataCenter] === String(rf);
}

async function main(): Promise<void> {
  if (!password || !adminPassword) throw new Error("CASSANDRA_PASSWORD and CASSANDRA_ADMIN_PASSWORD are required");
  // The default superuser is created a moment after the native port opens: retry a little.
  let client: Client | undefined;
  let asPipeline = false;
  for (let attempt = 0; attempt < 30 && !client; attempt++) {
    client = await login("pipeline", password);
    asPipeline = client !== undefined;
    client ??= (await login("cassandra", adminPassword)) ?? (await login("cassandra", "cassandra"));
    if (!client) await new Promise((r) => setTimeout(r, 1000));
  }
  if (!client) throw new Error("cannot log in as pipeline, or as cassandra with its generated or default password");
  try {
    const q = { consistency: 1 /* ONE: a single node */ };
    // Only when it differs: an ALTER KEYSPACE is a schema change on every node even when it
    // changes nothing, and run at a restarted node's `up` it can stall the processor's writes.
    if (authRf > 1 && !(await authReplicatedAs(client, authRf))) {
      await client.execute(`ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', '${localDataCenter}': ${authRf}}`, [], q);
    }
    await client.execute(
      `CREATE ROLE IF NOT EXISTS pipeline WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = '${password}'`, [], q);
    if (!asPipeline) {
      // A role may not alter its own superuser status: only when logged in as cassandra.
      await client.execute(`ALTER ROLE pipeline WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = '${password}'`, [], q);
    }
    await client.execute(`ALTER ROLE cassandra WITH PASSWORD = '${adminPassword}'`, [], q);
    const rs = await client.execute("SELECT release_version, data_center FROM system.local");
    const row = rs.first();
    if (row.data_center !== localDataCenter) {
      throw new Error(`local data center is ${row.data_center}, expected ${localDataCenter}`);
    }
    process.stderr.write(`[cassandra-setup] Cassandra ${row.release_version}, dc ${row.data_center}: role pipeline ready\n`);
  } finally {
    await client.shutdown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[cassandra-setup] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
