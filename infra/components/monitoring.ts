/**
 * Prometheus: scrapes every replica of each process that serves metrics (ServiceSpec.metrics) and
 * evaluates the pipeline's alert and recording rules (infra/monitoring). Its config and rules are
 * files from the program; its series live on a volume of their own and outlive a restart. Beside
 * it, the lag exporter (`main lag`, from the workers' image): the processor group's lag, read from
 * Kafka by a process that keeps running when the processor stops.
 */
import * as pulumi from "@pulumi/pulumi";
import { IMAGE_USERS, PORTS } from "../catalog/settings";
import { consoleFiles, consoleFlags } from "../monitoring/consoles";
import { renderRules, ruleGroups } from "../monitoring/rules";
import { renderScrapeConfig, type ScrapeJob } from "../monitoring/scrape";
import type { MonitoringSettings } from "../monitoring/settings";
import { JOBS } from "../monitoring/settings";
import { Dependency, EnvGroup, Handle, ServiceHandle, Size, Target, merge, nodeHttpCheck, wgetCheck } from "../spec";

/** The upstream image runs as nobody (uid and gid 65534): a fresh cluster volume is made writable for it. */
const NOBODY = 65534;
const CONFIG = "/etc/prometheus/prometheus.yml";
const RULES = "/etc/prometheus/pipeline-rules.yml";

export interface MonitoringArgs {
  target: Target;
  /** prom/prometheus, pinned. */
  image: string;
  size: Size;
  /** Host port of the web UI and API (Docker); a cluster's is reached with port-forward. */
  publishedPort: number;
  /** How long series are kept (Prometheus's storage.tsdb.retention.time). */
  retention: string;
  /** Job name (the rules select on it) -> the service whose replicas it scrapes. */
  scrape: Record<string, Handle>;
  /** Jobs whose series keep the job and instance labels their pushers set (the Pushgateway's). */
  honorLabels?: string[];
  settings: MonitoringSettings;
  /** Seconds between scrapes and between rule evaluations. */
  intervalSeconds: number;
  /** The lag exporter: the workers' image, its env (Kafka's), what it waits for. */
  lagExporter: { image: pulumi.Input<string>; env: EnvGroup[]; dependsOn: Dependency[]; size: Size };
}

export class Monitoring extends pulumi.ComponentResource {
  readonly prometheus: ServiceHandle;
  readonly lagExporter: ServiceHandle;
  /** The web UI and HTTP API from outside the stack. */
  readonly url: string;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Monitoring", name, {}, opts);
    const lag = args.lagExporter;
    this.lagExporter = args.target.service(
      {
        name: "lag-exporter",
        state: "stateless",
        image: lag.image,
        user: IMAGE_USERS.node,
        args: ["node", "dist/runtime/main.js", "lag"],
        ...merge(...lag.env),
        ports: { metrics: { container: PORTS.workerMetrics } },
        metrics: { port: "metrics" },
        healthCheck: nodeHttpCheck(PORTS.workerMetrics, "/healthz"),
        dependsOn: lag.dependsOn,
        ...lag.size,
      },
      { parent: this, name },
    );
    const jobs: Record<string, ScrapeJob> = {};
    for (const [job, handle] of Object.entries({ ...args.scrape, [JOBS.kafkaExporter]: this.lagExporter })) {
      const m = handle.metrics;
      if (!m)
        throw new Error(
          `monitoring: ${handle.name} serves no metrics (its spec has no \`metrics\`), so job ${job} cannot scrape it`,
        );
      const where =
        "hosts" in m
          ? { targets: m.hosts.map((h) => `${h}:${m.port}`) }
          : { dns: { names: [m.dnsName], port: m.port } };
      const honor = args.honorLabels?.includes(job) ? { honorLabels: true } : {};
      jobs[job] = { ...where, ...honor, ...(m.path === "/metrics" ? {} : { metricsPath: m.path }) };
    }
    jobs.prometheus = { targets: [`127.0.0.1:${PORTS.prometheus}`] };
    const interval = `${args.intervalSeconds}s`;
    const config = renderScrapeConfig(jobs, {
      scrapeInterval: interval,
      evaluationInterval: interval,
      ruleFiles: [RULES],
    });

    this.prometheus = args.target.service(
      {
        name: "prometheus",
        state: "stateful",
        image: args.image,
        user: IMAGE_USERS.nobody,
        args: [
          `--config.file=${CONFIG}`,
          "--storage.tsdb.path=/prometheus",
          `--storage.tsdb.retention.time=${args.retention}`,
          `--web.listen-address=0.0.0.0:${PORTS.prometheus}`,
          // the pipeline's dashboards: /consoles/pipeline.html and one per component
          ...consoleFlags(),
        ],
        env: {},
        ports: { web: { container: PORTS.prometheus, published: args.publishedPort } },
        healthCheck: wgetCheck(PORTS.prometheus, "/-/ready", { intervalSeconds: 10, timeoutSeconds: 5 }),
        aliveCheck: wgetCheck(PORTS.prometheus, "/-/healthy", { intervalSeconds: 30, timeoutSeconds: 10 }),
        volumes: [{ volume: "prometheus-data", path: "/prometheus" }],
        volumeGroup: NOBODY,
        files: [
          { path: CONFIG, content: config },
          { path: RULES, content: renderRules(ruleGroups(args.settings)) },
          ...consoleFiles(),
        ],
        // SIGTERM: Prometheus closes its head block and WAL cleanly
        stop: { graceSeconds: 60 },
        ...args.size,
      },
      { parent: this, name },
    );
    this.url = `http://${this.prometheus.outsideAddress("web") ?? args.target.outsideAddress(args.publishedPort)}`;
    this.registerOutputs({ url: this.url, address: this.prometheus.address("web") });
  }
}

export interface JmxAgentImageArgs {
  target: Target;
  tag: string;
  /** Build args every project image gets (the build's CA certificates). */
  buildArgs: Record<string, string>;
}

/**
 * The JMX exporter agent's image (images/jmx-agent), built before the JVMs that load it: Kafka,
 * ZooKeeper and Cassandra copy its folder out and keep their upstream images.
 */
export class JmxAgentImage extends pulumi.ComponentResource {
  readonly image: pulumi.Output<string>;

  constructor(name: string, args: JmxAgentImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:JmxAgentImage", name, {}, opts);
    const dockerfile = "images/jmx-agent/Dockerfile";
    // its own folder as the context: the worker sources (in the root context) never rebuild it
    this.image = args.target.image(
      { name: "jmx-agent", context: "images/jmx-agent", dockerfile, tag: args.tag, args: args.buildArgs },
      { parent: this, name },
    );
    this.registerOutputs({ image: this.image });
  }
}
