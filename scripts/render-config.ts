/**
 * Renders the config files of the local services from infra/catalog/settings.ts, the same
 * functions the Pulumi stacks deploy from, so a local run checks the very settings the stacks use.
 *
 *   tsx scripts/render-config.ts <zookeeper|kafka|cassandra|postgres-roles> <out-file>
 *
 * postgres-roles: the SQL the stacks' postgres-roles job runs (infra/catalog/db-roles.ts); no
 * password in it (psql reads them from env).
 *
 * Paths come from $RUN (set by scripts/services: $PIPELINE_HOME/run). Every address is loopback.
 * A replicated set (scripts/services --nodes N) sets NODES=N and MEMBER=i (not NODE: npm sets that): member i lives on
 * 127.0.0.<2+i> with the usual ports, in $RUN/<service>-<i>, and knows every other member.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  cassandraSettings,
  kafkaBrokerSettings,
  PORTS,
  zookeeperEnsemble,
  zookeeperSettings,
} from "../infra/catalog/settings";
import { postgresRolesSql } from "../infra/catalog/db-roles";
import { replicationOf } from "../infra/config";
import { toYaml, type Yaml } from "../infra/catalog/yaml";

const LOOPBACK = "127.0.0.1";

/** The member this file is for, or undefined for the single-node set. */
export interface Member {
  node: number;
  nodes: number;
}

export function memberFromEnv(env: NodeJS.ProcessEnv = process.env): Member | undefined {
  const nodes = Number(env.NODES ?? "1");
  if (!(nodes > 1)) return undefined;
  const node = Number(env.MEMBER);
  if (!Number.isInteger(node) || node < 0 || node >= nodes)
    throw new Error(`MEMBER must be 0..${nodes - 1} with NODES=${nodes}, not ${env.MEMBER}`);
  return { node, nodes };
}

/** Member i's own loopback address (scripts/services member_host). */
export const memberHost = (i: number) => `127.0.0.${2 + i}`;
const hosts = (m: Member) => Array.from({ length: m.nodes }, (_, i) => memberHost(i));
const replication = (m: Member) =>
  replicationOf({ zookeeperNodes: m.nodes, kafkaBrokers: m.nodes, cassandraNodes: m.nodes, processorReplicas: 1 });

/** Java .properties text (zoo.cfg, server.properties). */
export function toProperties(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n")
    .concat("\n");
}

export function zooCfg(run: string, m?: Member): string {
  if (m) {
    return toProperties({
      ...zookeeperSettings({
        dataDir: join(run, `zookeeper-${m.node}`, "data"),
        clientPortAddress: memberHost(m.node),
      }),
      ...zookeeperEnsemble(hosts(m)),
      ...LOCAL_SET_ZOOKEEPER_OVERRIDES,
    });
  }
  return toProperties(zookeeperSettings({ dataDir: join(run, "zookeeper", "data"), clientPortAddress: LOOPBACK }));
}

/**
 * The replicated local set only (not the stacks, not the single node): a broker that dies is
 * noticed when its ZooKeeper session expires, and only then do its partitions get new leaders
 * (and the ISRs that still name it shrink, so acks=all writes to the other leaders wait for it
 * too). Kafka's default is 18 s (KIP-537 raised it from 6 s: GC pauses and network blips between
 * machines expired sessions and churned leaders). Here every member is on loopback: 4 s. A server
 * expires sessions in buckets of one tick, so a dead broker is seen gone 4-5 s after its death
 * with a 1 s tick (the 6 s session on the stock 2 s tick took 6.1-7.6 s in the kill suite, and
 * the broker-kill stall was 9.0-12.1 s against a 10 s bound). The suite counts any session that
 * expired outside a kill: a spurious expiry moves every leader the broker held.
 * staging/prod keep 18 s: there a crash is rare and a drained or rolled pod shuts down cleanly
 * (leaders move at once, no session wait), while a spurious expiry moves every leader it held.
 */
export const LOCAL_SET_BROKER_OVERRIDES = { "zookeeper.session.timeout.ms": "4000" } as const;

/**
 * The local ensemble's tick: 1 s instead of 2 s, so that a 4 s session is allowed (ZooKeeper's
 * minSessionTimeout is 2 ticks) and expires 4-5 s after the last heartbeat, not 4-6 s. initLimit
 * and syncLimit are in ticks: doubled, so a follower keeps the same 20 s / 10 s as the stacks.
 */
export const LOCAL_SET_ZOOKEEPER_OVERRIDES = { tickTime: "1000", initLimit: "20", syncLimit: "10" } as const;

