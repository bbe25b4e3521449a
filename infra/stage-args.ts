/**
 * The stage config, mapped to each component's own Args: a component reads only what its Args
 * list, never the whole config, so what it depends on is in its signature (as pulumi-eks and
 * pulumi-awsx components take theirs). What another component provides (handles, env, images)
 * the program passes in beside.
 */
import * as fs from "node:fs";
import type * as pulumi from "@pulumi/pulumi";
import { upstreamImages } from "./catalog/images";
import { CONFIG_NAMESPACE, MemoryKey, StageConfig, StageConfigError } from "./config";
import type { AirflowArgs } from "./components/airflow";
import type { CassandraArgs } from "./components/cassandra";
import type { KafkaArgs } from "./components/kafka";
import type { MonitoringArgs } from "./components/monitoring";
import type { ExportersArgs } from "./components/exporters";
import type { PostgresArgs } from "./components/postgres";
import type { SparkArgs } from "./components/spark";
import type { WorkersArgs } from "./components/workers";
import type { PipelineSecrets } from "./secrets";
import { Size, Target } from "./spec";

/** A process kind's memory limit and CPU request, as the stage sets them. */
const size = (c: StageConfig, kind: MemoryKey): Size => ({ memory: c.memory[kind], cpu: c.cpu[kind] });

export function postgresArgs(c: StageConfig, target: Target, secrets: PipelineSecrets): PostgresArgs {
  return {
    target,
    image: upstreamImages(c).postgres,
    sizes: { server: size(c, "postgres"), roles: size(c, "postgresRoles") },
    password: secrets.postgresPassword,
    adminPassword: secrets.postgresAdminPassword,
    airflowPassword: secrets.airflowDbPassword,
    readerPassword: secrets.postgresReaderPassword,
    monitorPassword: secrets.postgresMonitorPassword,
  };
}

export function kafkaArgs(c: StageConfig, target: Target, jmxAgentImage?: pulumi.Input<string>): KafkaArgs {
  const images = upstreamImages(c);
  return {
    target,
    jmxAgentImage,
    images: { zookeeper: images.zookeeper, kafka: images.kafka },
    zookeeperNodes: c.replication.zookeeperNodes,
    brokers: c.replication.kafkaBrokers,
    replicationFactor: c.replication.topicReplicationFactor,
    publishedKafka: c.ports.kafka,
    sizes: { zookeeper: size(c, "zookeeper"), kafka: size(c, "kafka"), topics: size(c, "kafkaTopics") },
    schemaRegistry: {
      kind: c.schemaRegistry,
      image: c.schemaRegistry === "karapace" ? images.karapace : images.schemaRegistry,
      published: c.ports.schemaRegistry,
      size: size(c, "schemaRegistry"),
    },
    controlCenter: c.controlCenter
      ? { image: images.controlCenter, published: c.ports.controlCenter, size: size(c, "controlCenter") }
      : undefined,
  };
}

export function cassandraArgs(
  c: StageConfig,
  target: Target,
  secrets: PipelineSecrets,
  jmxAgentImage?: pulumi.Input<string>,
): CassandraArgs {
  return {
    target,
    jmxAgentImage,
    image: upstreamImages(c).cassandra,
    nodes: c.replication.cassandraNodes,
    replicationFactor: c.replication.cassandraReplicationFactor,
    publishedCql: c.ports.cassandra,
    sizes: { node: size(c, "cassandra"), auth: size(c, "cassandraAuth") },
    password: secrets.cassandraPassword,
    adminPassword: secrets.cassandraAdminPassword,
    readerPassword: secrets.cassandraReaderPassword,
    defaultUserPassword: secrets.cassandraDefaultPassword,
  };
}

type SparkJob = Pick<SparkArgs, "jobEnv" | "jobSecretEnv" | "jobDependsOn">;

