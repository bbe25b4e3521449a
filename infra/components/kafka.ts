/**
 * Kafka: ZooKeeper, one broker (ZooKeeper mode), the topics, Schema Registry and Control Center,
 * all on one Confluent Platform version. Broker and ZooKeeper settings come from the shared
 * catalog (the same keys the local test services run with), then into Confluent's env names.
 */
import * as pulumi from "@pulumi/pulumi";
import { StageConfig, memoryMiB } from "../config";
import { PORTS, kafkaBrokerSettings, zookeeperSettings } from "../catalog/settings";
import { confluentEnv, jvmHeap, upstreamImages, zookeeperEnv } from "../catalog/images";
import { DLQ_TOPIC, USERS_TOPIC } from "../../runtime/contracts/names";
import { JobHandle, ServiceHandle, Target, address } from "../spec";

export interface KafkaArgs {
  target: Target;
  config: StageConfig;
}

export const TOPIC_PARTITIONS = 6;
/** Confluent images run as appuser (1000:1000). */
const APPUSER_GROUP = 1000;
/** The broker's volume; its log.dirs is a folder inside it (see below). */
const KAFKA_VOLUME_PATH = "/var/lib/kafka/data";
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
    const { target, config } = args;
    const images = upstreamImages(config);
    const mem = config.memory;

    this.zookeeper = target.service(
      {
        name: "zookeeper",
        state: "stateful",
        image: images.zookeeper,
        // cp-zookeeper's start script defaults to a 512m heap: all of a 512m limit. Half of it.
        env: { ...zookeeperEnv(zookeeperSettings({ dataDir: "/var/lib/zookeeper/data" })), KAFKA_HEAP_OPTS: jvmHeap(memoryMiB(mem.zookeeper) / 2) },
        ports: { client: { container: PORTS.zookeeper } },
        // ZooKeeper's own `ruok` (whitelisted in the shared settings), over bash: no nc or cub needed.
        healthCheck: { test: ["CMD", "bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${PORTS.zookeeper} && echo ruok >&3 && grep -q imok <&3`] },
        volumes: [
          { volume: "zookeeper-data", path: "/var/lib/zookeeper/data" },
          { volume: "zookeeper-log", path: "/var/lib/zookeeper/log" },
        ],
        volumeGroup: APPUSER_GROUP,
        memory: mem.zookeeper,
      },
      this,
    );

    // The broker advertises these itself, so they are known before it is declared.
    this.bootstrapInternal = `${target.host("kafka")}:${PORTS.kafkaInternal}`;
    this.bootstrapHost = target.publishedAddress(config.ports.kafka);
    const broker = kafkaBrokerSettings({
      brokerId: 1,
      zookeeperConnect: address(this.zookeeper, "client"),
      listeners: { internal: `0.0.0.0:${PORTS.kafkaInternal}`, external: `0.0.0.0:${PORTS.kafkaExternal}` },
      advertised: { internal: this.bootstrapInternal, external: this.bootstrapHost },
      // A folder inside the volume, not its root: a real disk's root holds lost+found, which the
      // broker takes for a broken log directory and stops.
      logDirs: `${KAFKA_VOLUME_PATH}/logs`,
      replicationFactor: 1,
    });
    this.broker = target.service(
      {
        name: "kafka",
        state: "stateful",
        image: images.kafka,
        env: { ...confluentEnv("KAFKA", broker), KAFKA_HEAP_OPTS: jvmHeap(memoryMiB(mem.kafka) / 2) },
        ports: { internal: { container: PORTS.kafkaInternal }, external: { container: PORTS.kafkaExternal, host: config.ports.kafka } },
        // The INTERNAL listener accepts: the broker is up (its clients, the topics job first,
        // retry until it serves them). Not kafka-broker-api-versions: a JVM of its own every
        // 10 s, which took over 30 s on a loaded 2-core machine and never passed.
        healthCheck: { test: ["CMD", "bash", "-c", `echo > /dev/tcp/127.0.0.1/${PORTS.kafkaInternal}`], retries: 30, startPeriodSeconds: 30 },
        volumes: [{ volume: "kafka-data", path: KAFKA_VOLUME_PATH }],
        volumeGroup: APPUSER_GROUP,
        dependsOn: [{ on: this.zookeeper, condition: "healthy" }],
        memory: mem.kafka,
      },
      this,
    );

    // auto.create.topics.enable is off: topics exist by decision, with their partition count.
    const create = (t: string) =>
      `kafka-topics --bootstrap-server ${this.bootstrapInternal} --create --if-not-exists --topic ${t} --partitions ${TOPIC_PARTITIONS} --replication-factor 1`;
    this.topics = target.job(
      {
        name: "kafka-topics",
        image: images.kafka,
        args: ["bash", "-c", `${create(USERS_TOPIC)} && ${create(DLQ_TOPIC)}`],
        env: {},
        ports: {},
        dependsOn: [{ on: this.broker, condition: "healthy" }],
        memory: mem.kafkaTopics,
      },
      this,
    );

    this.schemaRegistryUrl = `http://${target.host("schema-registry")}:${PORTS.schemaRegistry}`;
    const registryCommon = {
      name: "schema-registry",
      state: "stateless" as const,
      ports: { http: { container: PORTS.schemaRegistry, host: config.ports.schemaRegistry } },
      dependsOn: [{ on: this.broker, condition: "healthy" as const }],
      memory: mem.schemaRegistry,
    };
    this.schemaRegistry =
      config.schemaRegistry === "karapace"
        ? // Karapace: Confluent's REST API, schemas in the same _schemas topic; its image has no
          // entrypoint (upstream runs `python3 -m karapace` with KARAPACE_* settings).
          target.service(
            {
              ...registryCommon,
              image: images.karapace,
              args: ["python3", "-m", "karapace"],
              env: {
                KARAPACE_KARAPACE_REGISTRY: "true",
                KARAPACE_KARAPACE_REST: "false",
                KARAPACE_BOOTSTRAP_URI: this.bootstrapInternal,
                KARAPACE_HOST: "0.0.0.0",
                KARAPACE_PORT: String(PORTS.schemaRegistry),
                KARAPACE_ADVERTISED_HOSTNAME: target.host("schema-registry"),
                KARAPACE_ADVERTISED_PORT: String(PORTS.schemaRegistry),
                KARAPACE_TOPIC_NAME: "_schemas",
                KARAPACE_REPLICATION_FACTOR: "1",
                KARAPACE_GROUP_ID: "schema-registry",
                KARAPACE_CLIENT_ID: "schema-registry-1",
                KARAPACE_MASTER_ELIGIBILITY: "true",
                KARAPACE_COMPATIBILITY: "BACKWARD",
                KARAPACE_LOG_LEVEL: "WARNING",
              },
              // Ready for writes only once it is the primary: /master_available, not /subjects.
              healthCheck: { test: ["CMD", "python3", "-c", KARAPACE_READY], startPeriodSeconds: 30 },
            },
            this,
          )
        : target.service(
            {
              ...registryCommon,
              image: images.schemaRegistry,
              env: {
                SCHEMA_REGISTRY_HOST_NAME: target.host("schema-registry"),
                SCHEMA_REGISTRY_LISTENERS: `http://0.0.0.0:${PORTS.schemaRegistry}`,
                SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS: `PLAINTEXT://${this.bootstrapInternal}`,
                SCHEMA_REGISTRY_HEAP_OPTS: jvmHeap(memoryMiB(mem.schemaRegistry) / 2),
              },
              healthCheck: { test: ["CMD", "curl", "-fsS", `http://localhost:${PORTS.schemaRegistry}/subjects`] },
            },
            this,
          );

    this.controlCenter = !config.controlCenter
      ? undefined
      : target.service(
      {
        name: "control-center",
        state: "stateless",
        image: images.controlCenter,
        env: {
          CONTROL_CENTER_BOOTSTRAP_SERVERS: this.bootstrapInternal,
          CONTROL_CENTER_ZOOKEEPER_CONNECT: address(this.zookeeper, "client"),
          CONTROL_CENTER_SCHEMA_REGISTRY_URL: this.schemaRegistryUrl,
          CONTROL_CENTER_REPLICATION_FACTOR: "1",
          CONTROL_CENTER_INTERNAL_TOPICS_PARTITIONS: "1",
          CONTROL_CENTER_MONITORING_INTERCEPTOR_TOPIC_PARTITIONS: "1",
          CONFLUENT_METRICS_TOPIC_REPLICATION: "1",
          PORT: String(PORTS.controlCenter),
          // Control Center's start script defaults to a 6g heap, whatever the container's limit.
          CONTROL_CENTER_HEAP_OPTS: jvmHeap(memoryMiB(mem.controlCenter) / 2),
        },
        ports: { http: { container: PORTS.controlCenter, host: config.ports.controlCenter } },
        healthCheck: { test: ["CMD", "curl", "-fsS", `http://localhost:${PORTS.controlCenter}/`], startPeriodSeconds: 60 },
        dependsOn: [
          { on: this.broker, condition: "healthy" },
          { on: this.schemaRegistry, condition: "healthy" },
        ],
        memory: mem.controlCenter,
      },
      this,
    );
    this.registerOutputs({
      bootstrapInternal: this.bootstrapInternal,
      bootstrapHost: this.bootstrapHost,
      schemaRegistryUrl: this.schemaRegistryUrl,
      schemaRegistryPublished: this.schemaRegistry.published("http"),
      controlCenterPublished: this.controlCenter?.published("http"),
    });
  }
}
