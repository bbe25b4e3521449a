/**
 * The stage config: every knob of a stack, read from Pulumi config and validated with zod before
 * the program declares a single resource. A bad value stops `pulumi preview` with the full key
 * (`realtime-pipeline:sparkWorkers`) and the command that fixes it.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { minInsyncReplicas } from "./catalog/settings";
import { monitoringSettings, monitoringSettingsSchema, type MonitoringSettings } from "./monitoring/settings";
import { MEMORY, memoryMiB } from "./spec";

export const CONFIG_NAMESPACE = "realtime-pipeline";

/** "512m" or "2g" (Docker's own notation, the specs' too). */
const memory = z.string().regex(MEMORY, "must be a positive size such as 512m or 2g");

/**
 * A full version on one release line, e.g. 7.9.x: the line is fixed by the design, the patch is
 * not, but it must be there: the images are tagged by full version (there is no
 * apache/spark:3.5-…), so `3.5` would pass here and fail at the pull.
 */
const version = (line: string) =>
  z
    .string()
    .regex(
      new RegExp(`^${line.replace(/\./g, "\\.")}\\.[0-9]+$`),
      `must be a full ${line}.x version such as ${line}.0 (images are tagged by full version)`,
    );

const port = z.coerce.number().int().min(1).max(65535);
const count = z.coerce.number().int().min(1, "must be an integer >= 1");

/** Memory limit of each container kind; a stack overrides only the ones it names. */
export const DEFAULT_MEMORY = {
  postgres: "512m",
  postgresRoles: "256m",
  zookeeper: "512m",
  kafka: "1g",
  kafkaTopics: "512m",
  schemaRegistry: "512m",
  controlCenter: "1536m",
  cassandra: "2g",
  cassandraAuth: "512m",
  sparkMaster: "512m",
  sparkWorker: "2g",
  sparkDriver: "1536m",
  airflowInit: "1g",
  airflowWebserver: "1536m",
  airflowScheduler: "1g",
  worker: "256m",
  api: "256m",
  prometheus: "512m",
  exporter: "128m",
} as const;
export type MemoryKey = keyof typeof DEFAULT_MEMORY;

/**
 * CPU each container kind asks for (a Kubernetes request, in cores or millicores): the scheduler
 * places a replicated cluster's pods only where that much is free. Not a limit (a JVM that is
 * throttled misses its heartbeats); the Docker target runs on one host and ignores them.
 */
export const DEFAULT_CPU = {
  postgres: "250m",
  postgresRoles: "50m",
  zookeeper: "100m",
  kafka: "500m",
  kafkaTopics: "100m",
  schemaRegistry: "100m",
  controlCenter: "250m",
  cassandra: "500m",
  cassandraAuth: "100m",
  sparkMaster: "100m",
  sparkWorker: "500m",
  sparkDriver: "250m",
  airflowInit: "100m",
  airflowWebserver: "250m",
  airflowScheduler: "250m",
  worker: "100m",
  api: "50m",
  prometheus: "100m",
  exporter: "25m",
} as const satisfies Record<MemoryKey, string>;
export type CpuKey = keyof typeof DEFAULT_CPU;
const CPU = /^(0\.[0-9]*[1-9][0-9]*|[1-9][0-9]*(\.[0-9]+)?|[1-9][0-9]*m)$/;
const cpu = z.string().regex(CPU, "must be a CPU request such as 250m or 1");

/**
 * How many of each clustered service a stage runs when its config does not say: a Kubernetes
 * stage (staging, prod) survives losing a pod or a node, with 3 of each quorum system; the
 * Docker stage (dev) is one host, where a second copy guards against nothing.
 */
export const DEFAULT_NODES = { docker: 1, kubernetes: 3 } as const;
/** Settings a replicated cluster of N needs (validated together below). */
const nodes = z.coerce.number().int().min(1, "must be an integer >= 1").max(9, "must be at most 9");

