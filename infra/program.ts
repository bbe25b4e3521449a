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
import { SPARK_WORKER, Spark } from "./components/spark";
import { Workers } from "./components/workers";
import { Airflow } from "./components/airflow";
import { JmxAgentImage, Monitoring } from "./components/monitoring";
import { Exporters } from "./components/exporters";
import { STATSD_PREFIX } from "./monitoring/statsd";
import { PipelineOutputs, pipelineOutputs } from "./outputs";
import { Target, repoPath } from "./spec";
import {
  airflowArgs,
  buildCaArgs,
  cassandraArgs,
  exportersArgs,
  kafkaArgs,
  monitoringArgs,
  postgresArgs,
  sparkArgs,
  workersArgs,
} from "./stage-args";
import { pipelineEnv } from "./wiring";
import { JOBS } from "./monitoring/settings";

/** The one place that knows which platform runs the specs. */
function makeTarget(config: StageConfig, prefix: string): Target {
  if (config.target === "kubernetes") {
    // Validation guarantees a registry and a context for this target. A relative kubeconfig is relative to the
    // repository.
    return new KubernetesTarget(prefix, {
      prefix,
      namespace: config.namespace ?? prefix,
      registry: config.registry!,
      storageClass: config.storageClass,
      sharedStorageClass: config.sharedStorageClass,
      kubeconfig:
        config.kubeconfig === undefined ? undefined : repoPath(config.kubeconfig.replace(/^~(?=\/)/, os.homedir())),
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
  // Spark workers have always been containers spark-worker-1..N on Docker, one or several.
  const numbered = [SPARK_WORKER];
  const { bindAddress, advertisedHost } = config;
  return new DockerTarget(prefix, { prefix, bindAddress, advertisedHost, numbered });
}

/**
 * Components are named by the stack prefix and name their children `<prefix>-<process>`. Until
 * they were, each was `<prefix>-<role>`: the alias keeps the engine seeing the same component
 * (its children's URNs never held its name, so they need none).
 */
const formerly = (prefix: string, role: string) => ({ aliases: [{ name: `${prefix}-${role}` }] });

export function deployPipeline(config: StageConfig): PipelineOutputs {
  // Every resource's name derives from it: pinning it keeps the names through a stack rename.
  const prefix = config.namePrefix ?? `${pulumi.getProject()}-${pulumi.getStack()}`;
  const target = makeTarget(config, prefix);
  const secrets = new PipelineSecrets(prefix, formerly(prefix, "secrets"));

  const postgres = new Postgres(prefix, postgresArgs(config, target, secrets), formerly(prefix, "postgres"));
  const jmxAgent = config.monitoring
    ? new JmxAgentImage(prefix, { target, tag: config.imageTag, buildArgs: buildCaArgs(config) }).image
    : undefined;
  const kafka = new Kafka(prefix, kafkaArgs(config, target, jmxAgent), formerly(prefix, "kafka"));
  const cassandra = new Cassandra(
    prefix,
    cassandraArgs(config, target, secrets, jmxAgent),
    formerly(prefix, "cassandra"),
  );
  const env = pipelineEnv({
    config,
    postgres,
    postgresPassword: secrets.postgresPassword,
    kafka,
    cassandra,
    cassandraPassword: secrets.cassandraPassword,
  });

  const pg = { on: postgres.roles, condition: "completed" as const };
  const topics = { on: kafka.topics, condition: "completed" as const };
  const registry = { on: kafka.schemaRegistry, condition: "healthy" as const };
  const cassandraRole = { on: cassandra.auth, condition: "completed" as const };

  const exporters = config.monitoring
    ? new Exporters(
        prefix,
        exportersArgs(config, target, {
          server: postgres.server,
          database: postgres.database,
          user: postgres.monitorUser,
          password: secrets.postgresMonitorPassword,
          dependsOn: [pg],
        }),
      )
    : undefined;
  const workers = new Workers(
    prefix,
    workersArgs(config, target, {
      env: { common: env.common, relay: [env.postgres, env.kafka, env.relay], processor: [env.kafka, env.cassandra] },
      dependsOn: { relay: [pg, topics, registry], processor: [topics, registry, cassandraRole] },
    }),
    formerly(prefix, "workers"),
  );
  const spark = new Spark(
    prefix,
    sparkArgs(config, target, {
      jobEnv: {
        ...env.common.env,
        ...env.kafka.env,
        ...env.cassandra.env,
        // the query's progress (records behind, rates) after each batch: images/spark/job/progress_metrics.py
        ...(exporters ? { PUSHGATEWAY_URL: exporters.pushgatewayUrl } : {}),
      },
      jobSecretEnv: env.cassandra.secret,
      jobDependsOn: [topics, registry, cassandraRole],
    }),
    formerly(prefix, "spark"),
  );
  const airflow = new Airflow(
    prefix,
    airflowArgs(config, target, {
      database: {
        server: postgres.server,
        roles: postgres.roles,
        name: postgres.airflowDatabase,
        user: postgres.airflowUser,
      },
      dbPassword: secrets.airflowDbPassword,
      adminPassword: secrets.airflowAdminPassword,
      fernetKey: secrets.airflowFernetKey,
      webserverSecretKey: secrets.airflowWebserverSecretKey,
      // No METRICS_PORT: the DAG lets each ingest run pick a free one beside Airflow's own ports.
      ingestEnv: [
        {
          env: { LOG_LEVEL: config.logLevel, ...(exporters ? { PUSHGATEWAY_URL: exporters.pushgatewayUrl } : {}) },
          secret: {},
        },
        env.postgres,
        env.source(workers.apiBaseUrl),
      ],
      statsd: exporters ? { ...exporters.statsdAddress, prefix: STATSD_PREFIX } : undefined,
      dependsOn: workers.api ? [{ on: workers.api, condition: "healthy" }] : [],
      workersImage: workers.image,
    }),
    formerly(prefix, "airflow"),
  );

  const monitoring = config.monitoring
    ? new Monitoring(
        prefix,
        monitoringArgs(config, target, {
          scrape: {
            [JOBS.relay]: workers.workers.relay,
            [JOBS.processor]: workers.workers.processor,
            [JOBS.kafka]: kafka.broker,
            [JOBS.zookeeper]: kafka.zookeeper,
            [JOBS.cassandra]: cassandra.node,
            [JOBS.sparkMaster]: spark.master,
            [JOBS.sparkWorker]: spark.workers,
            [JOBS.sparkDriver]: spark.driver,
            ...(exporters
              ? {
                  [JOBS.postgres]: exporters.postgres,
                  [JOBS.pushgateway]: exporters.pushgateway,
                  [JOBS.airflow]: exporters.statsd,
                  [JOBS.node]: exporters.node,
                }
              : {}),
          },
          honorLabels: [JOBS.pushgateway],
          lagExporter: { image: workers.image, env: [env.common, env.kafka], dependsOn: [topics] },
        }),
      )
    : undefined;

  return pipelineOutputs({ network: target.network, postgres, kafka, cassandra, spark, airflow, secrets, monitoring });
}

/** The entry path of `pulumi up`: validate first (throws before any resource), then declare. */
export function runStack(): PipelineOutputs {
  return deployPipeline(readStageConfig());
}
