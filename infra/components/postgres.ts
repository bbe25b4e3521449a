/**
 * PostgreSQL: one server, the pipeline's staging/outbox database and Airflow's metadata database,
 * each owned by its own role, neither role a superuser. The image's superuser is `postgres`; only
 * the roles job logs in with it. The job is idempotent and runs again whenever it changes (a
 * password, the image): it makes the roles (pipeline, airflow, the read-only pipeline_reader for
 * other teams), sets their passwords, and gives each database to its role.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  AIRFLOW_DB,
  PIPELINE_DB,
  POSTGRES_ADMIN,
  POSTGRES_MONITOR,
  POSTGRES_READER,
  postgresRolesSql,
} from "../catalog/db-roles";
import { PORTS } from "../catalog/settings";
import { JobHandle, ServiceHandle, Size, Target } from "../spec";

export { AIRFLOW_DB, PIPELINE_DB, POSTGRES_ADMIN, POSTGRES_MONITOR, POSTGRES_READER } from "../catalog/db-roles";

export interface PostgresArgs {
  target: Target;
  /** The postgres image, pinned. */
  image: string;
  sizes: { server: Size; roles: Size };
  password: pulumi.Input<string>;
  adminPassword: pulumi.Input<string>;
  airflowPassword: pulumi.Input<string>;
  readerPassword: pulumi.Input<string>;
  monitorPassword: pulumi.Input<string>;
}

/**
 * The roles job. A fresh volume's superuser is postgres; a volume from before has only its
 * bootstrap role pipeline, which first makes postgres (postgresRolesSql then moves it aside).
 */
const ROLES_SCRIPT = `set -eu
as() { PGPASSWORD="$2" psql -X -q -v ON_ERROR_STOP=1 -U "$1" -d postgres; }
if ! echo 'SELECT 1' | as ${POSTGRES_ADMIN} "$PG_ADMIN_PASSWORD" >/dev/null 2>&1; then
  echo "postgres-roles: no ${POSTGRES_ADMIN} login; a volume from before: ${PIPELINE_DB} makes it"
  printf '%s\\n' '\\getenv pw PG_ADMIN_PASSWORD' "CREATE ROLE ${POSTGRES_ADMIN} SUPERUSER LOGIN PASSWORD :'pw';" \\
    | as ${PIPELINE_DB} "$PG_PIPELINE_PASSWORD"
fi
as ${POSTGRES_ADMIN} "$PG_ADMIN_PASSWORD" <<'SQL'
${postgresRolesSql()}SQL
echo "postgres-roles: ${PIPELINE_DB}, ${AIRFLOW_DB}, ${POSTGRES_READER}, ${POSTGRES_MONITOR} ready, none a superuser"
`;

export class Postgres extends pulumi.ComponentResource {
  readonly server: ServiceHandle;
  /** Job: the roles exist with their passwords; every client waits for it. */
  readonly roles: JobHandle;
  readonly database = PIPELINE_DB;
  readonly user = PIPELINE_DB;
  readonly readerUser = POSTGRES_READER;
  /** postgres_exporter's login. */
  readonly monitorUser = POSTGRES_MONITOR;
  readonly airflowDatabase = AIRFLOW_DB;
  readonly airflowUser = AIRFLOW_DB;

  constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Postgres", name, {}, opts);
    this.server = args.target.service(
      {
        name: "postgres",
        state: "stateful",
        image: args.image,
        env: { POSTGRES_USER: POSTGRES_ADMIN, POSTGRES_DB: PIPELINE_DB, PGDATA: "/var/lib/postgresql/data/pgdata" },
        secretEnv: { POSTGRES_PASSWORD: args.adminPassword },
        ports: { postgres: { container: PORTS.postgres } },
        // Over TCP: during initdb the image runs a socket-only server, and pg_isready on the socket would pass then.
        healthCheck: { command: ["pg_isready", "-h", "127.0.0.1", "-U", POSTGRES_ADMIN, "-d", PIPELINE_DB] },
        // A fast shutdown (SIGINT, the image's own stop signal): SIGTERM alone waits for every client.
        stop: { command: ["bash", "-c", "kill -INT 1"], graceSeconds: 60 },
        volumes: [{ volume: "postgres-data", path: "/var/lib/postgresql/data" }],
        ...args.sizes.server,
      },
      { parent: this, name },
    );
    this.roles = args.target.job(
      {
        name: "postgres-roles",
        image: args.image,
        args: ["bash", "-c", ROLES_SCRIPT],
        env: { PGHOST: this.server.dnsName, PGPORT: String(PORTS.postgres) },
        secretEnv: {
          PG_ADMIN_PASSWORD: args.adminPassword,
          PG_PIPELINE_PASSWORD: args.password,
          PG_AIRFLOW_PASSWORD: args.airflowPassword,
          PG_READER_PASSWORD: args.readerPassword,
          PG_MONITOR_PASSWORD: args.monitorPassword,
        },
        ports: {},
        dependsOn: [{ on: this.server, condition: "healthy" }],
        ...args.sizes.roles,
      },
      { parent: this, name },
    );
    const address = this.server.address("postgres");
    this.registerOutputs({ address, database: this.database, user: this.user, reader: this.readerUser });
  }
}
