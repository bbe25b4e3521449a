/**
 * Kafka: ZooKeeper, one broker (ZooKeeper mode), the topics, Schema Registry and Control Center,
 * all on one Confluent Platform version. Broker and ZooKeeper settings come from the shared
 * catalog (the same keys the local test services run with), then into Confluent's env names.
 */
import * as pulumi from "@pulumi/pulumi";
import { PORTS, kafkaBrokerSettings, zookeeperEnsemble, zookeeperSettings } from "../catalog/settings";
import { confluentEnv, jvmHeap, zookeeperEnv } from "../catalog/images";
import { DLQ_TOPIC, USERS_TOPIC } from "../../runtime/contracts/names";
import {
  JobHandle,
  ServiceHandle,
  ServiceSpec,
  Size,
  Target,
  memberAddresses,
  memoryMiB,
  perMemberExports,
} from "../spec";
import { withJmxAgent } from "../monitoring/jmx";

export interface KafkaArgs {
  target: Target;
  /** Pinned images of one Confluent Platform version. */
  images: { zookeeper: string; kafka: string };
  zookeeperNodes: number;
  brokers: number;
  /** Of every topic: ours, Kafka's internal ones, _schemas, Control Center's. */
  replicationFactor: number;
  /** Where broker 0 is published outside the stack; broker i at this port + i. */
  publishedKafka: number;
  sizes: { zookeeper: Size; kafka: Size; topics: Size };
  /** Which registry serves Confluent's REST API (Confluent's own or Karapace), and its image. */
  schemaRegistry: { kind: "confluent" | "karapace"; image: string; published: number; size: Size };
  /** Absent: no Control Center. */
  controlCenter?: { image: string; published: number; size: Size };
  /** The JMX exporter agent's image (images/jmx-agent): ZooKeeper and the brokers serve metrics. Absent: none. */
  jmxAgentImage?: pulumi.Input<string>;
}

export const TOPIC_PARTITIONS = 6;
/** Confluent images run as appuser (1000:1000). */
const APPUSER_GROUP = 1000;
/** The broker's volume; its log.dirs is a folder inside it (see below). */
const KAFKA_VOLUME_PATH = "/var/lib/kafka/data";
/** cp-* images' start script (their CMD): a member's wrapper exports its own settings, then runs it. */
const CONFLUENT_RUN = "/etc/confluent/docker/run";
/**
 * A broker is in the cluster: it answers, and no partition it holds a replica of has it out of the
 * ISR (it caught up after a restart). A JVM per probe, so a small heap and a slow period; only a
 * replicated cluster pays for it (a single broker's check is its port).
 */
const BROKER_IN_ISR = (port: number) =>
  `KAFKA_HEAP_OPTS=-Xmx96m KAFKA_OPTS= JMX_PORT= kafka-topics --bootstrap-server 127.0.0.1:${port} --describe --under-replicated-partitions > /tmp/urp && ` +
  `id="\${HOSTNAME##*-}" && ! awk -v id="$id" '{r="";i="";for(f=1;f<NF;f++){if($f=="Replicas:")r=$(f+1);if($f=="Isr:")i=$(f+1)}; if((","r",")~(","id",") && (","i",")!~(","id",")) bad=1} END{exit !bad}' /tmp/urp`;
/**
 * The topics job's attempts. A broker's port answers before the broker serves requests (on a
 * loaded 2-core host a first createTopics was cancelled "due to node 1 being disconnected"), and
 * `--create --if-not-exists` is idempotent, so the job retries rather than fail the whole `up`.
 */
const TOPICS_ATTEMPTS = 20;
const TOPICS_RETRY_SECONDS = 6;
const retried = (command: string) =>
  `for attempt in $(seq 1 ${TOPICS_ATTEMPTS}); do ${command} && exit 0; ` +
  `echo "kafka-topics: attempt $attempt of ${TOPICS_ATTEMPTS} failed (the broker may still be starting); again in ${TOPICS_RETRY_SECONDS} s" >&2; ` +
  `sleep ${TOPICS_RETRY_SECONDS}; done; exit 1`;
/** The ZooKeeper process answers (`ruok`), in a quorum or not. */
const ZK_ALIVE = `exec 3<>/dev/tcp/127.0.0.1/${PORTS.zookeeper} && echo ruok >&3 && grep -q imok <&3`;
/** A ZooKeeper member is in the quorum: `srvr` says leader or follower (`ruok` answers imok outside one). */
const ZK_IN_QUORUM = `exec 3<>/dev/tcp/127.0.0.1/${PORTS.zookeeper} && echo srvr >&3 && grep -Eq '^Mode: (leader|follower)' <&3`;
/** Karapace's own probe of a usable registry: GET /subjects answers before writes work. */
const KARAPACE_READY = `import json,sys,urllib.request; sys.exit(0 if json.load(urllib.request.urlopen('http://localhost:${PORTS.schemaRegistry}/master_available', timeout=4)).get('master_available') else 1)`;

