/**
 * The databases' roles and what each may do, as SQL and CQL: plain data, no Pulumi. The stacks'
 * role jobs (components/postgres.ts, components/cassandra.ts) and the local services
 * (scripts/services.d/postgres.sh, scripts/cassandra-setup.ts) run these very statements, so every
 * ring tests the roles that are deployed.
 */
import { KEYSPACE } from "../../runtime/contracts/names";

export const PIPELINE_DB = "pipeline";
export const AIRFLOW_DB = "airflow";
/** The server's superuser (POSTGRES_USER on a fresh volume); the roles job's login, never an output. */
export const POSTGRES_ADMIN = "postgres";
/** Other teams' role: CONNECT to the pipeline database, SELECT on its tables, nothing else. */
export const POSTGRES_READER = "pipeline_reader";
/** Prometheus's postgres_exporter: pg_monitor (the server's statistics views), no table of ours. */
export const POSTGRES_MONITOR = "pipeline_monitor";
/**
 * Where a volume made before the roles job keeps its bootstrap superuser: it was `pipeline`
 * (POSTGRES_USER), and PostgreSQL never takes SUPERUSER from the bootstrap role (oid 10), so the
 * job renames it, locks it and hands its objects to a new `pipeline` role.
 */
export const FORMER_BOOTSTRAP = "pipeline_bootstrap";

/** The pipeline's Cassandra role: SELECT, MODIFY and CREATE (its tables) on its keyspace, no more. */
export const CASSANDRA_USER = "pipeline";
/** The setup role, a superuser: makes the keyspace and the roles; the role job's login, never an output. */
export const CASSANDRA_ADMIN = "pipeline_admin";
/** Other teams' role: SELECT on the keyspace. */
export const CASSANDRA_READER = "pipeline_reader";

/** Creates a role when missing (CREATE ROLE has no IF NOT EXISTS). */
const ensureRole = (r: string) =>
  `SELECT 'CREATE ROLE ${r}'\n  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${r}')\\gexec`;
const LOGIN_ONLY = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
/** Every table privilege but SELECT. */
const PG_WRITES = "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER";

/**
 * psql as the superuser, on database postgres then pipeline, idempotent. Passwords come from env
 * (PG_PIPELINE_PASSWORD, PG_AIRFLOW_PASSWORD, PG_READER_PASSWORD, PG_MONITOR_PASSWORD) by \\getenv,
 * never argv.
 */
export const postgresRolesSql = () => `\\getenv pipeline_pw PG_PIPELINE_PASSWORD
\\getenv airflow_pw PG_AIRFLOW_PASSWORD
\\getenv reader_pw PG_READER_PASSWORD
\\getenv monitor_pw PG_MONITOR_PASSWORD
SELECT 'ALTER ROLE ${PIPELINE_DB} RENAME TO ${FORMER_BOOTSTRAP}'
  FROM pg_roles WHERE rolname = '${PIPELINE_DB}' AND oid = 10\\gexec
SELECT 'ALTER ROLE ${FORMER_BOOTSTRAP} NOLOGIN PASSWORD NULL' FROM pg_roles WHERE rolname = '${FORMER_BOOTSTRAP}'\\gexec
${ensureRole(PIPELINE_DB)}
ALTER ROLE ${PIPELINE_DB} WITH ${LOGIN_ONLY} PASSWORD :'pipeline_pw';
${ensureRole(AIRFLOW_DB)}
ALTER ROLE ${AIRFLOW_DB} WITH ${LOGIN_ONLY} PASSWORD :'airflow_pw';
${ensureRole(POSTGRES_READER)}
ALTER ROLE ${POSTGRES_READER} WITH ${LOGIN_ONLY} PASSWORD :'reader_pw';
${ensureRole(POSTGRES_MONITOR)}
ALTER ROLE ${POSTGRES_MONITOR} WITH ${LOGIN_ONLY} PASSWORD :'monitor_pw';
GRANT pg_monitor TO ${POSTGRES_MONITOR};
SELECT 'CREATE DATABASE ${AIRFLOW_DB} OWNER ${AIRFLOW_DB}'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '${AIRFLOW_DB}')\\gexec
ALTER DATABASE ${PIPELINE_DB} OWNER TO ${PIPELINE_DB};
ALTER DATABASE ${AIRFLOW_DB} OWNER TO ${AIRFLOW_DB};
-- PUBLIC may connect to any database and make temporary tables there by default: each database is its roles' only.
REVOKE ALL ON DATABASE ${PIPELINE_DB} FROM PUBLIC;
REVOKE ALL ON DATABASE ${AIRFLOW_DB} FROM PUBLIC;
GRANT CONNECT ON DATABASE ${PIPELINE_DB} TO ${POSTGRES_READER};
GRANT CONNECT ON DATABASE ${PIPELINE_DB} TO ${POSTGRES_MONITOR};
\\connect ${PIPELINE_DB}
-- A former bootstrap role's tables (their serial sequences follow), then any sequence left.
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relowner = 10 AND c.relkind IN ('r', 'p') LOOP
    EXECUTE format('ALTER TABLE public.%I OWNER TO ${PIPELINE_DB}', r.relname);
  END LOOP;
  FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relowner = 10 AND c.relkind = 'S' LOOP
    EXECUTE format('ALTER SEQUENCE public.%I OWNER TO ${PIPELINE_DB}', r.relname);
  END LOOP;
END $$;
-- The reader: SELECT and no more, also where a hand or an older job granted more.
REVOKE CREATE ON SCHEMA public FROM ${POSTGRES_READER};
GRANT USAGE ON SCHEMA public TO ${POSTGRES_READER};
REVOKE ${PG_WRITES} ON ALL TABLES IN SCHEMA public FROM ${POSTGRES_READER};
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${POSTGRES_READER};
REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA public FROM ${POSTGRES_READER};
ALTER DEFAULT PRIVILEGES FOR ROLE ${PIPELINE_DB} IN SCHEMA public REVOKE ${PG_WRITES} ON TABLES FROM ${POSTGRES_READER};
ALTER DEFAULT PRIVILEGES FOR ROLE ${PIPELINE_DB} IN SCHEMA public GRANT SELECT ON TABLES TO ${POSTGRES_READER};
`;