/** Host ports; only these services are published (people and other teams use them). */
export const DEFAULT_PORTS = {
  airflow: 8088,
  controlCenter: 9021,
  sparkUi: 8090,
  kafka: 9092,
  schemaRegistry: 8081,
  cassandra: 9042,
  prometheus: 9090,
} as const;

/** The stack's logical volumes (one claim each on a cluster; per member for a cluster's members). */
export const VOLUMES = [
  "postgres-data",
  "zookeeper-data",
  "zookeeper-log",
  "kafka-data",
  "cassandra-data",
  "airflow-logs",
  "spark-checkpoints",
  "prometheus-data",
] as const;
export type Volume = (typeof VOLUMES)[number];
export const DEFAULT_CLAIM_SIZE = "10Gi";
const quantity = z.string().regex(/^[1-9][0-9]*(Mi|Gi|Ti)$/, "must be a size such as 512Mi, 10Gi or 1Ti");

const CRON_FIELD = /^[0-9*/,\-A-Za-z?]+$/;
const schedule = z.string().refine(
  // "none": manual runs only (the DAG's own convention).
  (s) =>
    /^(@(hourly|daily|weekly|monthly|yearly|once)|none)$/.test(s) ||
    (s.split(/\s+/).length === 5 && s.split(/\s+/).every((f) => CRON_FIELD.test(f))),
  "must be a 5-field cron expression such as '*/5 * * * *', a preset such as @hourly, or none",
);

