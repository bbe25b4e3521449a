/**
 * The exporters Prometheus scrapes beside the processes that serve metrics themselves:
 * postgres_exporter (PostgreSQL's statistics, as the pg_monitor role), the Pushgateway (what a
 * batch run such as ingest pushes when it ends) and statsd_exporter (Airflow's StatsD metrics:
 * DAG run outcomes) and node_exporter on every machine (its filesystems, the host's root mounted
 * read-only). The JVMs' JMX exporter runs inside them (monitoring/jmx.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { IMAGE_USERS, PORTS } from "../catalog/settings";
import { statsdMappingConfig } from "../monitoring/statsd";
import { Dependency, ServiceHandle, ServiceSpec, Size, Target, wgetCheck } from "../spec";

const STATSD_MAPPING = "/etc/statsd-exporter/mapping.yml";

export interface ExportersArgs {
  target: Target;
  images: { postgresExporter: string; pushgateway: string; statsdExporter: string; nodeExporter: string };
  size: Size;
  /** The server postgres_exporter logs in to, as its monitor role, once the role exists. */
  postgres: {
    server: ServiceHandle;
    database: string;
    user: string;
    password: pulumi.Input<string>;
    dependsOn: Dependency[];
  };
}

export class Exporters extends pulumi.ComponentResource {
  readonly postgres: ServiceHandle;
  readonly pushgateway: ServiceHandle;
  readonly statsd: ServiceHandle;
  /** node_exporter, one per machine. */
  readonly node: ServiceHandle;
  /** Where a batch run pushes its metrics (http://host:port). */
  readonly pushgatewayUrl: string;
  /** host:port that Airflow sends StatsD (UDP) to. */
  readonly statsdAddress: { host: string; port: number };

  constructor(name: string, args: ExportersArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Exporters", name, {}, opts);
    const { target, images, size, postgres } = args;
    const owner = { parent: this, name };
    this.postgres = target.service(
      {
        name: "postgres-exporter",
        state: "stateless",
        image: images.postgresExporter,
        user: IMAGE_USERS.nobody,
        args: [`--web.listen-address=:${PORTS.postgresExporter}`],
        env: {
          DATA_SOURCE_URI: `${postgres.server.address("postgres")}/${postgres.database}?sslmode=disable`,
          DATA_SOURCE_USER: postgres.user,
        },
        secretEnv: { DATA_SOURCE_PASS: postgres.password },
        ports: { metrics: { container: PORTS.postgresExporter } },
        metrics: { port: "metrics" },
        healthCheck: wgetCheck(PORTS.postgresExporter, "/metrics"),
        dependsOn: postgres.dependsOn,
        ...size,
      },
      owner,
    );
    this.pushgateway = target.service(
      {
        name: "pushgateway",
        state: "stateless",
        image: images.pushgateway,
        user: IMAGE_USERS.nobody,
        args: [`--web.listen-address=:${PORTS.pushgateway}`],
        env: {},
        ports: { http: { container: PORTS.pushgateway } },
        metrics: { port: "http" },
        healthCheck: wgetCheck(PORTS.pushgateway, "/-/ready"),
        ...size,
      },
      owner,
    );
    this.statsd = target.service(
      {
        name: "statsd-exporter",
        state: "stateless",
        image: images.statsdExporter,
        user: IMAGE_USERS.nobody,
        args: [
          `--web.listen-address=:${PORTS.statsdExporter}`,
          `--statsd.listen-udp=:${PORTS.statsd}`,
          `--statsd.listen-tcp=:${PORTS.statsd}`,
          `--statsd.mapping-config=${STATSD_MAPPING}`,
        ],
        env: {},
        ports: { metrics: { container: PORTS.statsdExporter }, statsd: { container: PORTS.statsd } },
        metrics: { port: "metrics" },
        files: [{ path: STATSD_MAPPING, content: statsdMappingConfig() }],
        healthCheck: wgetCheck(PORTS.statsdExporter, "/-/ready"),
        ...size,
      },
      owner,
    );
    this.node = target.service(nodeExporter(images.nodeExporter, size), owner);
    this.pushgatewayUrl = `http://${this.pushgateway.address("http")}`;
    this.statsdAddress = { host: this.statsd.dnsName, port: PORTS.statsd };
    this.registerOutputs({
      pushgatewayUrl: this.pushgatewayUrl,
      statsd: `${this.statsdAddress.host}:${this.statsdAddress.port}`,
    });
  }
}

/** Where node_exporter sees the machine's root: its mounts are the machine's filesystems, claims' included. */
const HOST_ROOT = "/host";
/**
 * node_exporter's default mount-point exclusions, plus the files the engine binds into every
 * container (/etc/hosts...): each is a mount of the root filesystem and would report it again.
 */
const MOUNTS_EXCLUDE =
  "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+|etc/(hostname|hosts|resolv\\.conf))($|/)";

function nodeExporter(image: string, size: Size): ServiceSpec {
  return {
    name: "node-exporter",
    state: "stateless",
    everyMachine: true,
    image,
    user: IMAGE_USERS.nobody,
    args: [
      `--path.rootfs=${HOST_ROOT}`,
      `--web.listen-address=:${PORTS.nodeExporter}`,
      `--collector.filesystem.mount-points-exclude=${MOUNTS_EXCLUDE}`,
    ],
    env: {},
    hostPaths: [{ host: "/", path: HOST_ROOT }],
    ports: { metrics: { container: PORTS.nodeExporter } },
    metrics: { port: "metrics" },
    healthCheck: wgetCheck(PORTS.nodeExporter, "/metrics"),
    ...size,
  };
}
