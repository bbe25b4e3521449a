/**
 * The program: stage config in, the pipeline's resources declared, the output contract out.
 * A function, not a side-effecting module, so the unit tests run it once per case under mocks.
 */
import * as os from "node:os";
import * as pulumi from "@pulumi/pulumi";
import { StageConfig, readStageConfig } from "./config";
import { PipelineSecrets } from "./secrets";
import { DockerTarget } from "./targets/docker";
import { KubernetesTarget } from "./targets/kubernetes";
import { Postgres } from "./components/postgres";
import { Kafka } from "./components/kafka";
import { Cassandra } from "./components/cassandra";
import { Spark } from "./components/spark";
import { Workers } from "./components/workers";
import { Airflow } from "./components/airflow";
import { PipelineOutputs, pipelineOutputs } from "./outputs";
import { Target, repoPath } from "./spec";
import { pipelineEnv } from "./wiring";

/** The one place that knows which platform runs the specs. */
function makeTarget(config: StageConfig, prefix: string): Target {
  if (config.target === "kubernetes") {
    // Validation guarantees a registry and a context for this target. A relative kubeconfig is relative to the repository.
    return new KubernetesTarget(prefix, {
      prefix,
      namespace: config.namespace ?? prefix,
      registry: config.registry!,
      storageClass: config.storageClass,
      sharedStorageClass: config.sharedStorageClass,
      kubeconfig: config.kubeconfig === undefined ? undefined : repoPath(config.kubeconfig.replace(/^~(?=\/)/, os.homedir())),
      context: config.kubeContext!,
      createNamespace: config.createNamespace,
      imagePullSecrets: config.imagePullSecrets,
      imagePlatform: config.imagePlatform,
      antiAffinity: config.antiAffinity,
      claimSizes: config.claimSizes,
      protectData: config.protectData,
      nodeSelector: config.nodeSelector,
    });
  }
  return new DockerTarget(prefix, { prefix, bindAddress: config.bindAddress, advertisedHost: config.advertisedHost });
}

export function deployPipeline(config: StageConfig): PipelineOutputs {
  // Every resource's name derives from it: pinning it keeps the names through a stack rename.
  const prefix = config.namePrefix ?? `${pulumi.getProject()}-${pulumi.getStack()}`;
  const target = makeTarget(config, prefix);
  const secrets = new PipelineSecrets(`${prefix}-secrets`, { prefix });

  const postgres = new Postgres(`${prefix}-postgres`, { target, config, password: secrets.postgresPassword, airflowPassword: secrets.airflowDbPassword });
  const kafka = new Kafka(`${prefix}-kafka`, { target, config });
  const cassandra = new Cassandra(`${prefix}-cassandra`, { target, config, password: secrets.cassandraPassword, defaultUserPassword: secrets.cassandraDefaultPassword });
  const env = pipelineEnv({ config, postgres, postgresPassword: secrets.postgresPassword, kafka, cassandra, cassandraPassword: secrets.cassandraPassword });

  const pg = { on: postgres.server, condition: "healthy" as const };
  const topics = { on: kafka.topics, condition: "completed" as const };
  const registry = { on: kafka.schemaRegistry, condition: "healthy" as const };
  const cassandraRole = { on: cassandra.auth, condition: "completed" as const };

  const workers = new Workers(`${prefix}-workers`, {
    target,
    config,
    env,
    dependsOn: { relay: [pg, topics, registry], processor: [topics, registry, cassandraRole] },
  });
  const spark = new Spark(`${prefix}-spark`, {
    target,
    config,
    jobEnv: { ...env.common.env, ...env.kafka.env, ...env.cassandra.env },
    jobSecretEnv: env.cassandra.secret,
    jobDependsOn: [topics, registry, cassandraRole],
  });
  const airflow = new Airflow(`${prefix}-airflow`, {
    target,
    config,
    postgres,
    dbPassword: secrets.airflowDbPassword,
    adminPassword: secrets.airflowAdminPassword,
    fernetKey: secrets.airflowFernetKey,
    webserverSecretKey: secrets.airflowWebserverSecretKey,
    // No METRICS_PORT: the DAG lets each ingest run pick a free one beside Airflow's own ports.
    ingestEnv: [{ env: { LOG_LEVEL: config.logLevel }, secret: {} }, env.postgres, env.source(workers.apiBaseUrl)],
    dependsOn: workers.api ? [{ on: workers.api, condition: "healthy" }] : [],
    workersImage: workers.image,
  });

  return pipelineOutputs({ network: target.network, postgres, kafka, cassandra, spark, airflow, secrets });
}

/** The entry path of `pulumi up`: validate first (throws before any resource), then declare. */
export function runStack(): PipelineOutputs {
  return deployPipeline(readStageConfig());
}

