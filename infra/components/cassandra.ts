/**
 * Cassandra with PasswordAuthenticator: the node, then a job that creates the pipeline's role with
 * a generated password and disables the image's well-known cassandra/cassandra superuser. The job
 * is idempotent: when the pipeline role already logs in it does nothing.
 */
import * as pulumi from "@pulumi/pulumi";
import { StageConfig, memoryMiB } from "../config";
import { PORTS, cassandraSettings } from "../catalog/settings";
import { cassandraAuthCommand, cassandraEnv, upstreamImages } from "../catalog/images";
import { KEYSPACE } from "../../runtime/contracts/names";
import { JobHandle, ServiceHandle, Target } from "../spec";

export const CASSANDRA_USER = "pipeline";
export const CASSANDRA_DC = "dc1";

export interface CassandraArgs {
  target: Target;
  config: StageConfig;
  password: pulumi.Input<string>;
  defaultUserPassword: pulumi.Input<string>;
}

const AUTH_SCRIPT = `set -eu
cq() { cqlsh cassandra ${PORTS.cassandra} "$@"; }
if cq -u "$CASSANDRA_USER" -p "$CASSANDRA_PASSWORD" -e 'SELECT release_version FROM system.local' >/dev/null 2>&1; then exit 0; fi
cq -u cassandra -p cassandra -e "CREATE ROLE IF NOT EXISTS $CASSANDRA_USER WITH PASSWORD = '$CASSANDRA_PASSWORD' AND LOGIN = true AND SUPERUSER = true"
cq -u "$CASSANDRA_USER" -p "$CASSANDRA_PASSWORD" -e "ALTER ROLE cassandra WITH PASSWORD = '$CASSANDRA_DEFAULT_PASSWORD' AND SUPERUSER = false AND LOGIN = false"
`;

export class Cassandra extends pulumi.ComponentResource {
  readonly node: ServiceHandle;
  /** Job: the pipeline role exists; clients wait for it. */
  readonly auth: JobHandle;
  readonly user = CASSANDRA_USER;
  readonly localDc = CASSANDRA_DC;
  readonly keyspace = KEYSPACE;

  constructor(name: string, args: CassandraArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Cassandra", name, {}, opts);
    const { target, config } = args;
    const image = upstreamImages(config).cassandra;
    const settings = cassandraSettings({
      clusterName: "realtime-pipeline",
      seeds: "cassandra",
      listenAddress: "cassandra",
      rpcAddress: "0.0.0.0",
      dataDir: "/var/lib/cassandra",
    });
    // Half the container limit for the heap; the rest is off-heap memory and page cache.
    const heapMiB = Math.floor(memoryMiB(config.memory.cassandra) / 2);
    this.node = target.service(
      {
        name: "cassandra",
        state: "stateful",
        image,
        args: cassandraAuthCommand(settings),
        env: { ...cassandraEnv(settings, CASSANDRA_DC), MAX_HEAP_SIZE: `${heapMiB}M`, HEAP_NEWSIZE: `${Math.floor(heapMiB / 4)}M` },
        ports: { cql: { container: settings.native_transport_port, host: config.ports.cassandra }, storage: { container: settings.storage_port } },
        healthCheck: { test: ["CMD-SHELL", "nodetool status | grep -q '^UN'"], intervalSeconds: 15, timeoutSeconds: 30, startPeriodSeconds: 90 },
        volumes: [{ volume: "cassandra-data", path: "/var/lib/cassandra" }],
        memory: config.memory.cassandra,
      },
      this,
    );
    this.auth = target.job(
      {
        name: "cassandra-auth",
        image,
        args: ["bash", "-c", AUTH_SCRIPT],
        env: { CASSANDRA_USER },
        secretEnv: { CASSANDRA_PASSWORD: args.password, CASSANDRA_DEFAULT_PASSWORD: args.defaultUserPassword },
        ports: {},
        dependsOn: [{ on: this.node, condition: "healthy" }],
        memory: config.memory.cassandraAuth,
      },
      this,
    );
    this.registerOutputs({ contactPoint: this.node.address("cql"), published: this.node.published("cql"), keyspace: this.keyspace, user: this.user });
  }
}
