/**
 * Airflow (LocalExecutor) on its own PostgreSQL database: a one-shot job that migrates the
 * database and creates the admin user (the official image's _AIRFLOW_DB_MIGRATE and
 * _AIRFLOW_WWW_USER_* switches), then the webserver and the scheduler. The image (images/airflow)
 * carries the DAG, which runs the TypeScript ingest worker; so Airflow also gets the ingest env.
 */
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "../catalog/settings";
import { Dependency, EnvGroup, JobHandle, ProcessSpec, ServiceHandle, Size, Target, merge } from "../spec";

export const AIRFLOW_ADMIN_USER = "admin";
const SCHEDULER_HEALTH_PORT = 8974;

export interface AirflowArgs {
  target: Target;
  /** The Airflow version the image is built on, and the project's image tag. */
  version: string;
  imageTag: string;
  /** The DAG's schedule: cron, a preset, or none. */
  schedule: string;
  /** Where the webserver is published outside the stack. */
  publishedWeb: number;
  sizes: { init: Size; webserver: Size; scheduler: Size };
  /** Airflow's own database: the server, the job that makes its role (to wait for), the database and its user. */
  database: { server: ServiceHandle; roles: JobHandle; name: string; user: string };
  dbPassword: pulumi.Input<string>;
  adminPassword: pulumi.Input<string>;
  fernetKey: pulumi.Input<string>;
  webserverSecretKey: pulumi.Input<string>;
  /** Env of the ingest worker that the DAG starts. */
  ingestEnv: EnvGroup[];
  /** What the DAG's runs need up (the data source, the database). */
  dependsOn: Dependency[];
  /** The worker image: the Airflow image copies its bundle, so the DAG runs the very same build. */
  workersImage: pulumi.Input<string>;
  /** Build args every project image gets (the build's CA certificates). */
  buildArgs: Record<string, string>;
  /** Where Airflow sends its StatsD metrics (statsd_exporter); absent: it sends none. */
  statsd?: { host: string; port: number; prefix: string };
}

export class Airflow extends pulumi.ComponentResource {
  readonly image: pulumi.Output<string>;
  readonly init: JobHandle;
  readonly webserver: ServiceHandle;
  readonly scheduler: ServiceHandle;
  readonly adminUser = AIRFLOW_ADMIN_USER;

  constructor(name: string, args: AirflowArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Airflow", name, {}, opts);
    const { target, database, sizes } = args;
    const owner = { parent: this, name };
    this.image = target.image(
      {
        name: "airflow",
        context: ".",
        dockerfile: "images/airflow/Dockerfile",
        tag: `${args.version}-${args.imageTag}`,
        args: { ...args.buildArgs, AIRFLOW_VERSION: args.version, WORKERS_IMAGE: args.workersImage },
      },
      owner,
    );
    const db = database.server.address("postgres");
    const airflow: EnvGroup = {
      env: {
        AIRFLOW__CORE__EXECUTOR: "LocalExecutor",
        AIRFLOW__CORE__LOAD_EXAMPLES: "False",
        // The DAG runs as soon as it is deployed: no manual unpause step.
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION: "False",
        AIRFLOW__WEBSERVER__EXPOSE_CONFIG: "False",
        // Gunicorn's default of 4 workers does not fit the webserver's memory limit.
        AIRFLOW__WEBSERVER__WORKERS: "2",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK: "True",
        // The REST API with the admin's login (basic auth), as the official compose file sets it:
        // the default (session only) answers 401 to every client but the browser.
        AIRFLOW__API__AUTH_BACKENDS: "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
        // Read by the DAG (images/airflow/dags/user_automation.py).
        USER_AUTOMATION_SCHEDULE: args.schedule,
        ...(args.statsd
          ? {
              AIRFLOW__METRICS__STATSD_ON: "True",
              AIRFLOW__METRICS__STATSD_HOST: args.statsd.host,
              AIRFLOW__METRICS__STATSD_PORT: String(args.statsd.port),
              AIRFLOW__METRICS__STATSD_PREFIX: args.statsd.prefix,
            }
          : {}),
      },
      secret: {
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: pulumi.interpolate`postgresql+psycopg2://${database.user}:${args.dbPassword}@${db}/${database.name}`,
        AIRFLOW__CORE__FERNET_KEY: args.fernetKey,
        AIRFLOW__WEBSERVER__SECRET_KEY: args.webserverSecretKey,
      },
    };
    const logs = { volume: "airflow-logs", path: "/opt/airflow/logs", shared: true };
    const spec = (name: string, size: Size): Omit<ProcessSpec, "ports"> => ({
      name,
      image: this.image,
      ...merge(airflow, ...args.ingestEnv),
      volumes: [logs],
      // The Airflow image runs as uid 50000 in group 0.
      volumeGroup: 0,
      ...size,
    });

    this.init = target.job(
      {
        ...spec("airflow-init", sizes.init),
        args: ["version"],
        env: {
          ...airflow.env,
          _AIRFLOW_DB_MIGRATE: "true",
          _AIRFLOW_WWW_USER_CREATE: "true",
          _AIRFLOW_WWW_USER_USERNAME: AIRFLOW_ADMIN_USER,
        },
        secretEnv: { ...airflow.secret, _AIRFLOW_WWW_USER_PASSWORD: args.adminPassword },
        ports: {},
        dependsOn: [{ on: database.roles, condition: "completed" }],
      },
      owner,
    );
    const afterInit: Dependency[] = [{ on: this.init, condition: "completed" }, ...args.dependsOn];
    this.webserver = target.service(
      {
        ...spec("airflow-webserver", sizes.webserver),
        state: "stateless",
        args: ["webserver"],
        ports: { http: { container: PORTS.airflowWeb, published: args.publishedWeb } },
        healthCheck: {
          command: ["curl", "-fsS", `http://localhost:${PORTS.airflowWeb}/health`],
          startPeriodSeconds: 60,
        },
        dependsOn: afterInit,
      },
      owner,
    );
    this.scheduler = target.service(
      {
        ...spec("airflow-scheduler", sizes.scheduler),
        state: "stateless",
        args: ["scheduler"],
        ports: { health: { container: SCHEDULER_HEALTH_PORT } },
        healthCheck: {
          command: ["curl", "-fsS", `http://localhost:${SCHEDULER_HEALTH_PORT}/health`],
          startPeriodSeconds: 60,
        },
        dependsOn: afterInit,
      },
      owner,
    );
    this.registerOutputs({
      image: this.image,
      webPublished: this.webserver.outsideAddress("http"),
      adminUser: AIRFLOW_ADMIN_USER,
    });
  }
}