export function sparkArgs(c: StageConfig, target: Target, job: SparkJob): SparkArgs {
  return {
    target,
    version: c.sparkVersion,
    baseImage: upstreamImages(c).spark,
    imageTag: c.imageTag,
    buildArgs: buildCaArgs(c),
    workers: { count: c.sparkWorkers, cores: c.sparkWorkerCores, memory: c.sparkWorkerMemory },
    publishedUi: c.ports.sparkUi,
    sizes: { master: size(c, "sparkMaster"), worker: size(c, "sparkWorker"), driver: size(c, "sparkDriver") },
    ...job,
  };
}

export function workersArgs(
  c: StageConfig,
  target: Target,
  wiring: Pick<WorkersArgs, "env" | "dependsOn">,
): WorkersArgs {
  return {
    target,
    imageTag: c.imageTag,
    buildArgs: buildCaArgs(c),
    dataSourceUrl: c.dataSourceUrl,
    replicas: { relay: c.relayReplicas, processor: c.replication.processorReplicas },
    sizes: { api: size(c, "api"), worker: size(c, "worker") },
    ...wiring,
  };
}

export function exportersArgs(c: StageConfig, target: Target, postgres: ExportersArgs["postgres"]): ExportersArgs {
  const images = upstreamImages(c);
  return {
    target,
    images: {
      postgresExporter: images.postgresExporter,
      pushgateway: images.pushgateway,
      statsdExporter: images.statsdExporter,
      nodeExporter: images.nodeExporter,
    },
    size: size(c, "exporter"),
    postgres,
  };
}

export function monitoringArgs(
  c: StageConfig,
  target: Target,
  rest: Pick<MonitoringArgs, "scrape" | "honorLabels"> & { lagExporter: Omit<MonitoringArgs["lagExporter"], "size"> },
): MonitoringArgs {
  return {
    target,
    image: upstreamImages(c).prometheus,
    size: size(c, "prometheus"),
    publishedPort: c.ports.prometheus,
    retention: c.prometheusRetention,
    settings: c.alerts,
    intervalSeconds: c.scrapeIntervalSeconds,
    scrape: rest.scrape,
    honorLabels: rest.honorLabels,
    lagExporter: { ...rest.lagExporter, size: size(c, "worker") },
  };
}

type AirflowStage = "target" | "version" | "imageTag" | "schedule" | "publishedWeb" | "sizes" | "buildArgs";

export function airflowArgs(c: StageConfig, target: Target, rest: Omit<AirflowArgs, AirflowStage>): AirflowArgs {
  return {
    target,
    version: c.airflowVersion,
    imageTag: c.imageTag,
    schedule: c.schedule,
    publishedWeb: c.ports.airflow,
    buildArgs: buildCaArgs(c),
    sizes: {
      init: size(c, "airflowInit"),
      webserver: size(c, "airflowWebserver"),
      scheduler: size(c, "airflowScheduler"),
    },
    ...rest,
  };
}

/**
 * Build args every project image build gets from the stage: EXTRA_CA_CERTS, the PEM text of
 * the `buildCaCertificates` file (public certificates, not secrets), which the Dockerfiles'
 * download stages trust (and only those stages). Empty when the setting is absent.
 */
export function buildCaArgs(c: Pick<StageConfig, "buildCaCertificates">): Record<string, string> {
  if (c.buildCaCertificates === undefined) return {};
  const key = `${CONFIG_NAMESPACE}:buildCaCertificates`;
  let pem: string;
  try {
    pem = fs.readFileSync(c.buildCaCertificates, "utf8");
  } catch (e) {
    const why = (e as Error).message;
    const fix = `pulumi config set ${key} <path of a PEM file>, or remove it`;
    throw new StageConfigError([`${key}: cannot read ${c.buildCaCertificates} (${why}). Fix: ${fix}`]);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    const fix = "point it at a PEM file such as /usr/local/share/ca-certificates/<proxy-ca>.crt";
    throw new StageConfigError([
      `${key}: ${c.buildCaCertificates} holds no PEM certificate (-----BEGIN CERTIFICATE-----). Fix: ${fix}`,
    ]);
  }
  return { EXTRA_CA_CERTS: pem };
}
