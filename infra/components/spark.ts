/**
 * Spark standalone: a master, N workers (cores and memory from config) and the driver of the
 * streaming job, submitted to spark://spark-master:7077 in client mode. All three run one image,
 * images/spark (apache/spark of the configured version plus the Kafka and Cassandra connectors):
 * executors on the workers need the connectors as much as the driver does. Executors write the
 * job's state store into the checkpoint directory as the driver does, so the workers and the
 * driver mount the same named volume.
 */
import * as pulumi from "@pulumi/pulumi";
import { StageConfig } from "../config";
import { PORTS } from "../catalog/settings";
import { buildCaArgs, upstreamImages } from "../catalog/images";
import { Dependency, ServiceHandle, Target, address } from "../spec";

export const DRIVER_UI_PORT = 4040;
/** The image's work dir is owned by its `spark` user; a fresh volume mounted there inherits that. */
const WORK_DIR = "/opt/spark/work-dir";
export const CHECKPOINT_DIR = `${WORK_DIR}/checkpoints`;

export interface SparkArgs {
  target: Target;
  config: StageConfig;
  /** Env of the job: where Kafka, Schema Registry and Cassandra are; credentials as secrets. */
  jobEnv: Record<string, pulumi.Input<string>>;
  jobSecretEnv: Record<string, pulumi.Input<string>>;
  /** What the job needs up before it starts (topics, registry, Cassandra role). */
  jobDependsOn: Dependency[];
}

const tcpCheck = (port: number) => ["CMD", "bash", "-c", `echo > /dev/tcp/127.0.0.1/${port}`];
/** Master and worker daemons default to a 1g heap each: too much beside the executors in a container. */
const DAEMON = { SPARK_NO_DAEMONIZE: "true", SPARK_DAEMON_MEMORY: "256m" };
const sparkClass = "/opt/spark/bin/spark-class";
/** apache/spark runs as spark (185:185). */
const SPARK_GROUP = 185;

export class Spark extends pulumi.ComponentResource {
  readonly master: ServiceHandle;
  /** One workload of sparkWorkers replicas (on Docker: containers spark-worker-1..N). */
  readonly workers: ServiceHandle;
  readonly driver: ServiceHandle;
  readonly masterUrl: string;

  constructor(name: string, args: SparkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Spark", name, {}, opts);
    const { target, config } = args;
    const image = target.image(
      { name: "spark", context: ".", dockerfile: "images/spark/Dockerfile", tag: `${config.sparkVersion}-${config.imageTag}`, args: {
          SPARK_IMAGE: upstreamImages(config).spark,
          // The connectors follow the Spark version (spark-sql-kafka, spark-avro are versioned with it).
          SPARK_VERSION: config.sparkVersion,
          ...buildCaArgs(config),
        },
      },
      this,
    );
    const checkpoints = { volume: "spark-checkpoints", path: WORK_DIR, shared: true };

    this.master = target.service(
      {
        name: "spark-master",
        state: "stateless",
        // It binds and advertises its own name.
        selfAddressed: true,
        image,
        args: [sparkClass, "org.apache.spark.deploy.master.Master", "--host", target.host("spark-master"), "--port", String(PORTS.sparkMaster), "--webui-port", String(PORTS.sparkMasterUi)],
        env: DAEMON,
        ports: { rpc: { container: PORTS.sparkMaster }, ui: { container: PORTS.sparkMasterUi, host: config.ports.sparkUi } },
        healthCheck: { test: tcpCheck(PORTS.sparkMasterUi) },
        memory: config.memory.sparkMaster,
        cpu: config.cpu.sparkMaster,
      },
      this,
    );
    this.masterUrl = `spark://${address(this.master, "rpc")}`;

    this.workers = target.service(
        {
          name: "spark-worker",
          state: "stateless",
          replicas: config.sparkWorkers,
          numbered: true,
          image,
          args: [sparkClass, "org.apache.spark.deploy.worker.Worker", this.masterUrl, "--cores", String(config.sparkWorkerCores), "--memory", config.sparkWorkerMemory, "--webui-port", String(PORTS.sparkWorkerUi)],
          env: { ...DAEMON, SPARK_MASTER_URL: this.masterUrl },
          ports: { ui: { container: PORTS.sparkWorkerUi } },
          healthCheck: { test: tcpCheck(PORTS.sparkWorkerUi) },
          volumes: [checkpoints],
          volumeGroup: SPARK_GROUP,
          dependsOn: [{ on: this.master, condition: "healthy" }],
          memory: config.memory.sparkWorker,
          cpu: config.cpu.sparkWorker,
        },
        this,
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
          SPARK_EXECUTOR_MEMORY: config.sparkWorkerMemory,
          SPARK_EXECUTOR_CORES: String(config.sparkWorkerCores),
          SPARK_CORES_MAX: String(config.sparkWorkers * config.sparkWorkerCores),
          SPARK_CHECKPOINT_DIR: CHECKPOINT_DIR,
        },
        secretEnv: args.jobSecretEnv,
        ports: { ui: { container: DRIVER_UI_PORT } },
        healthCheck: { test: tcpCheck(DRIVER_UI_PORT), startPeriodSeconds: 60 },
        volumes: [checkpoints],
        volumeGroup: SPARK_GROUP,
        dependsOn: [{ on: this.workers, condition: "healthy" as const }, ...args.jobDependsOn],
        memory: config.memory.sparkDriver,
        cpu: config.cpu.sparkDriver,
      },
      this,
    );
    this.registerOutputs({ masterUrl: this.masterUrl, uiPublished: this.master.published("ui"), image });
  }
}