export const stageConfigSchema = z
  .object({
    target: z.enum(["docker", "kubernetes"], {
      errorMap: (i) => ({
        message:
          i.code === "invalid_type" && i.received === "undefined"
            ? "is required (docker or kubernetes)"
            : "must be docker or kubernetes",
      }),
    }),
    confluentVersion: version("7.9").default("7.9.2"),
    postgresVersion: version("15").default("15.13"),
    cassandraVersion: version("5.0").default("5.0.6"),
    sparkVersion: version("3.5").default("3.5.1"),
    airflowVersion: version("2.10").default("2.10.5"),
    /** Tag of the images this project builds (workers, airflow, spark job); never `latest`. */
    imageTag: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/)
      .refine((t) => t !== "latest", "must not be latest: pin a version")
      .default("0.1.0"),
    sparkWorkers: count.default(2),
    sparkWorkerCores: count.default(1),
    sparkWorkerMemory: memory.default("1g"),
    memory: z
      .object(
        Object.fromEntries(Object.entries(DEFAULT_MEMORY).map(([k, v]) => [k, memory.default(v)])) as {
          [K in MemoryKey]: z.ZodDefault<typeof memory>;
        },
      )
      .strict()
      .default({}),
    ports: z
      .object(
        Object.fromEntries(Object.entries(DEFAULT_PORTS).map(([k, v]) => [k, port.default(v)])) as {
          [K in keyof typeof DEFAULT_PORTS]: z.ZodDefault<typeof port>;
        },
      )
      .strict()
      .default({}),
    bindAddress: z
      .string()
      .ip({ version: "v4", message: "must be an IPv4 address such as 127.0.0.1" })
      .default("127.0.0.1"),
    /** Absent: the dev stack runs the offline randomuser-compatible API from the worker image. */
    dataSourceUrl: z.string().url("must be an http(s) URL such as https://randomuser.me").optional(),
    schedule: schedule.default("*/5 * * * *"),
    ingestBatchSize: z.coerce.number().int().min(1).max(5000).default(500),
    /**
     * The clusters' sizes; absent: DEFAULT_NODES of the target. ZooKeeper is a quorum system: an
     * even ensemble survives no more failures than the odd one below it, so it must be odd.
     */
    zookeeperNodes: nodes.optional(),
    kafkaBrokers: nodes.optional(),
    cassandraNodes: nodes.optional(),
    /** Processors share the consumer group (Kafka splits the partitions between them). */
    processorReplicas: nodes.optional(),
    /**
     * Relays share the outbox by key bucket (runtime/relay/claim.ts), so per-key order holds with
     * several; one publishes faster than one PostgreSQL stages, hence the default of 1.
     */
    relayReplicas: nodes.default(1),
    /**
     * kubernetes target: spread a cluster's pods over nodes: preferred (the scheduler tries; a
     * smaller cluster still runs them) or required (a pod stays Pending rather than share a node
     * with another of its cluster: the only way losing a node costs one member).
     */
    antiAffinity: z
      .enum(["preferred", "required"], { errorMap: () => ({ message: "must be preferred or required" }) })
      .default("preferred"),
    cpu: z
      .object(
        Object.fromEntries(Object.entries(DEFAULT_CPU).map(([k, v]) => [k, cpu.default(v)])) as {
          [K in CpuKey]: z.ZodDefault<typeof cpu>;
        },
      )
      .strict()
      .default({}),
    /**
     * Consistency of the processor's and the Spark job's Cassandra writes. LOCAL_QUORUM: a write
     * is acknowledged by a majority of the keyspace's replicas (2 of 3), so losing one node loses
     * no acknowledged write; with RF 1 the quorum is that one node.
     */
    cassandraConsistency: z
      .enum(["LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL", "LOCAL_ONE", "ONE"], {
        errorMap: () => ({ message: "must be LOCAL_QUORUM, QUORUM, EACH_QUORUM, ALL, LOCAL_ONE or ONE" }),
      })
      .default("LOCAL_QUORUM"),
    logLevel: z.enum(["trace", "debug", "info", "warn", "error"]).default("info"),
    /** Hours a published outbox row is kept in PostgreSQL (the relay deletes older ones); 0 keeps them for ever. */
    outboxRetentionHours: z.coerce
      .number()
      .int("must be a whole number of hours")
      .min(0, "must be 0 (keep for ever) or more")
      .max(8784, "must be at most 8784 (a year)")
      .default(168),
    /** kubernetes target: where the project's images are pushed (e.g. ghcr.io/acme). */
    registry: z
      .string()
      .regex(/^[a-z0-9.-]+(:[0-9]+)?(\/[a-z0-9._-]+)*$/, "must be a registry path such as ghcr.io/acme")
      .optional(),
    /** kubernetes target: the namespace (default: <project>-<stack>) and the claims' storage class. */
    namespace: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "must be a DNS label such as realtime-pipeline")
      .optional(),
    storageClass: z.string().min(1).optional(),
    /**
     * kubernetes target: storage class of the claims several pods mount at once (Airflow logs, Spark
     * checkpoints: ReadWriteMany). Default: storageClass. Most default classes are ReadWriteOnce only.
     */
    sharedStorageClass: z.string().min(1).optional(),
    /**
     * What every resource's name starts with (Pulumi's and the platform's): default
     * <project>-<stack>. Set it to the current value before `pulumi stack rename`, and the renamed
     * stack keeps every resource (operating docs: "Rename a stack").
     */
    namePrefix: z
      .string()
      .regex(
        /^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$/,
        "must be a lower-case DNS label of at most 40 characters such as realtime-pipeline-staging",
      )
      .optional(),
    /**
     * kubernetes target: size of each claim, by volume (a Kubernetes quantity such as 10Gi). A
     * cluster member's claims (kafka-data, cassandra-data, zookeeper-*) are made from its
     * StatefulSet's template: a new size applies to members made after it (operating docs: "Grow a
     * claim"); the stack's own claims (postgres-data and the shared ones) are resized in place
     * where the storage class allows expansion.
     */
    claimSizes: z
      .object(
        Object.fromEntries(VOLUMES.map((v) => [v, quantity.default(DEFAULT_CLAIM_SIZE)])) as {
          [K in Volume]: z.ZodDefault<typeof quantity>;
        },
      )
      .strict()
      .default({}),
    /**
     * kubernetes target: the stack's own claims are protected (Pulumi `protect`): a change that
     * would replace one (a storage class, an access mode) and `destroy` are refused before
     * anything is deleted. A cluster member's claims are always kept when its StatefulSet goes.
     * Set false only to let destroy remove the data.
     */
    protectData: z
      .enum(["true", "false"], { errorMap: () => ({ message: "must be true or false" }) })
      .transform((v) => v === "true")
      .default("true"),
    /** kubernetes target: labels a node must have to run the stack's pods (a node pool). */
    nodeSelector: z.record(z.string().min(1), z.string()).default({}),
    /**
     * kubernetes target: the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config) and the context in it to
     * deploy to.
     */
    kubeconfig: z.string().min(1).optional(),
    kubeContext: z.string().min(1).optional(),
    /**
     * kubernetes target: false when the namespace exists already (made by the cluster's admins): the stack uses it and
     * never deletes it.
     */
    createNamespace: z
      .enum(["true", "false"], { errorMap: () => ({ message: "must be true or false" }) })
      .transform((v) => v === "true")
      .default("true"),
    /**
     * kubernetes target: Secrets (of type kubernetes.io/dockerconfigjson, in the namespace) the pods pull the project's
     * images with.
     */
    imagePullSecrets: z
      .array(z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be Secret names such as regcred"))
      .default([]),
    /** kubernetes target: the platform the project's images are built for (the cluster nodes'). */
    imagePlatform: z
      .string()
      .regex(/^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/, "must be an os/arch platform such as linux/amd64 or linux/arm64")
      .default("linux/amd64"),
    /**
     * Which Schema Registry serves Confluent's REST API: Confluent's own (Confluent Community
     * License), or Karapace (Aiven, Apache-2.0; same API, same `_schemas` topic).
     */
    schemaRegistry: z
      .enum(["confluent", "karapace"], { errorMap: () => ({ message: "must be confluent or karapace" }) })
      .default("confluent"),
    /** false: no Prometheus (the stack's metrics and alerts: docs/operating.md "When records stop"). */
    monitoring: z
      .enum(["true", "false"], { errorMap: () => ({ message: "must be true or false" }) })
      .transform((v) => v === "true")
      .default("true"),
    prometheusVersion: z
      .string()
      .regex(/^[0-9]+\.[0-9]+\.[0-9]+$/, "must be a full version such as 2.42.0 (the image prom/prometheus:v<version>)")
      .default("2.42.0"),
    /** How long Prometheus keeps series (a Prometheus duration). */
    prometheusRetention: z
      .string()
      .regex(/^[1-9][0-9]*(h|d|w|y)$/, "must be a duration such as 15d or 12h")
      .default("15d"),
    /** Seconds between scrapes and between rule evaluations. */
    // the recording rules' rates look back 1 minute: four samples at 15 s
    scrapeIntervalSeconds: z.coerce
      .number()
      .int()
      .min(5, "must be at least 5")
      .max(15, "must be at most 15 (the rules' rates over 1 minute need 4 samples)")
      .default(15),
    /** The alert rules' thresholds and windows (infra/monitoring/settings.ts), e.g. {"targetDownFor": "1m"}. */
    alerts: monitoringSettingsSchema.default({}),
    /** false: no Control Center (proprietary; with schemaRegistry karapace the stack is all open source). */
    controlCenter: z
      .enum(["true", "false"], { errorMap: () => ({ message: "must be true or false" }) })
      .transform((v) => v === "true")
      .default("true"),
    /**
     * bindAddress 0.0.0.0: the name or address clients on the LAN dial (Kafka advertises it, the
     * outputs carry it); `localhost` would send them to themselves.
     */
    advertisedHost: z
      .string()
      .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/, "must be a host name or IPv4 address such as dev-box.lan")
      .optional(),
    /**
     * A PEM file of CA certificates the image builds trust in addition to their own roots, for
     * registries behind a TLS-intercepting proxy (README: "Behind a TLS-intercepting proxy").
     * Only the build stages that download see them; the images never carry them.
     */
    buildCaCertificates: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Runs even when a field failed above; compare only sizes that parsed. The worker daemon's
    // own heap (256m) and JVM overhead need room beside what executors are offered.
    const sizes = [c.sparkWorkerMemory, c.memory?.sparkWorker];
    if (
      sizes.every((s) => typeof s === "string" && MEMORY.test(s)) &&
      memoryMiB(c.sparkWorkerMemory) + 512 > memoryMiB(c.memory.sparkWorker)
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["sparkWorkerMemory"],
        message: `must leave 512m below the container limit memory.sparkWorker (${c.memory.sparkWorker})`,
      });
    }
    if (c.bindAddress === "0.0.0.0" && c.advertisedHost === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["advertisedHost"],
        message:
          "is required when bindAddress is 0.0.0.0 (the name LAN clients dial; localhost would point them at themselves)",
      });
    }
    if (c.target === "kubernetes" && c.registry === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["registry"],
        message: "is required for the kubernetes target (the cluster pulls the project's images from it)",
      });
    }
    if (c.target === "docker") {
      // One host: several brokers or nodes on it survive nothing and cost memory. Each container
      // also has one fixed name on the network, where a cluster needs one per member.
      for (const key of ["zookeeperNodes", "kafkaBrokers", "cassandraNodes"] as const) {
        const n = c[key];
        if (typeof n === "number" && n > 1)
          ctx.addIssue({
            code: "custom",
            path: [key],
            message: `must be 1 on the docker target (one host; a replicated ${key.replace(/Nodes|Brokers/, "")} is a kubernetes stage's), not ${n}`,
            params: { fix: `pulumi config rm ${CONFIG_NAMESPACE}:${key}` },
          });
      }
    }
    if (typeof c.zookeeperNodes === "number" && c.zookeeperNodes % 2 === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["zookeeperNodes"],
        message: `must be odd (a quorum of ${c.zookeeperNodes} survives no more failures than ${c.zookeeperNodes - 1}), not ${c.zookeeperNodes}`,
      });
    }
    if (c.target === "kubernetes" && c.kubeContext === undefined) {
      // Never whatever context the shell happens to have: the stack names its cluster.
      ctx.addIssue({
        code: "custom",
        path: ["kubeContext"],
        message:
          "is required for the kubernetes target (the kubeconfig context of the cluster to deploy to; see `kubectl config get-contexts`)",
      });
    }
  });

