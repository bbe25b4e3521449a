/**
 * The TypeScript workers: one image (images/workers/Dockerfile) and one container per
 * long-running worker (relay, processor), plus the offline randomuser-compatible API when the
 * stage names no external data source. Ingest is not a container: the Airflow DAG runs it
 * (`ingest --once` from the same build) on its schedule; the DAG is the scheduler, and an
 * always-on loop beside it would ingest forever (and call a public API every second).
 */
import * as pulumi from "@pulumi/pulumi";
import { StageConfig } from "../config";
import { PORTS } from "../catalog/settings";
import { buildCaArgs } from "../catalog/images";
import { Dependency, ServiceHandle, ServiceSpec, Target } from "../spec";
import { PipelineEnv, merge } from "../wiring";

export type WorkerName = "relay" | "processor";

export interface WorkersArgs {
  target: Target;
  config: StageConfig;
  env: PipelineEnv;
  /** What each worker waits for before it starts. */
  dependsOn: Record<WorkerName, Dependency[]>;
}

/** Asks the process itself: node is in the image, curl is not. */
const httpCheck = (port: number, path: string) => [
  "CMD",
  "node",
  "-e",
  `fetch('http://127.0.0.1:${port}${path}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
];

/** A node process per check: starting one took over 5 s (Docker's usual timeout) on a loaded 2-core host. */
const HTTP_CHECK_TIMING = { intervalSeconds: 15, timeoutSeconds: 20 };

export class Workers extends pulumi.ComponentResource {
  readonly image: pulumi.Output<string>;
  /** Undefined when the stage config names an external data source. */
  readonly api?: ServiceHandle;
  readonly apiBaseUrl: string;
  readonly workers: Record<WorkerName, ServiceHandle>;

  constructor(name: string, args: WorkersArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Workers", name, {}, opts);
    const { target, config, env } = args;
    this.image = target.image({ name: "workers", context: ".", dockerfile: "images/workers/Dockerfile", tag: config.imageTag, args: buildCaArgs(config) }, this);

    const base = (name: string, cmd: string, memory: string, cpu: string): Omit<ServiceSpec, "env"> => ({
      name,
      state: "stateless",
      image: this.image,
      args: ["node", "dist/runtime/main.js", cmd],
      ports: { metrics: { container: PORTS.workerMetrics } },
      healthCheck: { test: httpCheck(PORTS.workerMetrics, "/healthz"), ...HTTP_CHECK_TIMING },
      memory,
      cpu,
    });

    if (config.dataSourceUrl === undefined) {
      this.api = target.service(
        {
          ...base("api", "api", config.memory.api, config.cpu.api),
          ports: { http: { container: PORTS.randomUserApi } },
          env: { ...env.common.env, API_PORT: String(PORTS.randomUserApi) },
          healthCheck: { test: httpCheck(PORTS.randomUserApi, "/healthz"), ...HTTP_CHECK_TIMING },
        },
        this,
      );
      this.apiBaseUrl = `http://${this.api.address("http")}`;
    } else {
      this.apiBaseUrl = config.dataSourceUrl;
    }
    const mem = config.memory.worker;
    const cpu = config.cpu.worker;
    this.workers = {
      // Relays claim outbox rows side by side, and a change stops the old ones before new ones
      // start (per-key order); processors share the consumer group's partitions.
      relay: target.service({ ...base("relay", "relay", mem, cpu), exclusive: true, replicas: config.relayReplicas, ...merge(env.common, env.postgres, env.kafka), dependsOn: args.dependsOn.relay }, this),
      processor: target.service({ ...base("processor", "processor", mem, cpu), replicas: config.replication.processorReplicas, ...merge(env.common, env.kafka, env.cassandra), dependsOn: args.dependsOn.processor }, this),
    };
    this.registerOutputs({ image: this.image, apiBaseUrl: this.apiBaseUrl });
  }
}
