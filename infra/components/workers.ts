/**
 * The TypeScript workers: one image (images/workers/Dockerfile) and one container per
 * long-running worker (relay, processor), plus the offline randomuser-compatible API when the
 * stage names no external data source. Ingest is not a container: the Airflow DAG runs it
 * (`ingest --once` from the same build) on its schedule; the DAG is the scheduler, and an
 * always-on loop beside it would ingest forever (and call a public API every second).
 */
import * as pulumi from "@pulumi/pulumi";
import { IMAGE_USERS, PORTS } from "../catalog/settings";
import { Dependency, EnvGroup, ServiceHandle, ServiceSpec, Size, Target, merge, nodeHttpCheck } from "../spec";

export type WorkerName = "relay" | "processor";

export interface WorkersArgs {
  target: Target;
  imageTag: string;
  /** Build args every project image gets (the build's CA certificates). */
  buildArgs: Record<string, string>;
  /** Absent: the offline randomuser-compatible API runs beside the workers and is the source. */
  dataSourceUrl?: string;
  replicas: Record<WorkerName, number>;
  sizes: { api: Size; worker: Size };
  /** The env every process gets (api included), then each worker's own groups, merged in order. */
  env: { common: EnvGroup } & Record<WorkerName, EnvGroup[]>;
  /** What each worker waits for before it starts. */
  dependsOn: Record<WorkerName, Dependency[]>;
}

export class Workers extends pulumi.ComponentResource {
  readonly image: pulumi.Output<string>;
  /** Undefined when the stage config names an external data source. */
  readonly api?: ServiceHandle;
  readonly apiBaseUrl: string;
  readonly workers: Record<WorkerName, ServiceHandle>;

  constructor(name: string, args: WorkersArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Workers", name, {}, opts);
    const { target, env, sizes } = args;
    const owner = { parent: this, name };
    const dockerfile = "images/workers/Dockerfile";
    this.image = target.image(
      { name: "workers", context: ".", dockerfile, tag: args.imageTag, args: args.buildArgs },
      owner,
    );

    const base = (name: string, cmd: string, size: Size): Omit<ServiceSpec, "env"> => ({
      name,
      state: "stateless",
      image: this.image,
      user: IMAGE_USERS.node,
      args: ["node", "dist/runtime/main.js", cmd],
      ports: { metrics: { container: PORTS.workerMetrics } },
      metrics: { port: "metrics" },
      healthCheck: nodeHttpCheck(PORTS.workerMetrics, "/healthz"),
      ...size,
    });

    if (args.dataSourceUrl === undefined) {
      this.api = target.service(
        {
          ...base("api", "api", sizes.api),
          ports: { http: { container: PORTS.randomUserApi } },
          metrics: undefined,
          env: { ...env.common.env, API_PORT: String(PORTS.randomUserApi) },
          healthCheck: nodeHttpCheck(PORTS.randomUserApi, "/healthz"),
        },
        owner,
      );
      this.apiBaseUrl = `http://${this.api.address("http")}`;
    } else {
      this.apiBaseUrl = args.dataSourceUrl;
    }
    const worker = (w: WorkerName) => ({
      ...base(w, w, sizes.worker),
      replicas: args.replicas[w],
      ...merge(env.common, ...env[w]),
      dependsOn: args.dependsOn[w],
    });
    this.workers = {
      // Relays claim outbox rows side by side, and a change stops the old ones before new ones
      // start (per-key order); processors share the consumer group's partitions.
      relay: target.service({ ...worker("relay"), exclusive: true }, owner),
      processor: target.service(worker("processor"), owner),
    };
    this.registerOutputs({ image: this.image, apiBaseUrl: this.apiBaseUrl });
  }
}
