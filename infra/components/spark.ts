/**
 * Spark standalone: a master, N workers (cores and memory from config) and the driver of the
 * streaming job, submitted to spark://spark-master:7077 in client mode. All three run one image,
 * images/spark (apache/spark of the configured version plus the Kafka and Cassandra connectors):
 * executors on the workers need the connectors as much as the driver does. Executors write the
 * job's state store into the checkpoint directory as the driver does, so the workers and the
 * driver mount the same named volume.
 */
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "../catalog/settings";
import { Dependency, ServiceHandle, Size, Target } from "../spec";

export const DRIVER_UI_PORT = 4040;
/** The workers' service; the dev stack has always named its containers spark-worker-1..N (the program keeps that). */
export const SPARK_WORKER = "spark-worker";
/** The image's work dir is owned by its `spark` user; a fresh volume mounted there inherits that. */
const WORK_DIR = "/opt/spark/work-dir";
export const CHECKPOINT_DIR = `${WORK_DIR}/checkpoints`;

export interface SparkArgs {
  target: Target;
  /** The Spark version (the connectors follow it), the upstream image it builds on, the project's tag. */
  version: string;
  baseImage: string;
  imageTag: string;
  /** Build args every project image gets (the build's CA certificates). */
  buildArgs: Record<string, string>;
  /** Workers, and what each offers executors: cores and memory ("1g"). */
  workers: { count: number; cores: number; memory: string };
  /** Where the master's UI is published outside the stack. */
  publishedUi: number;
  sizes: { master: Size; worker: Size; driver: Size };
  /** Env of the job: where Kafka, Schema Registry and Cassandra are; credentials as secrets. */
  jobEnv: Record<string, pulumi.Input<string>>;
  jobSecretEnv: Record<string, pulumi.Input<string>>;
  /** What the job needs up before it starts (topics, registry, Cassandra role). */
  jobDependsOn: Dependency[];
}

const tcpCheck = (port: number) => ["bash", "-c", `echo > /dev/tcp/127.0.0.1/${port}`];
/** Master and worker daemons default to a 1g heap each: too much beside the executors in a container. */
/**
 * Spark's own Prometheus endpoint (its PrometheusServlet sink) on each daemon's web UI: the master's
 * at /metrics/master/prometheus (its applications' at /metrics/applications/prometheus), a worker's
 * at /metrics/prometheus. spark-class hands SPARK_DAEMON_JAVA_OPTS to both daemons' JVMs.
 */
const SERVLET = "org.apache.spark.metrics.sink.PrometheusServlet";
const METRICS_OPTS = [
  `-Dspark.metrics.conf.*.sink.prometheusServlet.class=${SERVLET}`,
  "-Dspark.metrics.conf.*.sink.prometheusServlet.path=/metrics/prometheus",
  "-Dspark.metrics.conf.master.sink.prometheusServlet.path=/metrics/master/prometheus",
  "-Dspark.metrics.conf.applications.sink.prometheusServlet.path=/metrics/applications/prometheus",
].join(" ");
const DAEMON = { SPARK_NO_DAEMONIZE: "true", SPARK_DAEMON_MEMORY: "256m", SPARK_DAEMON_JAVA_OPTS: METRICS_OPTS };
const sparkClass = "/opt/spark/bin/spark-class";
/** apache/spark runs as spark (185:185). */
const SPARK_GROUP = 185;

export class Spark extends pulumi.ComponentResource {
  readonly master: ServiceHandle;
  /** One workload of `workers.count` replicas (on Docker: containers spark-worker-1..N). */
  readonly workers: ServiceHandle;
  readonly driver: ServiceHandle;
  readonly masterUrl: string;

