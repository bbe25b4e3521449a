/**
 * What each service *is*, in the words of the software itself: Kafka's server.properties keys,
 * ZooKeeper's zoo.cfg keys, Cassandra's cassandra.yaml keys, PostgreSQL's settings.
 *
 * Plain data, no Pulumi: the Docker target maps these onto the images' environment conventions,
 * the Kubernetes target onto its manifests, and scripts/services writes them into the config
 * files of the local processes the integration tests run. So the real local run checks the very
 * settings that the stacks deploy.
 */

/** Container ports, one place. Hosts publish some of them (see the stage config). */
export const PORTS = {
  postgres: 5432,
  zookeeper: 2181,
  /** An ensemble's followers to its leader, and leader election. */
  zookeeperPeer: 2888,
  zookeeperElection: 3888,
  /** Kafka listener for clients on the private network / inside the cluster. */
  kafkaInternal: 29092,
  /** Kafka listener advertised to clients outside (the host, other teams). */
  kafkaExternal: 9092,
  schemaRegistry: 8081,
  controlCenter: 9021,
  sparkMaster: 7077,
  sparkMasterUi: 8080,
  sparkWorkerUi: 8081,
  cassandra: 9042,
  airflowWeb: 8080,
  workerMetrics: 9464,
  randomUserApi: 8000,
  prometheus: 9090,
  /** The JMX exporter agent in a JVM (Kafka, ZooKeeper, Cassandra): Strimzi's port. */
  jmxExporter: 9404,
  postgresExporter: 9187,
  pushgateway: 9091,
  statsdExporter: 9102,
  nodeExporter: 9100,
  /** StatsD's own port (UDP): Airflow sends its metrics there. */
  statsd: 9125,
} as const;

export interface ZookeeperSettingsArgs {
  dataDir: string;
  clientPort?: number;
  /** Bind address; containers listen on every interface of their network, local runs on loopback. */
  clientPortAddress?: string;
}

export function zookeeperSettings(a: ZookeeperSettingsArgs): Record<string, string> {
  return {
    tickTime: "2000",
    dataDir: a.dataDir,
    clientPort: String(a.clientPort ?? PORTS.zookeeper),
    ...(a.clientPortAddress ? { clientPortAddress: a.clientPortAddress } : {}),
    "admin.enableServer": "false",
    "4lw.commands.whitelist": "ruok,srvr,mntr",
  };
}

/**
 * zoo.cfg keys of an ensemble: every member's address (server i+1 = hosts[i], peer and election
 * ports), and how long a follower may take to connect and sync (in ticks of 2 s).
 */
export function zookeeperEnsemble(hosts: string[]): Record<string, string> {
  return {
    initLimit: "10",
    syncLimit: "5",
    ...Object.fromEntries(
      hosts.map((h, i) => [`server.${i + 1}`, `${h}:${PORTS.zookeeperPeer}:${PORTS.zookeeperElection}`]),
    ),
  };
}

export interface KafkaBrokerSettingsArgs {
  brokerId: number;
  /** host:port of ZooKeeper. */
  zookeeperConnect: string;
  /** Where the broker binds each listener, e.g. INTERNAL://0.0.0.0:29092. */
  listeners: { internal: string; external: string };
  /** What the broker tells clients to dial for each listener. */
  advertised: { internal: string; external: string };
  logDirs: string;
  /** Of topics and internal topics: min(3, brokers) (config.ts replicationOf). */
  replicationFactor: number;
}

/** A write acknowledged with acks=all is on RF - 1 brokers at least: one may be down, and none is lost. */
export function minInsyncReplicas(replicationFactor: number): number {
  return Math.max(1, replicationFactor - 1);
}

/** server.properties of a broker in ZooKeeper mode (the Kafka 3.9 line, as Confluent Platform 7.9). */
export function kafkaBrokerSettings(a: KafkaBrokerSettingsArgs): Record<string, string> {
  const rf = String(a.replicationFactor);
  const minIsr = String(minInsyncReplicas(a.replicationFactor));
  return {
    "broker.id": String(a.brokerId),
    "zookeeper.connect": a.zookeeperConnect,
    "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
    listeners: `INTERNAL://${a.listeners.internal},EXTERNAL://${a.listeners.external}`,
    "advertised.listeners": `INTERNAL://${a.advertised.internal},EXTERNAL://${a.advertised.external}`,
    "inter.broker.listener.name": "INTERNAL",
    "log.dirs": a.logDirs,
    "offsets.topic.replication.factor": rf,
    "transaction.state.log.replication.factor": rf,
    "transaction.state.log.min.isr": minIsr,
    "default.replication.factor": rf,
    "min.insync.replicas": minIsr,
    // An out-of-sync replica never becomes leader: availability waits rather than data being lost.
    "unclean.leader.election.enable": "false",
    "num.partitions": "6",
    "auto.create.topics.enable": "false",
    "group.initial.rebalance.delay.ms": "0",
    // Kafka's floor is 6 s: a SIGKILLed processor's partitions would wait that long for a new
    // member. 2 s lets the processor ask for a short session (PROCESSOR_SESSION_TIMEOUT_MS).
    "group.min.session.timeout.ms": "2000",
  };
}

export interface CassandraSettingsArgs {
  clusterName: string;
  /** Comma-separated seed addresses. */
  seeds: string;
  listenAddress: string;
  rpcAddress: string;
  dataDir: string;
  nativePort?: number;
  storagePort?: number;
}

/** The cassandra.yaml keys we set; everything else keeps Cassandra's defaults. */
export function cassandraSettings(a: CassandraSettingsArgs) {
  return {
    cluster_name: a.clusterName,
    num_tokens: 16,
    seed_provider: [
      { class_name: "org.apache.cassandra.locator.SimpleSeedProvider", parameters: [{ seeds: a.seeds }] },
    ],
    listen_address: a.listenAddress,
    rpc_address: a.rpcAddress,
    native_transport_port: a.nativePort ?? PORTS.cassandra,
    storage_port: a.storagePort ?? 7000,
    endpoint_snitch: "GossipingPropertyFileSnitch",
    authenticator: "PasswordAuthenticator",
    authorizer: "CassandraAuthorizer",
    data_file_directories: [`${a.dataDir}/data`],
    commitlog_directory: `${a.dataDir}/commitlog`,
    saved_caches_directory: `${a.dataDir}/saved_caches`,
    hints_directory: `${a.dataDir}/hints`,
    // A write is acknowledged only once its commitlog is fsynced: in periodic mode (5.0's default)
    // the ack comes first, and a killed process loses what its sync thread had not marked yet
    // (up to 100 ms; an OS crash up to the 10 s period). Group mode syncs every window's writes
    // together, so the processor's offsets follow durable rows (runtime/README.md, guarantees).
    commitlog_sync: "group",
    commitlog_sync_group_window: "10ms",
    // Cassandra refuses a period beside group mode; 0 clears the one a base cassandra.yaml sets.
    commitlog_sync_period: "0ms",
    // Each write holds a mutation thread until its group's fsync: writes/s <= threads / (window +
    // fsync), so 16 threads capped the node near 1k/s; waiting threads cost no CPU.
    concurrent_writes: 128,
  };
}

/** The non-root uids images run as (their Dockerfiles' USER): `node` of node's images, Debian's `nobody`. */
export const IMAGE_USERS = { node: 1000, nobody: 65_534 } as const;