export function kafkaServerProperties(run: string, m?: Member): string {
  if (m) {
    const h = memberHost(m.node);
    const internal = `${h}:${PORTS.kafkaInternal}`;
    const external = `${h}:${PORTS.kafkaExternal}`;
    return toProperties({
      ...kafkaBrokerSettings({
        brokerId: m.node,
        zookeeperConnect: hosts(m)
          .map((x) => `${x}:${PORTS.zookeeper}`)
          .join(","),
        listeners: { internal, external },
        advertised: { internal, external },
        logDirs: join(run, `kafka-${m.node}`, "data"),
        replicationFactor: replication(m).topicReplicationFactor,
      }),
      ...LOCAL_SET_BROKER_OVERRIDES,
    });
  }
  const internal = `${LOOPBACK}:${PORTS.kafkaInternal}`;
  const external = `${LOOPBACK}:${PORTS.kafkaExternal}`;
  return toProperties(
    kafkaBrokerSettings({
      brokerId: 1,
      zookeeperConnect: `${LOOPBACK}:${PORTS.zookeeper}`,
      listeners: { internal, external },
      advertised: { internal, external },
      logDirs: join(run, "kafka", "data"),
      replicationFactor: 1,
    }),
  );
}

/**
 * cassandra.yaml: our shared keys from cassandraSettings() on top of what Cassandra 5.0 needs
 * and has no default for in its Config class (partitioner, commitlog_sync, ...), plus
 * single-node-on-a-laptop sizing. Our shared keys win.
 */
export function cassandraYaml(run: string, m?: Member): string {
  const base: Record<string, Yaml> = {
    partitioner: "org.apache.cassandra.dht.Murmur3Partitioner",
    commitlog_sync: "periodic",
    commitlog_sync_period: "10000ms",
    commitlog_segment_size: "32MiB",
    start_native_transport: true,
    role_manager: "CassandraRoleManager",
    network_authorizer: "AllowAllNetworkAuthorizer",
    concurrent_reads: 8,
    concurrent_writes: 16,
    concurrent_counter_writes: 8,
    memtable_allocation_type: "offheap_objects",
    disk_access_mode: "mmap_index_only",
    key_cache_size: "16MiB",
    num_tokens: 16,
    allocate_tokens_for_local_replication_factor: m ? replication(m).cassandraReplicationFactor : 1,
    // Single node: no need to wait for other nodes or snapshots on truncate/drop.
    auto_snapshot: false,
    // Cassandra 5.0 features that the stacks' image keeps at their defaults.
    dynamic_snitch: true,
    cdc_enabled: false,
    // A ring on one loaded 2-core machine: a replica's write took over Cassandra's 2 s default
    // (GC pauses of 0.2-0.7 s, load average 20), and LOCAL_QUORUM writes timed out with no node
    // down. Real nodes keep the defaults (the stacks set none of these).
    ...(m
      ? {
          write_request_timeout: "10000ms",
          counter_write_request_timeout: "10000ms",
          read_request_timeout: "10000ms",
          range_request_timeout: "20000ms",
        }
      : {}),
  };
  // A ring: seeded by its first two nodes (as the stacks' StatefulSet), each on its own address.
  const ours = cassandraSettings({
    clusterName: m ? `realtime-pipeline-local-${m.nodes}` : "realtime-pipeline-local",
    seeds: m ? hosts(m).slice(0, 2).join(",") : LOOPBACK,
    listenAddress: m ? memberHost(m.node) : LOOPBACK,
    rpcAddress: m ? memberHost(m.node) : LOOPBACK,
    dataDir: join(run, m ? `cassandra-${m.node}` : "cassandra"),
  }) as unknown as Record<string, Yaml>;
  return (
    "# Rendered by scripts/render-config.ts from infra/catalog/settings.ts cassandraSettings().\n" +
    toYaml({ ...base, ...ours })
  );
}

function main(argv: string[]): void {
  const [what, out] = argv;
  const run = process.env.RUN;
  if (!what || !out || !run) {
    console.error(
      "usage: RUN=<state>/run tsx scripts/render-config.ts <zookeeper|kafka|cassandra|postgres-roles> <out-file>",
    );
    process.exit(2);
  }
  const renderers: Record<string, (r: string, m?: Member) => string> = {
    zookeeper: zooCfg,
    kafka: kafkaServerProperties,
    cassandra: cassandraYaml,
    "postgres-roles": () => postgresRolesSql(),
  };
  const render = renderers[what];
  if (!render) {
    console.error(`unknown config '${what}' (known: ${Object.keys(renderers).join(", ")})`);
    process.exit(2);
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, render(run, memberFromEnv()));
}

if (require.main === module) main(process.argv.slice(2));
