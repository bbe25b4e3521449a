/**
 * The stack-output contract: what other teams read with a StackReference. One typed place, built
 * from the handles the components hold (the addresses the target gave them), never re-derived
 * from config; docs/reference.md documents each name, CHANGELOG.md each change of the contract.
 *
 * Two rules make it usable from another stack:
 * - a secret is an output of its own: an object holding one secret field becomes secret as a
 *   whole across a StackReference (host, port and user too), so no object mixes them;
 * - internal addresses resolve from other stacks joined to `network` (the Docker network, or any
 *   namespace of the cluster: they carry the namespace), `host` addresses from outside.
 */
import * as pulumi from "@pulumi/pulumi";
import { DLQ_TOPIC, USERS_TOPIC } from "../runtime/contracts/names";
import type { Airflow } from "./components/airflow";
import type { Cassandra } from "./components/cassandra";
import type { Kafka } from "./components/kafka";
import type { Monitoring } from "./components/monitoring";
import type { Postgres } from "./components/postgres";
import type { Spark } from "./components/spark";
import type { PipelineSecrets } from "./secrets";
import { Handle, StackNetwork } from "./spec";
import { DOCKER_NETWORK } from "./targets/docker";
import { PIPELINE_CONSOLE } from "./monitoring/consoles";
import { KUBERNETES_NAMESPACE } from "./targets/kubernetes";

/** The contract's words for where internal addresses resolve: the Docker network, or the namespace. */
export const NETWORK_KINDS = [DOCKER_NETWORK, KUBERNETES_NAMESPACE] as const;
export interface ContractNetwork {
  kind: (typeof NETWORK_KINDS)[number];
  name: string;
}

/**
 * The contract's version, an output of its own: "<major>" or "<major>.<minor>". A new output or field
 * is a minor change; removing, renaming or reshaping one, or changing which are secret, a major one.
 * Readers refuse a major they do not know.
 */
export const CONTRACT_VERSION = "1.3";

/** `internal`: from the stack's network (and stacks joined to it); `host`: from outside the stack. */
export interface Endpoint {
  internal: string;
  host: string;
}

export interface PipelineOutputs {
  /** CONTRACT_VERSION: what a reader checks before it reads anything else. */
  contractVersion: string;
  /** Where `internal` addresses resolve: the Docker network to join, or the namespace they live in. */
  network: ContractNetwork;
  kafkaBootstrapServers: Endpoint;
  schemaRegistryUrl: Endpoint;
  /** UIs for people, from outside the stack. controlCenterUrl is absent when the stage leaves Control Center out. */
  controlCenterUrl?: string;
  airflowUrl: string;
  sparkUiUrl: string;
  /** Prometheus's UI and HTTP API (series, alerts); absent when the stage turns monitoring off. Since 1.1. */
  prometheusUrl?: string;
  /** The pipeline's dashboard (a Prometheus console); absent with monitoring off. Since 1.3. */
  dashboardUrl?: string;
  /** spark:// URL on the stack's network (the master's RPC port is not published). */
  sparkMasterUrl: string;
  /** Comma lists of host:port. */
  cassandraContactPoints: Endpoint;
  cassandraKeyspace: string;
  /** The pipeline's own role (reads and writes spark_streams): for the pipeline's stacks, not other teams. */
  cassandraUser: string;
  cassandraPassword: pulumi.Output<string>;
  /** Since 1.2. Other teams' role: SELECT on spark_streams, nothing else. */
  cassandraReaderUser: string;
  cassandraReaderPassword: pulumi.Output<string>;
  /** On the stack's network: PostgreSQL is not published. `user` is the pipeline's own role (it writes). */
  postgres: { host: string; port: number; database: string; user: string };
  postgresPassword: pulumi.Output<string>;
  /** Since 1.2. Other teams' role on `postgres.database`: SELECT on the pipeline's tables, nothing else. */
  postgresReaderUser: string;
  postgresReaderPassword: pulumi.Output<string>;
  airflowAdminUser: string;
  airflowAdminPassword: pulumi.Output<string>;
  topics: { users: string; deadLetter: string };
}

