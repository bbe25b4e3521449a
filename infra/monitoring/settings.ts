/**
 * The thresholds and `for` windows of the pipeline's alerts, with defaults a person on call can live
 * with, and the scrape job names the rules select on (prometheus.yml from scrape.ts uses the same).
 */
import { z } from "zod";

/** Prometheus scrape jobs: the rules select series by these names, so scrape configs must use them. */
export const JOBS = {
  relay: "relay",
  processor: "processor",
  /** danielqsj/kafka_exporter: consumer group lag */
  kafkaExporter: "kafka-exporter",
  /** the JMX exporter java agent in each broker, with jmx_exporter's example_configs/kafka-2_0_0.yml */
  kafka: "kafka",
  zookeeper: "zookeeper",
  /** the JMX exporter java agent in each Cassandra node (example_configs/cassandra.yml plus one rule) */
  cassandra: "cassandra",
  /** prometheus-community/postgres_exporter */
  postgres: "postgres",
  /** statsd_exporter with the Airflow Helm chart's mappings (chart/files/statsd-mappings.yml) */
  airflow: "airflow-statsd",
  /** node_exporter on each host (the Docker host, each Kubernetes node) */
  node: "node",
  pushgateway: "pushgateway",
  /** Spark's PrometheusServlet on each daemon's and the driver's web UI */
  sparkMaster: "spark-master",
  sparkWorker: "spark-worker",
  sparkDriver: "spark-driver",
  /** the Spark query's progress, pushed by its listener to the Pushgateway (job label kept) */
  sparkQuery: "spark-query",
} as const;

/** A Prometheus duration as rules take it: 30s, 5m, 1h. */
const duration = z.string().regex(/^[1-9][0-9]*(s|m|h)$/, "a Prometheus duration such as 30s, 5m or 1h");
const fraction = z.number().gt(0).lt(1);

export const monitoringSettingsSchema = z
  .object({
    /** The DAG that runs ingest (images/airflow/dags/user_automation.py). */
    dagId: z.string().min(1).default("user_automation"),
    /** How far back "the backlog grew and never emptied" and "the lag grew" look. */
    backlogWindow: duration.default("10m"),
    backlogFor: duration.default("5m"),
    /** The oldest unpublished outbox row may be this old before records count as stopped. */
    oldestPendingMaxSeconds: z.number().int().positive().default(300),
    oldestPendingFor: duration.default("2m"),
    /** Relay publishing, processor storing nothing, for this long. */
    processorStallFor: duration.default("5m"),
    /** Dead letters and parked rows: any at all is worth a look. */
    setAsideWindow: duration.default("5m"),
    setAsideFor: duration.default("1m"),
    /** A scrape target (worker, member, exporter) not answering. */
    targetDownFor: duration.default("2m"),
    postgresDownFor: duration.default("1m"),
    underReplicatedFor: duration.default("5m"),
    offlinePartitionsFor: duration.default("1m"),
    cassandraDownFor: duration.default("2m"),
    /** A failed DAG run in this window fires; no successful run in dagSuccessWindow fires too. */
    dagFailureWindow: duration.default("30m"),
    /** Six runs of the default schedule (every 5 minutes). */
    dagSuccessWindow: duration.default("30m"),
    dagFor: duration.default("1m"),
    /** Free space below this share of a filesystem (a claim's is one of a node's mounts). */
    diskFreeMin: fraction.default(0.1),
    diskFor: duration.default("10m"),
  })
  .strict();

export type MonitoringSettings = z.output<typeof monitoringSettingsSchema>;

/** The settings with defaults filled in; a bad value throws, naming the key. */
export function monitoringSettings(overrides: z.input<typeof monitoringSettingsSchema> = {}): MonitoringSettings {
  const r = monitoringSettingsSchema.safeParse(overrides);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid monitoring settings: ${issues.join("; ")}`);
  }
  return r.data;
}