  constructor(name: string, args: SparkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Spark", name, {}, opts);
    const { target, workers, sizes } = args;
    const owner = { parent: this, name };
    const image = target.image(
      {
        name: "spark",
        context: ".",
        dockerfile: "images/spark/Dockerfile",
        tag: `${args.version}-${args.imageTag}`,
        args: {
          SPARK_IMAGE: args.baseImage,
          // The connectors follow the Spark version (spark-sql-kafka, spark-avro are versioned with it).
          SPARK_VERSION: args.version,
          ...args.buildArgs,
        },
      },
      owner,
    );
    const checkpoints = { volume: "spark-checkpoints", path: WORK_DIR, shared: true };

    this.master = target.service(
      {
        name: "spark-master",
        state: "stateless",
        // It binds and advertises its own name.
        selfAddressed: true,
        image,
        args: [
          sparkClass,
          "org.apache.spark.deploy.master.Master",
          "--host",
          target.dnsName("spark-master"),
          "--port",
          String(PORTS.sparkMaster),
          "--webui-port",
          String(PORTS.sparkMasterUi),
        ],
        env: DAEMON,
        ports: {
          rpc: { container: PORTS.sparkMaster },
          ui: { container: PORTS.sparkMasterUi, published: args.publishedUi },
        },
        metrics: { port: "ui", path: "/metrics/master/prometheus" },
        healthCheck: { command: tcpCheck(PORTS.sparkMasterUi) },
        ...sizes.master,
      },
      owner,
    );
    this.masterUrl = `spark://${this.master.address("rpc")}`;

    this.workers = target.service(
      {
        name: SPARK_WORKER,
        state: "stateless",
        replicas: workers.count,
        image,
        args: [
          sparkClass,
          "org.apache.spark.deploy.worker.Worker",
          this.masterUrl,
          "--cores",
          String(workers.cores),
          "--memory",
          workers.memory,
          "--webui-port",
          String(PORTS.sparkWorkerUi),
        ],
        env: { ...DAEMON, SPARK_MASTER_URL: this.masterUrl },
        ports: { ui: { container: PORTS.sparkWorkerUi } },
        metrics: { port: "ui", path: "/metrics/prometheus" },
        healthCheck: { command: tcpCheck(PORTS.sparkWorkerUi) },
        volumes: [checkpoints],
        volumeGroup: SPARK_GROUP,
        dependsOn: [{ on: this.master, condition: "healthy" }],
        ...sizes.worker,
      },
      owner,
    );

    this.driver = target.service(
      {
        name: "spark-driver",
        state: "stateless",
        // Executors dial it back on ports it picks; one driver per checkpoint, also during a change.
        selfAddressed: true,
        exclusive: true,
        image,
        // images/spark/submit.sh: spark-submit --master $SPARK_MASTER_URL (client mode) of the job.
        args: ["/opt/pipeline/submit.sh"],
        env: {
          ...args.jobEnv,
          SPARK_MASTER_URL: this.masterUrl,
          SPARK_DRIVER_HOST: "spark-driver",
          SPARK_DRIVER_MEMORY: "512m",
          SPARK_EXECUTOR_MEMORY: workers.memory,
          SPARK_EXECUTOR_CORES: String(workers.cores),
          SPARK_CORES_MAX: String(workers.count * workers.cores),
          SPARK_CHECKPOINT_DIR: CHECKPOINT_DIR,
        },
        secretEnv: args.jobSecretEnv,
        ports: { ui: { container: DRIVER_UI_PORT } },
        // submit.sh turns on the driver's servlet and the query's own metrics (rates, batch duration)
        metrics: { port: "ui", path: "/metrics/prometheus" },
        healthCheck: { command: tcpCheck(DRIVER_UI_PORT), startPeriodSeconds: 60 },
        volumes: [checkpoints],
        volumeGroup: SPARK_GROUP,
        dependsOn: [{ on: this.workers, condition: "healthy" as const }, ...args.jobDependsOn],
        ...sizes.driver,
      },
      owner,
    );
    this.registerOutputs({ masterUrl: this.masterUrl, uiPublished: this.master.outsideAddress("ui"), image });
  }
}
