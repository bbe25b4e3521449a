/**
 * Cassandra with PasswordAuthenticator and CassandraAuthorizer: the node, then a job that makes the
 * roles and the keyspace. `pipeline_admin` (a superuser, the job's own login, never an output) makes
 * the keyspace and the roles: `pipeline` reads, writes and creates its tables in spark_streams and
 * nothing else; `pipeline_reader` (other teams) reads spark_streams; the image's well-known
 * cassandra/cassandra superuser gets a generated password and is disabled. Idempotent: it runs
 * again whenever it changes (a password, the image, the script).
 */
import * as pulumi from "@pulumi/pulumi";
import { withJmxAgent } from "../monitoring/jmx";
import { PORTS, cassandraSettings } from "../catalog/settings";
import { cassandraAuthCommand, cassandraEnv } from "../catalog/images";
import {
  CASSANDRA_ADMIN,
  CASSANDRA_READER,
  CASSANDRA_USER,
  cassandraAuthReplicationCql,
  cassandraRolesCql,
} from "../catalog/db-roles";
import { KEYSPACE } from "../../runtime/contracts/names";
import { JobHandle, ServiceHandle, Size, Target, memberAddresses, memoryMiB } from "../spec";

export { CASSANDRA_ADMIN, CASSANDRA_READER, CASSANDRA_USER } from "../catalog/db-roles";
export const CASSANDRA_DC = "dc1";

export interface CassandraArgs {
  target: Target;
  /** The cassandra image, pinned. */
  image: string;
  /** Nodes in the ring, and the keyspaces' replication factor (system_auth's too). */
  nodes: number;
  replicationFactor: number;
  /** Where CQL is published outside the stack. */
  publishedCql: number;
  sizes: { node: Size; auth: Size };
  password: pulumi.Input<string>;
  adminPassword: pulumi.Input<string>;
  readerPassword: pulumi.Input<string>;
  defaultUserPassword: pulumi.Input<string>;
  /** The JMX exporter agent's image (images/jmx-agent): each node serves metrics. Absent: none. */
  jmxAgentImage?: pulumi.Input<string>;
}

/**
 * The role job. The node's health gate opens before CQL is served and before the node has made
 * its default cassandra role, so the job retries (up to AUTH_TRIES x 5 s). The admin role is made
 * by the default superuser on a fresh ring, or by the pipeline role on a ring from before this job
 * (it was a superuser then). Passwords never reach argv (ps would show them): logins go through
 * cqlshrc files and statements through files, all mode 600 in a private folder.
 */
const AUTH_TRIES = 60;
const ADMIN_WITH = "WITH PASSWORD = '%s' AND LOGIN = true AND SUPERUSER = true;";
/** What makes the admin role (printf format, %s its password); on a ring, system_auth replicated first. */
const adminCql = (rf: number) =>
  [...cassandraAuthReplicationCql(rf, CASSANDRA_DC), `CREATE ROLE IF NOT EXISTS ${CASSANDRA_ADMIN} ${ADMIN_WITH}`].join(
    "\\n",
  );
const authScript = (rf: number) => `set -eu
umask 077
d="$(mktemp -d)"
login() { printf '[authentication]\\nusername = %s\\npassword = %s\\n' "$2" "$3" > "$d/$1.rc"; }
login admin ${CASSANDRA_ADMIN} "$CASSANDRA_ADMIN_PASSWORD"
login pipeline ${CASSANDRA_USER} "$CASSANDRA_PASSWORD"
login default cassandra cassandra
cq() { cqlsh --cqlshrc "$d/$1.rc" cassandra ${PORTS.cassandra} -f "$2"; }
printf "${adminCql(rf)}\\n" "$CASSANDRA_ADMIN_PASSWORD" > "$d/admin.cql"
p="$CASSANDRA_PASSWORD" r="$CASSANDRA_READER_PASSWORD"
printf "${cassandraRolesCql(rf, CASSANDRA_DC).join("\\n")}\\n" \\
  "$p" "$p" "$r" "$r" "$CASSANDRA_DEFAULT_PASSWORD" > "$d/roles.cql"
for i in $(seq 1 ${AUTH_TRIES}); do
  if cq admin "$d/roles.cql"; then
    echo "cassandra-auth: ${CASSANDRA_USER}, ${CASSANDRA_READER} ready, no superusers; cassandra disabled"; exit 0
  fi
  # The admin made (or there already): log in with it next, after a pause (a failing roles.cql must not spin).
  if cq pipeline "$d/admin.cql" >/dev/null 2>&1 || cq default "$d/admin.cql"; then sleep 2; continue; fi
  echo "cassandra-auth: CQL not ready, or no role to make ${CASSANDRA_ADMIN} (try $i of ${AUTH_TRIES}); retrying in 5 s"
  sleep 5
done
echo "cassandra-auth: gave up after ${AUTH_TRIES} tries" >&2
exit 1
`;

/** Seeds: the first two members (one when the ring is smaller); every other node joins through them. */
const SEEDS = 2;
/** In the ring: this node's own address shows UN (Up, Normal) in its own view of the ring. */
const NODE_UN = `nodetool status 2>/dev/null | grep -Eq "^UN +$(hostname -i | awk '{print $1}') "`;

