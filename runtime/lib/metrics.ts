/**
 * Prometheus metrics of the workers. One registry per process, labelled by worker, so several
 * workers can run in one process (npm run pipeline, bench) without clashing.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface WorkerMetrics {
  registry: Registry;
  recordsIn: Counter<"worker">;
  recordsOut: Counter<"worker">;
  recordsFailed: Counter<"worker" | "reason">;
  retries: Counter<"worker">;
  batchSeconds: Histogram<"worker">;
  consumerLag: Gauge<"topic" | "partition" | "group">;
  outboxPending: Gauge;
  outboxOldestPendingSeconds: Gauge;
  outboxPruned: Counter;
  fetchToStoreSeconds: Histogram;
  stageSeconds: Histogram<"stage">;
}

/** The registry's gauge of that name, made on first use and the same one after. */
export function registryGauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Gauge<L> {
  return (
    (registry.getSingleMetric(name) as Gauge<L> | undefined) ??
    new Gauge({ name, help, labelNames, registers: [registry] })
  );
}

let shared: WorkerMetrics | undefined;

export function metrics(): WorkerMetrics {
  if (shared) return shared;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  shared = {
    registry,
    recordsIn: new Counter({
      name: "pipeline_records_in_total",
      help: "Records a worker received",
      labelNames: ["worker"],
      registers: [registry],
    }),
    recordsOut: new Counter({
      name: "pipeline_records_out_total",
      help: "Records a worker handed on (staged, published, stored)",
      labelNames: ["worker"],
      registers: [registry],
    }),
    recordsFailed: new Counter({
      name: "pipeline_records_failed_total",
      help: "Records set aside (rejected, dead-lettered)",
      labelNames: ["worker", "reason"],
      registers: [registry],
    }),
    retries: new Counter({
      name: "pipeline_retries_total",
      help: "Retried calls",
      labelNames: ["worker"],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: "pipeline_batch_duration_seconds",
      help: "Time to handle one batch",
      labelNames: ["worker"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: "pipeline_consumer_lag",
      help: "Messages behind the high watermark",
      labelNames: ["topic", "partition", "group"],
      registers: [registry],
    }),
    // per stored record: fetched_at (set by ingest) to Cassandra's ack of its write, seen by the
    // processor. Cassandra's WRITETIME is the outbox id now (processor/write-time.ts), not a time
    fetchToStoreSeconds: new Histogram({
      name: "pipeline_fetch_to_store_seconds",
      help: "Seconds from a record's fetch (fetched_at) to its write acknowledged by Cassandra",
      buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300],
      registers: [registry],
    }),
    // the same latency in two parts, at the Kafka message's timestamp (the relay's send): where a
    // slow record waited (ingest + outbox + relay, or Kafka + processor + Cassandra)
    stageSeconds: new Histogram({
      name: "pipeline_stage_seconds",
      help: "Seconds a stored record spent from its fetch to its Kafka send (stage fetch_to_kafka), and from that send to Cassandra's ack (kafka_to_store)",
      labelNames: ["stage"],
      buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300],
      registers: [registry],
    }),
    outboxPending: new Gauge({
      name: "pipeline_outbox_pending",
      help: "Outbox rows not yet published (seen by the relay, about once a second)",
      registers: [registry],
    }),
    // records stopped shows here even when few rows wait: the alert OutboxOldestRowTooOld
    outboxOldestPendingSeconds: new Gauge({
      name: "pipeline_outbox_oldest_pending_seconds",
      help:
        "Age in seconds of the oldest outbox row not yet published, 0 when none waits (seen by the relay, " +
        "about once a second)",
      registers: [registry],
    }),
    outboxPruned: new Counter({
      name: "pipeline_outbox_pruned_total",
      help: "Published outbox rows deleted after the retention",
      registers: [registry],
    }),
  };
  return shared;
}
