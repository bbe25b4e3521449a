/**
 * The worker environment contract (runtime/lib/config.ts reads it), built once from the
 * subsystems' addresses and grouped by what a process talks to, so each container gets only
 * the groups it needs. Secrets stay in the `secret` half of each group.
 */
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "./catalog/settings";
import { StageConfig } from "./config";
import type { Cassandra } from "./components/cassandra";
import type { Kafka } from "./components/kafka";
import type { Postgres } from "./components/postgres";
import { EnvGroup } from "./spec";

export interface PipelineEnv {
  common: EnvGroup;
  postgres: EnvGroup;
  kafka: EnvGroup;
  cassandra: EnvGroup;
  /** The relay's own settings. */
  relay: EnvGroup;
  /** Set once the data source is known (the offline API server or the configured URL). */
  source: (apiBaseUrl: string) => EnvGroup;
}

export interface WiringArgs {
  config: StageConfig;
  postgres: Postgres;
  postgresPassword: pulumi.Input<string>;
  kafka: Kafka;
  cassandra: Cassandra;
  cassandraPassword: pulumi.Input<string>;
}

export function pipelineEnv(a: WiringArgs): PipelineEnv {
  const c = a.config;
  return {
    // LISTEN_HOST: in a container, loopback would hide /metrics, /healthz and the API from every
    // other container (ingest in Airflow's, a scraper); the network is the stack's own.
    common: {
      env: { LOG_LEVEL: c.logLevel, METRICS_PORT: String(PORTS.workerMetrics), LISTEN_HOST: "0.0.0.0" },
      secret: {},
    },
    postgres: {
      env: {
        PG_HOST: a.postgres.server.dnsName,
        PG_PORT: String(a.postgres.server.ports.postgres.container),
        PG_DATABASE: a.postgres.database,
        PG_USER: a.postgres.user,
      },
      secret: { PG_PASSWORD: a.postgresPassword },
    },
    kafka: {
      env: {
        KAFKA_BROKERS: a.kafka.bootstrapInternal,
        SCHEMA_REGISTRY_URL: a.kafka.schemaRegistryUrl,
        // Should a worker create a topic (the topics job made them first), at the cluster's replication.
        TOPIC_REPLICATION_FACTOR: String(c.replication.topicReplicationFactor),
      },
      secret: {},
    },
    cassandra: {
      env: {
        CASSANDRA_CONTACT_POINTS: a.cassandra.contactPoints,
        CASSANDRA_LOCAL_DC: a.cassandra.localDc,
        CASSANDRA_USER: a.cassandra.user,
        CASSANDRA_REPLICATION_FACTOR: String(c.replication.cassandraReplicationFactor),
        CASSANDRA_CONSISTENCY: c.cassandraConsistency,
      },
      secret: { CASSANDRA_PASSWORD: a.cassandraPassword },
    },
    relay: { env: { RELAY_OUTBOX_RETENTION_S: String(c.outboxRetentionHours * 3600) }, secret: {} },
    source: (apiBaseUrl) => ({
      env: { API_BASE_URL: apiBaseUrl, INGEST_BATCH_SIZE: String(c.ingestBatchSize) },
      secret: {},
    }),
  };
}