export class Cassandra extends pulumi.ComponentResource {
  readonly node: ServiceHandle;
  /** host:port of every node's CQL port, comma-separated: what the drivers start from. */
  readonly contactPoints: string;
  /** Job: the keyspace and the roles exist; clients wait for it. */
  readonly auth: JobHandle;
  readonly user = CASSANDRA_USER;
  readonly readerUser = CASSANDRA_READER;
  readonly localDc = CASSANDRA_DC;
  readonly keyspace = KEYSPACE;

  constructor(name: string, args: CassandraArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Cassandra", name, {}, opts);
    const { target, image, nodes, replicationFactor: rf, sizes } = args;
    const settings = cassandraSettings({
      clusterName: "realtime-pipeline",
      // One node: its own name. A ring: the first members' own names (Target.memberDnsName); each
      // node listens on its pod's address (the image's default when no listen address is given).
      seeds:
        nodes === 1
          ? "cassandra"
          : Array.from({ length: Math.min(SEEDS, nodes) }, (_, i) => target.memberDnsName("cassandra", i)).join(","),
      listenAddress: "cassandra",
      rpcAddress: "0.0.0.0",
      dataDir: "/var/lib/cassandra",
    });
    // Half the container limit for the heap; the rest is off-heap memory and page cache.
    const heapMiB = Math.floor(memoryMiB(sizes.node.memory) / 2);
    // The image's cassandra-env.sh appends JVM_EXTRA_OPTS to the JVM's options (nodetool's JVM keeps its own).
    this.node = target.service(
      withJmxAgent(
        {
          name: "cassandra",
          state: "stateful",
          // Nodes join one at a time (Cassandra refuses concurrent bootstraps), each UN before the next.
          ...(nodes === 1 ? {} : { replicas: nodes, cluster: { start: "one-by-one" as const } }),
          image,
          args: cassandraAuthCommand(settings),
          env: {
            ...cassandraEnv(settings, CASSANDRA_DC),
            MAX_HEAP_SIZE: `${heapMiB}M`,
            HEAP_NEWSIZE: `${Math.floor(heapMiB / 4)}M`,
          },
          ports: {
            cql: { container: settings.native_transport_port, published: args.publishedCql },
            storage: { container: settings.storage_port },
          },
          // Healthy = CQL is served (the native transport port accepts), which is what clients need;
          // `nodetool status` said UN before that, and is a JVM of its own (tens of seconds under load).
          // A ring: the node is UN in the ring and serves CQL (nodetool is worth its JVM there).
          // 60 tries of 10 s: a first start took over 6 min on a 2-core host at load 31 (it ran out
          // of 30 tries and failed `up`); a port that opens sooner passes at once, so it costs nothing.
          healthCheck:
            nodes === 1
              ? {
                  command: ["bash", "-c", `echo > /dev/tcp/127.0.0.1/${PORTS.cassandra}`],
                  intervalSeconds: 10,
                  timeoutSeconds: 5,
                  retries: 60,
                  startPeriodSeconds: 60,
                }
              : {
                  command: ["bash", "-c", `echo > /dev/tcp/127.0.0.1/${PORTS.cassandra} && ${NODE_UN}`],
                  intervalSeconds: 30,
                  timeoutSeconds: 25,
                  retries: 20,
                  startPeriodSeconds: 60,
                },
          // CQL is served by this node, whatever the ring says; the startup probe covers a bootstrap.
          aliveCheck: {
            command: ["bash", "-c", `echo > /dev/tcp/127.0.0.1/${PORTS.cassandra}`],
            intervalSeconds: 10,
            timeoutSeconds: 5,
            retries: 6,
          },
          // A drain first: memtables flushed, the commitlog closed, clients told; the restart replays nothing.
          stop: { command: ["bash", "-c", "nodetool drain || true"], graceSeconds: 120 },
          volumes: [{ volume: "cassandra-data", path: "/var/lib/cassandra" }],
          ...sizes.node,
        },
        "cassandra",
        args.jmxAgentImage,
        "JVM_EXTRA_OPTS",
      ),
      { parent: this, name },
    );
    this.auth = target.job(
      {
        name: "cassandra-auth",
        image,
        args: ["bash", "-c", authScript(rf)],
        env: {},
        secretEnv: {
          CASSANDRA_ADMIN_PASSWORD: args.adminPassword,
          CASSANDRA_PASSWORD: args.password,
          CASSANDRA_READER_PASSWORD: args.readerPassword,
          CASSANDRA_DEFAULT_PASSWORD: args.defaultUserPassword,
        },
        ports: {},
        dependsOn: [{ on: this.node, condition: "healthy" }],
        ...sizes.auth,
      },
      { parent: this, name },
    );
    this.contactPoints = memberAddresses(target, "cassandra", nodes, settings.native_transport_port);
    this.registerOutputs({
      contactPoint: this.contactPoints,
      published: this.node.outsideAddress("cql"),
      keyspace: this.keyspace,
      user: this.user,
      reader: this.readerUser,
    });
  }
}