type ParsedConfig = z.infer<typeof stageConfigSchema>;

/**
 * What the cluster sizes imply, derived in one place (the stacks and the local services alike):
 * - topics and Kafka's internal topics (offsets, transactions, _schemas, Control Center's) at
 *   RF = min(3, brokers); min.insync.replicas = RF - 1 (at least 1): with acks=all a write is
 *   on 2 of 3 brokers before it is acknowledged, and one broker may be down without stopping
 *   writes; unclean leader election stays off (an out-of-sync replica never becomes leader);
 * - the Cassandra keyspaces (pipeline, system_auth) at RF = min(3, nodes), NetworkTopologyStrategy.
 */
export interface Replication {
  zookeeperNodes: number;
  kafkaBrokers: number;
  cassandraNodes: number;
  processorReplicas: number;
  topicReplicationFactor: number;
  minInsyncReplicas: number;
  cassandraReplicationFactor: number;
}

export function replicationOf(n: {
  zookeeperNodes: number;
  kafkaBrokers: number;
  cassandraNodes: number;
  processorReplicas: number;
}): Replication {
  const rf = Math.min(3, n.kafkaBrokers);
  return {
    ...n,
    topicReplicationFactor: rf,
    minInsyncReplicas: minInsyncReplicas(rf),
    cassandraReplicationFactor: Math.min(3, n.cassandraNodes),
  };
}

