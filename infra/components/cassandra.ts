/**
 * Cassandra with PasswordAuthenticator: the node, then a job that creates the pipeline's role with
 * a generated password and disables the image's well-known cassandra/cassandra superuser. The job
 * is idempotent: when the pipeline role already logs in it does nothing.
 */
import * as pulumi from "@pulumi/pulumi";
import { PORTS, cassandraSettings } from "../catalog/settings";
import { cassandraAuthCommand, cassandraEnv } from "../catalog/images";
import { KEYSPACE } from "../../runtime/contracts/names";
import { JobHandle, ServiceHandle, Size, Target, memberAddresses, memoryMiB } from "../spec";

export const CASSANDRA_USER = "pipeline";
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
  defaultUserPassword: pulumi.Input<string>;
}

/**
 * The role job. The node's health gate (`nodetool status` UN) opens before CQL is served and
 * before the node has created its default cassandra role, so the job waits and retries (up to
 * AUTH_TRIES x 5 s). Passwords never reach argv (ps would show them): logins go through cqlshrc
 * files and statements through a file, all mode 600 in a private folder.
 */
const AUTH_TRIES = 60;
/**
 * A ring: system_auth replicated like the pipeline's keyspace before the role is made (a role
 * on one node is a login that fails while that node is down). Altered as the default superuser
 * the first time, as the pipeline role on a re-run; idempotent.
 */
const authReplication = (rf: number) =>
  rf === 1
    ? { prepare: "", before: "", after: "" }
    : {
        prepare: `printf "ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', '${CASSANDRA_DC}': ${rf}};\n" > "$d/auth-rf.cql"
`,
        before: `cq default "$d/auth-rf.cql" && `,
        after: `cq pipeline "$d/auth-rf.cql"; `,
      };
const authScript = (rf: number) => {
  const r = authReplication(rf);
  return `set -eu
umask 077
d="$(mktemp -d)"
login() { printf '[authentication]\nusername = %s\npassword = %s\n' "$2" "$3" > "$d/$1.rc"; }
login pipeline "$CASSANDRA_USER" "$CASSANDRA_PASSWORD"
login default cassandra cassandra
cq() { cqlsh --cqlshrc "$d/$1.rc" cassandra ${PORTS.cassandra} -f "$2"; }
echo "SELECT release_version FROM system.local;" > "$d/probe.cql"
printf "CREATE ROLE IF NOT EXISTS %s WITH PASSWORD = '%s' AND LOGIN = true AND SUPERUSER = true;\n" "$CASSANDRA_USER" "$CASSANDRA_PASSWORD" > "$d/create.cql"
printf "ALTER ROLE cassandra WITH PASSWORD = '%s' AND SUPERUSER = false AND LOGIN = false;\n" "$CASSANDRA_DEFAULT_PASSWORD" > "$d/lock.cql"
${r.prepare}for i in $(seq 1 ${AUTH_TRIES}); do
  if cq pipeline "$d/probe.cql" >/dev/null 2>&1; then
    # The role exists (a re-run, or a retry after the create): lock the default role if it still logs in.
    ${r.after}if cq default "$d/probe.cql" >/dev/null 2>&1; then cq pipeline "$d/lock.cql"; fi
    echo "cassandra-auth: role $CASSANDRA_USER logs in; default role locked"; exit 0
  fi
  if ${r.before}cq default "$d/create.cql"; then continue; fi
  echo "cassandra-auth: CQL not ready or default role not there yet (try $i of ${AUTH_TRIES}); retrying in 5 s"
  sleep 5
done
echo "cassandra-auth: gave up after ${AUTH_TRIES} tries" >&2
exit 1
`;
};

/** Seeds: the first two members (one when the ring is smaller); every other node joins through them. */
const SEEDS = 2;
/** In the ring: this node's own address shows UN (Up, Normal) in its own view of the ring. */
const NODE_UN = `nodetool status 2>/dev/null | grep -Eq "^UN +$(hostname -i | awk '{print $1}') "`;