export class Kafka extends pulumi.ComponentResource {
  readonly zookeeper: ServiceHandle;
  readonly broker: ServiceHandle;
  /** Job that creates the pipeline's topics; producers and consumers wait for it. */
  readonly topics: JobHandle;
  readonly schemaRegistry: ServiceHandle;
  /** Absent when the stage leaves Control Center out (setting controlCenter false). */
  readonly controlCenter?: ServiceHandle;
  /** host:port on the stack's network (the INTERNAL listener). */
  readonly bootstrapInternal: string;
  /** host:port from outside the stack (the EXTERNAL listener). */
  readonly bootstrapHost: string;
  readonly schemaRegistryUrl: string;

  constructor(name: string, args: KafkaArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Kafka", name, {}, opts);
    const { target, images, sizes, zookeeperNodes, brokers: kafkaBrokers, replicationFactor: rf } = args;
    const owner = { parent: this, name };

    // An ensemble: member i is server i+1 (ZooKeeper ids start at 1), every member lists all of
    // them (cp-zookeeper writes server.N lines from ZOOKEEPER_SERVERS), peers dial each other's
    // own names through the headless Service.
    const ensemble =
      zookeeperNodes === 1
        ? undefined
        : {
            servers: Array.from(
              { length: zookeeperNodes },
              (_, i) => `${target.memberDnsName("zookeeper", i)}:${PORTS.zookeeperPeer}:${PORTS.zookeeperElection}`,
            ).join(";"),
            ids: perMemberExports(zookeeperNodes, (i) => ({ ZOOKEEPER_SERVER_ID: String(i + 1) })),
            limits: zookeeperEnsemble([]),
          };
    // cp-zookeeper's and cp-kafka's start scripts hand KAFKA_OPTS to the JVM.
    const agent = <T extends ServiceSpec>(spec: T, role: "zookeeper" | "kafka") =>
      withJmxAgent(spec, role, args.jmxAgentImage, "KAFKA_OPTS");
    this.zookeeper = target.service(
      agent(
        {
          name: "zookeeper",
          state: "stateful",
          image: images.zookeeper,
          ...(ensemble
            ? {
                replicas: zookeeperNodes,
                cluster: { start: "together" as const },
                args: ["bash", "-c", `${ensemble.ids}; exec ${CONFLUENT_RUN}`],
              }
            : {}),
          // cp-zookeeper's start script defaults to a 512m heap: all of a 512m limit. Half of it.
          env: {
            ...zookeeperEnv(zookeeperSettings({ dataDir: "/var/lib/zookeeper/data" })),
            KAFKA_HEAP_OPTS: jvmHeap(memoryMiB(sizes.zookeeper.memory) / 2),
            ...(ensemble
              ? {
                  ZOOKEEPER_SERVERS: ensemble.servers,
                  ZOOKEEPER_INIT_LIMIT: ensemble.limits.initLimit,
                  ZOOKEEPER_SYNC_LIMIT: ensemble.limits.syncLimit,
                }
              : {}),
          },
          ports: {
            client: { container: PORTS.zookeeper },
            ...(ensemble
              ? { peer: { container: PORTS.zookeeperPeer }, election: { container: PORTS.zookeeperElection } }
              : {}),
          },
          // ZooKeeper's own four-letter words (whitelisted in the shared settings), over bash: no nc
          // or cub needed. A member of an ensemble is ready once it is in the quorum.
          healthCheck: { command: ["bash", "-c", ensemble ? ZK_IN_QUORUM : ZK_ALIVE] },
          // ruok answers imok outside a quorum too: a member whose peers are gone is not restarted.
          aliveCheck: { command: ["bash", "-c", ZK_ALIVE], intervalSeconds: 10, timeoutSeconds: 5, retries: 6 },
          stop: { graceSeconds: 30 },
          volumes: [
            { volume: "zookeeper-data", path: "/var/lib/zookeeper/data" },
            { volume: "zookeeper-log", path: "/var/lib/zookeeper/log" },
          ],
          volumeGroup: APPUSER_GROUP,
          ...sizes.zookeeper,
        },
        "zookeeper",
      ),
      owner,
    );

    // The brokers advertise these themselves, so they are known before they are declared.
    // Several brokers: every one of them (a client that finds one down asks the next).
    this.bootstrapInternal = memberAddresses(target, "kafka", kafkaBrokers, PORTS.kafkaInternal);
    // Outside the cluster, broker i is published at the kafka port + i (a port-forward each).
    const externalOf = (i: number) => target.outsideAddress(args.publishedKafka + i);
    this.bootstrapHost = Array.from({ length: kafkaBrokers }, (_, i) => externalOf(i)).join(",");
    const zookeeperConnect = memberAddresses(target, "zookeeper", zookeeperNodes, PORTS.zookeeper);
    const broker = kafkaBrokerSettings({
      brokerId: 1,
      zookeeperConnect,
      listeners: { internal: `0.0.0.0:${PORTS.kafkaInternal}`, external: `0.0.0.0:${PORTS.kafkaExternal}` },
      advertised: { internal: this.bootstrapInternal, external: this.bootstrapHost },
      // A folder inside the volume, not its root: a real disk's root holds lost+found, which the
      // broker takes for a broken log directory and stops.
      logDirs: `${KAFKA_VOLUME_PATH}/logs`,
      replicationFactor: rf,
    });
    const brokerEnv = confluentEnv("KAFKA", broker);
    // A cluster: broker id and advertised listeners are each member's own (its ordinal, its own name).
    const cluster =
      kafkaBrokers === 1
        ? undefined
        : perMemberExports(kafkaBrokers, (i) => ({
            KAFKA_BROKER_ID: String(i),
            KAFKA_ADVERTISED_LISTENERS: `INTERNAL://${target.memberDnsName("kafka", i)}:${PORTS.kafkaInternal},EXTERNAL://${externalOf(i)}`,
          }));
    if (cluster) {
      delete brokerEnv.KAFKA_BROKER_ID;
      delete brokerEnv.KAFKA_ADVERTISED_LISTENERS;
    }
    this.broker = target.service(
      agent(
        {
          name: "kafka",
          state: "stateful",
          image: images.kafka,
          ...(cluster
            ? {
                replicas: kafkaBrokers,
                cluster: { start: "together" as const },
                args: ["bash", "-c", `${cluster}; exec ${CONFLUENT_RUN}`],
              }
            : {}),
          env: { ...brokerEnv, KAFKA_HEAP_OPTS: jvmHeap(memoryMiB(sizes.kafka.memory) / 2) },
          ports: {
            internal: { container: PORTS.kafkaInternal },
            external: { container: PORTS.kafkaExternal, published: args.publishedKafka },
          },
          // One broker: the INTERNAL listener accepts: the broker is up (its clients, the topics job
          // first, retry until it serves them). Not kafka-broker-api-versions: a JVM of its own
          // every 10 s, which took over 30 s on a loaded 2-core machine and never passed.
          // A cluster: the broker is in the ISR of every partition it replicates (BROKER_IN_ISR).
          healthCheck: cluster
            ? {
                command: ["bash", "-c", BROKER_IN_ISR(PORTS.kafkaInternal)],
                intervalSeconds: 30,
                timeoutSeconds: 25,
                retries: 20,
                startPeriodSeconds: 30,
              }
            : {
                command: ["bash", "-c", `echo > /dev/tcp/127.0.0.1/${PORTS.kafkaInternal}`],
                retries: 30,
                startPeriodSeconds: 30,
              },
          // The listener accepts: the broker process serves, whatever its peers and ISR say.
          aliveCheck: {
            command: ["bash", "-c", `echo > /dev/tcp/127.0.0.1/${PORTS.kafkaInternal}`],
            intervalSeconds: 10,
            timeoutSeconds: 5,
            retries: 6,
          },
          // SIGTERM starts a controlled shutdown: leadership moves to the other brokers and the log
          // is closed cleanly (no recovery at the next start). It needs time on a loaded node.
          stop: { graceSeconds: 120 },
          volumes: [{ volume: "kafka-data", path: KAFKA_VOLUME_PATH }],
          volumeGroup: APPUSER_GROUP,
          dependsOn: [{ on: this.zookeeper, condition: "healthy" }],
          ...sizes.kafka,
        },
        "kafka",
      ),
      owner,
    );

    // auto.create.topics.enable is off: topics exist by decision, with their partition count and
    // replication (min.insync.replicas is the brokers' own setting, for every topic).
    const create = (t: string) =>
      `kafka-topics --bootstrap-server ${this.bootstrapInternal} --create --if-not-exists --topic ${t} --partitions ${TOPIC_PARTITIONS} --replication-factor ${rf}`;
    this.topics = target.job(
      {
        name: "kafka-topics",
        image: images.kafka,
        args: ["bash", "-c", retried(`${create(USERS_TOPIC)} && ${create(DLQ_TOPIC)}`)],
        env: {},
        ports: {},
        dependsOn: [{ on: this.broker, condition: "healthy" }],
        ...sizes.topics,
      },
      owner,
    );

    const registry = args.schemaRegistry;
    this.schemaRegistryUrl = `http://${target.dnsName("schema-registry")}:${PORTS.schemaRegistry}`;
    const registryCommon = {
      name: "schema-registry",
      state: "stateless" as const,
      image: registry.image,
      ports: { http: { container: PORTS.schemaRegistry, published: registry.published } },
      dependsOn: [{ on: this.broker, condition: "healthy" as const }],
      ...registry.size,
    };
    this.schemaRegistry =
      registry.kind === "karapace"
        ? // Karapace: Confluent's REST API, schemas in the same _schemas topic; its image has no
          // entrypoint (upstream runs `python3 -m karapace` with KARAPACE_* settings).
          target.service(
            {
              ...registryCommon,
              args: ["python3", "-m", "karapace"],
              env: {
                KARAPACE_KARAPACE_REGISTRY: "true",
                KARAPACE_KARAPACE_REST: "false",
                KARAPACE_BOOTSTRAP_URI: this.bootstrapInternal,
                KARAPACE_HOST: "0.0.0.0",
                KARAPACE_PORT: String(PORTS.schemaRegistry),
                KARAPACE_ADVERTISED_HOSTNAME: target.dnsName("schema-registry"),
                KARAPACE_ADVERTISED_PORT: String(PORTS.schemaRegistry),
                KARAPACE_TOPIC_NAME: "_schemas",
                KARAPACE_REPLICATION_FACTOR: String(rf),
                KARAPACE_GROUP_ID: "schema-registry",
                KARAPACE_CLIENT_ID: "schema-registry-1",
                KARAPACE_MASTER_ELIGIBILITY: "true",
                KARAPACE_COMPATIBILITY: "BACKWARD",
                KARAPACE_LOG_LEVEL: "WARNING",
              },
              // Ready for writes only once it is the primary: /master_available, not /subjects.
              healthCheck: { command: ["python3", "-c", KARAPACE_READY], startPeriodSeconds: 30 },
            },
            owner,
          )
        : target.service(
            {
              ...registryCommon,
              env: {
                SCHEMA_REGISTRY_HOST_NAME: target.dnsName("schema-registry"),
                SCHEMA_REGISTRY_LISTENERS: `http://0.0.0.0:${PORTS.schemaRegistry}`,
                SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS: `PLAINTEXT://${this.bootstrapInternal}`,
                SCHEMA_REGISTRY_HEAP_OPTS: jvmHeap(memoryMiB(registry.size.memory) / 2),
                // _schemas at the topics' replication (the registry's default is 3, whatever the brokers).
                SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR: String(rf),
              },
              healthCheck: { command: ["curl", "-fsS", `http://localhost:${PORTS.schemaRegistry}/subjects`] },
            },
            owner,
          );

    const cc = args.controlCenter;
    this.controlCenter = !cc
      ? undefined
      : target.service(
          {
            name: "control-center",
            state: "stateless",
            image: cc.image,
            env: {
              CONTROL_CENTER_BOOTSTRAP_SERVERS: this.bootstrapInternal,
              CONTROL_CENTER_ZOOKEEPER_CONNECT: zookeeperConnect,
              CONTROL_CENTER_SCHEMA_REGISTRY_URL: this.schemaRegistryUrl,
              // Every topic Control Center makes, at the topics' replication.
              CONTROL_CENTER_REPLICATION_FACTOR: String(rf),
              CONTROL_CENTER_INTERNAL_TOPICS_REPLICATION: String(rf),
              CONTROL_CENTER_COMMAND_TOPIC_REPLICATION: String(rf),
              CONTROL_CENTER_MONITORING_INTERCEPTOR_TOPIC_REPLICATION: String(rf),
              CONTROL_CENTER_METRICS_TOPIC_REPLICATION: String(rf),
              CONTROL_CENTER_INTERNAL_TOPICS_PARTITIONS: "1",
              CONTROL_CENTER_MONITORING_INTERCEPTOR_TOPIC_PARTITIONS: "1",
              CONFLUENT_METRICS_TOPIC_REPLICATION: String(rf),
              PORT: String(PORTS.controlCenter),
              // Control Center's start script defaults to a 6g heap, whatever the container's limit.
              CONTROL_CENTER_HEAP_OPTS: jvmHeap(memoryMiB(cc.size.memory) / 2),
            },
            ports: { http: { container: PORTS.controlCenter, published: cc.published } },
            healthCheck: {
              command: ["curl", "-fsS", `http://localhost:${PORTS.controlCenter}/`],
              startPeriodSeconds: 60,
            },
            dependsOn: [
              { on: this.broker, condition: "healthy" },
              { on: this.schemaRegistry, condition: "healthy" },
            ],
            ...cc.size,
          },
          owner,
        );
    this.registerOutputs({
      bootstrapInternal: this.bootstrapInternal,
      bootstrapHost: this.bootstrapHost,
      schemaRegistryUrl: this.schemaRegistryUrl,
      schemaRegistryPublished: this.schemaRegistry.outsideAddress("http"),
      controlCenterPublished: this.controlCenter?.outsideAddress("http"),
    });
  }
}
