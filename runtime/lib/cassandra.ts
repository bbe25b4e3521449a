/** cassandra-driver client from config, and the keyspace/table of the processor. */
import { auth, Client, policies, types } from "cassandra-driver";
import { KEYSPACE, USERS_TABLE } from "../contracts/names";
import type { CassandraConsistency } from "./config";
import { createLogger, type Logger } from "./logger";

export interface CassandraConfig {
  CASSANDRA_CONTACT_POINTS: string[];
  CASSANDRA_LOCAL_DC: string;
  CASSANDRA_USER?: string;
  CASSANDRA_PASSWORD?: string;
  /**
   * Consistency of every statement (default LOCAL_QUORUM): a majority of the local data center's
   * replicas acknowledge a write, so one node down loses no acknowledged write (RF 3) and with
   * RF 1 the quorum is the one node.
   */
  CASSANDRA_CONSISTENCY?: CassandraConsistency;
}

const CONSISTENCY: Record<CassandraConsistency, number> = {
  LOCAL_QUORUM: types.consistencies.localQuorum,
  QUORUM: types.consistencies.quorum,
  EACH_QUORUM: types.consistencies.eachQuorum,
  ALL: types.consistencies.all,
  LOCAL_ONE: types.consistencies.localOne,
  ONE: types.consistencies.one,
};

export function createCassandraClient(c: CassandraConfig, keyspace?: string): Client {
  return new Client({
    contactPoints: c.CASSANDRA_CONTACT_POINTS,
    localDataCenter: c.CASSANDRA_LOCAL_DC,
    keyspace,
    authProvider: c.CASSANDRA_USER
      ? new auth.PlainTextAuthProvider(c.CASSANDRA_USER, c.CASSANDRA_PASSWORD ?? "")
      : undefined,
    queryOptions: { consistency: CONSISTENCY[c.CASSANDRA_CONSISTENCY ?? "LOCAL_QUORUM"] },
    pooling: { coreConnectionsPerHost: { 0: 2, 1: 1, 2: 0 } },
    socketOptions: { readTimeout: 30_000, connectTimeout: 5_000 },
    // The default policy backs off exponentially up to 10 min: after Cassandra restarts, the
    // host stayed "down" for 9-47 s. Try every second instead (one local node per process).
    policies: { reconnection: new policies.reconnection.ConstantReconnectionPolicy(1_000) },
  });
}

/** Replicas per data center, by name: losing a rack or a node of one DC is what RF guards against. */
export function keyspaceCql(replicationFactor: number, dataCenter: string): string {
  return `CREATE KEYSPACE IF NOT EXISTS ${KEYSPACE} WITH replication = {'class': 'NetworkTopologyStrategy', '${dataCenter}': ${replicationFactor}}`;
}

/** Every field of user-created.avsc; timestamps as timestamp. */
export const USERS_TABLE_CQL = `CREATE TABLE IF NOT EXISTS ${KEYSPACE}.${USERS_TABLE} (
  id uuid PRIMARY KEY,
  first_name text,
  last_name text,
  gender text,
  address text,
  country text,
  post_code text,
  email text,
  username text,
  dob timestamp,
  registered_date timestamp,
  phone text,
  picture text,
  fetched_at timestamp
)`;

/** The commitlog_sync of the node that answers (system_views, Cassandra 4.0+); undefined if unknown. */
export async function commitlogSync(client: Client): Promise<string | undefined> {
  try {
    const r = await client.execute("SELECT value FROM system_views.settings WHERE name = 'commitlog_sync'");
    return (r.first()?.value as string | undefined) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * The keyspace and table, then a warning when the node acknowledges writes before its commitlog is
 * on disk (periodic, Cassandra's default): an ack is then not durable, and offsets committed after
 * it can point past rows a killed node never replays (cassandraSettings sets group mode).
 */
export async function ensureCassandraSchema(
  client: Client,
  replicationFactor: number,
  dataCenter: string,
  log?: Logger,
): Promise<void> {
  // CREATE KEYSPACE needs CREATE on all keyspaces, even with IF NOT EXISTS: the pipeline's role has
  // it on its own keyspace only, which the stacks' setup job makes. Only a missing one is created here.
  const exists = "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?";
  const ks = await client.execute(exists, [KEYSPACE], { prepare: true });
  if (ks.rowLength === 0) await client.execute(keyspaceCql(replicationFactor, dataCenter));
  await client.execute(USERS_TABLE_CQL);
  const sync = await commitlogSync(client);
  if (sync === "periodic") {
    const who = replicationFactor === 1 ? "its one replica loses" : "replicas that die together lose";
    (log ?? createLogger("cassandra")).warn(
      { commitlog_sync: sync, replicationFactor },
      `Cassandra acks writes before its commitlog is synced: ${who} acknowledged rows; set commitlog_sync: group`,
    );
  }
}