export type StageConfig = ParsedConfig & { replication: Replication };

function withReplication(c: ParsedConfig): StageConfig {
  const d = DEFAULT_NODES[c.target];
  return {
    ...c,
    replication: replicationOf({
      zookeeperNodes: c.zookeeperNodes ?? d,
      kafkaBrokers: c.kafkaBrokers ?? d,
      cassandraNodes: c.cassandraNodes ?? d,
      processorReplicas: c.processorReplicas ?? d,
    }),
  };
}

/** What to type to fix a key, shown under each error. */
const FIX_EXAMPLE: Record<string, string> = {
  target: "docker",
  sparkWorkers: "2",
  zookeeperNodes: "3",
  kafkaBrokers: "3",
  cassandraNodes: "3",
  processorReplicas: "3",
  relayReplicas: "1",
  antiAffinity: "preferred",
  cassandraConsistency: "LOCAL_QUORUM",
  sparkWorkerCores: "1",
  sparkWorkerMemory: "1g",
  bindAddress: "127.0.0.1",
  schedule: "'*/5 * * * *'",
  dataSourceUrl: "https://randomuser.me",
  registry: "ghcr.io/<org>",
  kubeContext: "<context>",
  createNamespace: "false",
  protectData: "false",
  namePrefix: "realtime-pipeline-<old stack>",
  nodeSelector: '\'{"kubernetes.io/hostname": "<node>"}\'',
  imagePlatform: "linux/amd64",
  schemaRegistry: "karapace",
  controlCenter: "false",
  monitoring: "false",
  prometheusVersion: "2.42.0",
  prometheusRetention: "15d",
  outboxRetentionHours: "168",
  scrapeIntervalSeconds: "15",
  alerts: '\'{"targetDownFor": "1m"}\'',
  advertisedHost: "<host name on the LAN>",
  buildCaCertificates: "/usr/local/share/ca-certificates/<proxy-ca>.crt",
  confluentVersion: "7.9.2",
  postgresVersion: "15.13",
  cassandraVersion: "5.0.6",
  sparkVersion: "3.5.1",
  airflowVersion: "2.10.5",
};

