/**
 * The stack-output contract: what other teams read with a StackReference. One typed place;
 * README.md documents each name. Renaming or reshaping an output is a breaking change.
 */
import * as pulumi from "@pulumi/pulumi";

export interface PipelineOutputs {
  /** `internal`: for containers on the stack's network; `host`: for clients on the Docker host. */
  kafkaBootstrapServers: { internal: string; host: string };
  /** Reachable from the host. */
  schemaRegistryUrl: string;
  controlCenterUrl: string;
  airflowUrl: string;
  /** spark:// URL on the stack's network (the master's RPC port is not published). */
  sparkMasterUrl: string;
  sparkUiUrl: string;
  /** Comma list host:port reachable from the host (the CQL port is published). */
  cassandraContactPoints: string;
  cassandraKeyspace: string;
  cassandraUser: string;
  cassandraPassword: pulumi.Output<string>;
  /** On the stack's network: PostgreSQL is not published. */
  postgres: { host: string; port: number; database: string; user: string; password: pulumi.Output<string> };
  airflowAdmin: { user: string; password: pulumi.Output<string> };
  topics: { users: string; deadLetter: string };
}

/** Every output name, in documentation order (the tests compare it with README.md). */
export const OUTPUT_NAMES: readonly (keyof PipelineOutputs)[] = [
  "kafkaBootstrapServers",
  "schemaRegistryUrl",
  "controlCenterUrl",
  "airflowUrl",
  "sparkMasterUrl",
  "sparkUiUrl",
  "cassandraContactPoints",
  "cassandraKeyspace",
  "cassandraUser",
  "cassandraPassword",
  "postgres",
  "airflowAdmin",
  "topics",
];