/** Every output name, in documentation order (the tests compare it with docs/reference.md). */
export const OUTPUT_NAMES: readonly (keyof PipelineOutputs)[] = [
  "contractVersion",
  "network",
  "kafkaBootstrapServers",
  "schemaRegistryUrl",
  "controlCenterUrl",
  "airflowUrl",
  "sparkUiUrl",
  "prometheusUrl",
  "dashboardUrl",
  "sparkMasterUrl",
  "cassandraContactPoints",
  "cassandraKeyspace",
  "cassandraUser",
  "cassandraPassword",
  "cassandraReaderUser",
  "cassandraReaderPassword",
  "postgres",
  "postgresPassword",
  "postgresReaderUser",
  "postgresReaderPassword",
  "airflowAdminUser",
  "airflowAdminPassword",
  "topics",
];

/** The outputs that must arrive secret through a StackReference; every other one arrives plain. */
export const SECRET_OUTPUTS: readonly (keyof PipelineOutputs)[] = [
  "cassandraPassword",
  "cassandraReaderPassword",
  "postgresPassword",
  "postgresReaderPassword",
  "airflowAdminPassword",
];

export interface OutputSources {
  network: StackNetwork;
  postgres: Postgres;
  kafka: Kafka;
  cassandra: Cassandra;
  spark: Spark;
  airflow: Airflow;
  secrets: PipelineSecrets;
  monitoring?: Monitoring;
}

/** A published port's address; a contract output must not silently be empty. */
function published(h: Handle, port: string): string {
  const a = h.outsideAddress(port);
  if (a === undefined) throw new Error(`${h.name}: port ${port} is in the output contract but not published`);
  return a;
}

/** The target's network in the contract's words; a target with another word would break readers. */
function contractNetwork(n: StackNetwork): ContractNetwork {
  const kind = NETWORK_KINDS.find((k) => k === n.kind);
  if (kind === undefined)
    throw new Error(`network kind ${n.kind} is not one of the contract's: ${NETWORK_KINDS.join(", ")}`);
  return { kind, name: n.name };
}

export function pipelineOutputs(s: OutputSources): PipelineOutputs {
  const { kafka, cassandra, postgres, spark, airflow, secrets } = s;
  return {
    contractVersion: CONTRACT_VERSION,
    network: contractNetwork(s.network),
    kafkaBootstrapServers: { internal: kafka.bootstrapInternal, host: kafka.bootstrapHost },
    schemaRegistryUrl: { internal: kafka.schemaRegistryUrl, host: `http://${published(kafka.schemaRegistry, "http")}` },
    controlCenterUrl: kafka.controlCenter ? `http://${published(kafka.controlCenter, "http")}` : undefined,
    airflowUrl: `http://${published(airflow.webserver, "http")}`,
    sparkUiUrl: `http://${published(spark.master, "ui")}`,
    prometheusUrl: s.monitoring ? `http://${published(s.monitoring.prometheus, "web")}` : undefined,
    dashboardUrl: s.monitoring ? `http://${published(s.monitoring.prometheus, "web")}${PIPELINE_CONSOLE}` : undefined,
    sparkMasterUrl: spark.masterUrl,
    cassandraContactPoints: { internal: cassandra.node.address("cql"), host: published(cassandra.node, "cql") },
    cassandraKeyspace: cassandra.keyspace,
    cassandraUser: cassandra.user,
    cassandraPassword: secrets.cassandraPassword,
    cassandraReaderUser: cassandra.readerUser,
    cassandraReaderPassword: secrets.cassandraReaderPassword,
    postgres: {
      host: postgres.server.dnsName,
      port: postgres.server.ports.postgres.container,
      database: postgres.database,
      user: postgres.user,
    },
    postgresPassword: secrets.postgresPassword,
    postgresReaderUser: postgres.readerUser,
    postgresReaderPassword: secrets.postgresReaderPassword,
    airflowAdminUser: airflow.adminUser,
    airflowAdminPassword: secrets.airflowAdminPassword,
    topics: { users: USERS_TOPIC, deadLetter: DLQ_TOPIC },
  };
}