function nestedDefault(path: (string | number)[]): string | number | undefined {
  const [group, key] = path.map(String);
  if (group === "memory") return DEFAULT_MEMORY[key as MemoryKey];
  if (group === "ports") return DEFAULT_PORTS[key as keyof typeof DEFAULT_PORTS];
  if (group === "cpu") return DEFAULT_CPU[key as CpuKey];
  if (group === "claimSizes") return DEFAULT_CLAIM_SIZE;
  if (group === "alerts") return String(monitoringSettings()[key as keyof MonitoringSettings] ?? "<value>");
  return undefined;
}

export class StageConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "StageConfigError";
  }
}

/** Pure: raw key/values (as `pulumi config` stores them) in, a typed config or a StageConfigError out. */
export function parseStageConfig(raw: Record<string, unknown>): StageConfig {
  const parsed = stageConfigSchema.safeParse(raw);
  if (parsed.success) return withReplication(parsed.data);
  throw new StageConfigError(
    parsed.error.issues.map((i) => {
      const keys = i.code === "unrecognized_keys" ? i.keys.map((k) => [...i.path, k].join(".")) : [i.path.join(".")];
      const top = String(i.path[0] ?? keys[0]);
      const key = keys.map((k) => `${CONFIG_NAMESPACE}:${k}`).join(", ");
      const fix =
        i.code === "custom" && typeof i.params?.fix === "string"
          ? i.params.fix
          : i.code === "unrecognized_keys"
            ? `remove it (docs/reference.md lists the known keys)`
            : i.path.length > 1
              ? `pulumi config set --path '${CONFIG_NAMESPACE}:${i.path.map((p, n) => (typeof p === "number" ? `[${p}]` : n === 0 ? p : `.${p}`)).join("")}' ${nestedDefault(i.path) ?? "<value>"}`
              : `pulumi config set ${CONFIG_NAMESPACE}:${top} ${FIX_EXAMPLE[top] ?? "<value>"}`;
      return `${key}: ${i.code === "unrecognized_keys" ? "unknown key" : i.message}. Fix: ${fix}`;
    }),
  );
}

/** Reads every `realtime-pipeline:*` key of the current stack (objects and lists arrive as JSON text). */
export function readStageConfig(): StageConfig {
  const prefix = `${CONFIG_NAMESPACE}:`;
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(pulumi.runtime.allConfig())) {
    if (!k.startsWith(prefix)) continue;
    raw[k.slice(prefix.length)] = v.startsWith("{") || v.startsWith("[") ? JSON.parse(v) : v;
  }
  return parseStageConfig(raw);
}
