/**
 * Recording rules for the figures docs/benchmarks.md quotes: each worker's records/s, what is set
 * aside, the fetch-to-store latency and its two stages, and the consumer lag per group.
 */
import type { RecordingRule, RuleGroup } from "./types";

const quantile = (q: number, metric: string, by: string[] = []): string =>
  `histogram_quantile(${q}, sum by (${[...by, "le"].join(", ")}) (rate(${metric}_bucket[5m])))`;

export function recordingGroup(): RuleGroup {
  const rules: RecordingRule[] = [
    { record: "worker:pipeline_records_in:rate1m", expr: "sum by (worker) (rate(pipeline_records_in_total[1m]))" },
    { record: "worker:pipeline_records_out:rate1m", expr: "sum by (worker) (rate(pipeline_records_out_total[1m]))" },
    {
      record: "worker_reason:pipeline_records_failed:rate5m",
      expr: "sum by (worker, reason) (rate(pipeline_records_failed_total[5m]))",
    },
    { record: "pipeline:fetch_to_store_seconds:p50_5m", expr: quantile(0.5, "pipeline_fetch_to_store_seconds") },
    { record: "pipeline:fetch_to_store_seconds:p99_5m", expr: quantile(0.99, "pipeline_fetch_to_store_seconds") },
    { record: "stage:pipeline_stage_seconds:p99_5m", expr: quantile(0.99, "pipeline_stage_seconds", ["stage"]) },
    // kafka_exporter's per-partition lag (danielqsj/kafka_exporter), one figure per group and topic
    {
      record: "consumergroup_topic:kafka_consumergroup_lag:sum",
      expr: "sum by (consumergroup, topic) (kafka_consumergroup_lag)",
    },
  ];
  return { name: "pipeline-rates", rules };
}
