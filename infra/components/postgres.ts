/**
 * PostgreSQL: the pipeline's staging/outbox database and Airflow's metadata database, one server,
 * two databases, two users. Airflow's user and database are made by an init script on first start
 * (the image runs /docker-entrypoint-initdb.d once, on an empty volume); its password comes in env.
 */
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "../catalog/settings";
import { ServiceHandle, Size, Target } from "../spec";

export const PIPELINE_DB = "pipeline";
export const AIRFLOW_DB = "airflow";

export interface PostgresArgs {
  target: Target;
  /** The postgres image, pinned. */
  image: string;
  size: Size;
  password: pulumi.Input<string>;
  airflowPassword: pulumi.Input<string>;
}

const AIRFLOW_INIT_SQL = `#!/bin/bash
set -euo pipefail
psql -v ON_ERROR_STOP=1 -v pw="$AIRFLOW_DB_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE ${AIRFLOW_DB} LOGIN PASSWORD :'pw';
CREATE DATABASE ${AIRFLOW_DB} OWNER ${AIRFLOW_DB};
SQL
`;

export class Postgres extends pulumi.ComponentResource {
  readonly server: ServiceHandle;
  readonly database = PIPELINE_DB;
  readonly user = PIPELINE_DB;
  readonly airflowDatabase = AIRFLOW_DB;
  readonly airflowUser = AIRFLOW_DB;

  constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Postgres", name, {}, opts);
    this.server = args.target.service(
      {
        name: "postgres",
        state: "stateful",
        image: args.image,
        env: { POSTGRES_USER: PIPELINE_DB, POSTGRES_DB: PIPELINE_DB, PGDATA: "/var/lib/postgresql/data/pgdata" },
        secretEnv: { POSTGRES_PASSWORD: args.password, AIRFLOW_DB_PASSWORD: args.airflowPassword },
        ports: { postgres: { container: PORTS.postgres } },
        // Over TCP: during initdb the image runs a socket-only server (and the init scripts, which
        // make the airflow role), and pg_isready on the socket would pass then.
        healthCheck: { command: ["pg_isready", "-h", "127.0.0.1", "-U", PIPELINE_DB, "-d", PIPELINE_DB] },
        // A fast shutdown (SIGINT, the image's own stop signal): SIGTERM alone waits for every client.
        stop: { command: ["bash", "-c", "kill -INT 1"], graceSeconds: 60 },
        volumes: [{ volume: "postgres-data", path: "/var/lib/postgresql/data" }],
        files: [{ path: "/docker-entrypoint-initdb.d/10-airflow.sh", content: AIRFLOW_INIT_SQL, executable: true }],
        ...args.size,
      },
      { parent: this, name },
    );
    this.registerOutputs({ address: this.server.address("postgres"), database: this.database, user: this.user });
  }
}