export class Cassandra extends pulumi.ComponentResource {
  readonly node: ServiceHandle;
  /** host:port of every node's CQL port, comma-separated: what the drivers start from. */
  readonly contactPoints: string;
  /** Job: the pipeline role exists; clients wait for it. */
  readonly auth: JobHandle;
  readonly user = CASSANDRA_USER;
  readonly localDc = CASSANDRA_DC;
  readonly keyspace = KEYSPACE;

  constructor(name: string, args: CassandraArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Cassandra", name, {}, opts);
    const { target, image, nodes, replicationFactor: rf, sizes } = args;
    const settings = cassandraSettings({
      clusterName: "realtime-pipeline",
      // One node: its own name. A ring: the first members' own names (Target.memberDnsName); each
      // node listens on its pod's address (the image's default when no listen address is given).
      seeds: nodes === 1 ? "cassandra" : Array.from({ length: Math.min(SEEDS, nodes) }, (_, i) => target.memberDnsName("cassandra", i)).join(","),
      listenAddress: "cassandra",
      rpcAddress: "0.0.0.0",
      dataDir: "/var/lib/cassandra",
    });
    // Half the container limit for the heap; the rest is off-heap memory and page cache.
    const heapMiB = Math.floor(memoryMiB(sizes.node.memory) / 2);
    this.node = target.service(
      {
        name: "cassandra",
        state: "stateful",
        // Nodes join one at a time (Cassandra refuses concurrent bootstraps), each UN before the next.
        ...(nodes === 1 ? {} : { replicas: nodes, cluster: { start: "one-by-one" as const } }),
        image,
        args: cassandraAuthCommand(settings),
        env: { ...cassandraEnv(settings, CASSANDRA_DC), MAX_HEAP_SIZE: `${heapMiB}M`, HEAP_NEWSIZE: `${Math.floor(heapMiB / 4)}M` },
        ports: { cql: { container: settings.native_transport_port, published: args.publishedCql }, storage: { container: settings.storage_port } },
        // Healthy = CQL is served (the native transport port accepts), which is what clients need;
        // `nodetool status` said UN before that, and is a JVM of its own (tens of seconds under load).
        // A ring: the node is UN in the ring and serves CQL (nodetool is worth its JVM there).
        // 60 tries of 10 s: a first start took over 6 min on a 2-core host at load 31 (it ran out
        // of 30 tries and failed `up`); a port that opens sooner passes at once, so it costs nothing.
        healthCheck:
          nodes === 1
            ? { command: ["bash", "-c", `echo > /dev/tcp/127.0.0.1/${PORTS.cassandra}`], intervalSeconds: 10, timeoutSeconds: 5, retries: 60, startPeriodSeconds: 60 }
            : { command: ["bash", "-c", `echo > /dev/tcp/127.0.0.1/${PORTS.cassandra} && ${NODE_UN}`], intervalSeconds: 30, timeoutSeconds: 25, retries: 20, startPeriodSeconds: 60 },
        // CQL is served by this node, whatever the ring says; the startup probe covers a bootstrap.
        aliveCheck: { command: ["bash", "-c", `echo > /dev/tcp/127.0.0.1/${PORTS.cassandra}`], intervalSeconds: 10, timeoutSeconds: 5, retries: 6 },
        // A drain first: memtables flushed, the commitlog closed, clients told; the restart replays nothing.
        stop: { command: ["bash", "-c", "nodetool drain || true"], graceSeconds: 120 },
        volumes: [{ volume: "cassandra-data", path: "/var/lib/cassandra" }],
        ...sizes.node,
      },
      { parent: this, name },
    );
    this.auth = target.job(
      {
        name: "cassandra-auth",
        image,
        args: ["bash", "-c", authScript(rf)],
        env: { CASSANDRA_USER },
        secretEnv: { CASSANDRA_PASSWORD: args.password, CASSANDRA_DEFAULT_PASSWORD: args.defaultUserPassword },
        ports: {},
        dependsOn: [{ on: this.node, condition: "healthy" }],
        ...sizes.auth,
      },
      { parent: this, name },
    );
    this.contactPoints = memberAddresses(target, "cassandra", nodes, settings.native_transport_port);
    this.registerOutputs({ contactPoint: this.contactPoints, published: this.node.outsideAddress("cql"), keyspace: this.keyspace, user: this.user });
  }
}