const replication = (rf: number, dc: string) => `{'class': 'NetworkTopologyStrategy', '${dc}': ${rf}}`;
/** A ring: system_auth replicated like the keyspace, before any role is made (also the admin, by its maker). */
export const cassandraAuthReplicationCql = (rf: number, dc: string) =>
  rf === 1 ? [] : [`ALTER KEYSPACE system_auth WITH replication = ${replication(rf, dc)};`];

/**
 * What the admin role runs each time the job runs (every statement idempotent). The pipeline's
 * permissions are on its keyspace only; a role that made spark_streams as a superuser (before this
 * job) held every permission on it, so the ones it does not need are revoked (the reader's too,
 * whoever gave them). system_auth is replicated like the keyspace before the roles are made (a
 * role on one node is a login that fails while it is down). Each %s is a password, in order: the
 * pipeline's twice, the reader's twice, cassandra's.
 */
export function cassandraRolesCql(rf: number, dc: string): string[] {
  const nts = replication(rf, dc);
  const ks = `KEYSPACE ${KEYSPACE}`;
  return [
    ...cassandraAuthReplicationCql(rf, dc),
    `CREATE KEYSPACE IF NOT EXISTS ${KEYSPACE} WITH replication = ${nts};`,
    `CREATE ROLE IF NOT EXISTS ${CASSANDRA_USER} WITH PASSWORD = '%s' AND LOGIN = true AND SUPERUSER = false;`,
    `ALTER ROLE ${CASSANDRA_USER} WITH PASSWORD = '%s' AND LOGIN = true AND SUPERUSER = false;`,
    ...["SELECT", "MODIFY", "CREATE"].map((p) => `GRANT ${p} ON ${ks} TO ${CASSANDRA_USER};`),
    ...["ALTER", "DROP", "AUTHORIZE"].map((p) => `REVOKE ${p} ON ${ks} FROM ${CASSANDRA_USER};`),
    // The processor reads the node's commitlog_sync to warn when an ack is not durable (periodic sync).
    `GRANT SELECT ON TABLE system_views.settings TO ${CASSANDRA_USER};`,
    `CREATE ROLE IF NOT EXISTS ${CASSANDRA_READER} WITH PASSWORD = '%s' AND LOGIN = true AND SUPERUSER = false;`,
    `ALTER ROLE ${CASSANDRA_READER} WITH PASSWORD = '%s' AND LOGIN = true AND SUPERUSER = false;`,
    `GRANT SELECT ON ${ks} TO ${CASSANDRA_READER};`,
    ...["MODIFY", "CREATE", "ALTER", "DROP", "AUTHORIZE"].map((p) => `REVOKE ${p} ON ${ks} FROM ${CASSANDRA_READER};`),
    `ALTER ROLE cassandra WITH PASSWORD = '%s' AND SUPERUSER = false AND LOGIN = false;`,
  ];
}
