/**
 * The alerts a person on call wants, each with a runbook row in docs/operating.md#alerts. Our
 * workers' names come from runtime/lib/metrics.ts; every exporter's name says which exporter and
 * config publish it (the next step deploys those exporters with exactly these configs).
 * Summaries use label templates only, so the unit tests can check their text exactly.
 */
import { RUNBOOK, type AlertRule, type RuleGroup, type Severity } from "./types";
import { JOBS, type MonitoringSettings } from "./settings";

const alert = (name: string, severity: Severity, expr: string, forDuration: string, summary: string): AlertRule => ({
  alert: name,
  expr,
  for: forDuration,
  labels: { severity },
  annotations: { summary, runbook_url: RUNBOOK },
});

/**
 * Growth of a counter over a window, counting a series born inside it: prom-client and
 * statsd_exporter create a labelled series at its first increment, which increase() alone misses.
 * The `> 0` keeps a zero increase of a young series from hiding its birth on the `or`'s right.
 */
export const counterGrowth = (selector: string, window: string): string =>
  `(increase(${selector}[${window}]) > 0 or (${selector} unless ${selector} offset ${window}))`;

function recordsStop(s: MonitoringSettings): AlertRule[] {
  const pending = `pipeline_outbox_pending{job="${JOBS.relay}"}`;
  // kafka_exporter (danielqsj/kafka_exporter): kafka_consumergroup_lag{consumergroup, topic, partition}
  const lag = `kafka_consumergroup_lag{job="${JOBS.kafkaExporter}"}`;
  const sparkBehind = `spark_query_offsets_behind_latest{job="${JOBS.sparkQuery}",stat="max"}`;
  const out = (worker: string) =>
    `sum(rate(pipeline_records_out_total{job="${worker}",worker="${worker}"}[${s.backlogWindow}]))`;
  return [
    alert(
      "OutboxBacklogGrowing",
      "warning",
      `min_over_time(${pending}[${s.backlogWindow}]) > 0 and delta(${pending}[${s.backlogWindow}]) > 0`,
      s.backlogFor,
      "The outbox backlog never emptied and grew for {{ $labels.instance }}: the relay does not keep up",
    ),
    alert(
      "OutboxOldestRowTooOld",
      "critical",
      `pipeline_outbox_oldest_pending_seconds{job="${JOBS.relay}"} > ${s.oldestPendingMaxSeconds}`,
      s.oldestPendingFor,
      `An outbox row on {{ $labels.instance }} waits over ${s.oldestPendingMaxSeconds} s: records stopped`,
    ),
    alert(
      "RelayCannotReadOutbox",
      "critical",
      `${pending} < 0`,
      s.oldestPendingFor,
      "The relay cannot count the outbox (PostgreSQL unreachable from {{ $labels.instance }})",
    ),
    alert(
      "ConsumerLagGrowing",
      "warning",
      `sum by (consumergroup, topic) (min_over_time(${lag}[${s.backlogWindow}])) > 0` +
        ` and sum by (consumergroup, topic) (delta(${lag}[${s.backlogWindow}])) > 0`,
      s.backlogFor,
      "Group {{ $labels.consumergroup }} falls behind on {{ $labels.topic }}",
    ),
    // images/spark/job/progress_metrics.py, pushed after each batch (the Pushgateway keeps job and query)
    alert(
      "SparkQueryLagGrowing",
      "warning",
      `max by (query) (min_over_time(${sparkBehind}[${s.backlogWindow}])) > 0` +
        ` and max by (query) (delta(${sparkBehind}[${s.backlogWindow}])) > 0`,
      s.backlogFor,
      "The Spark query {{ $labels.query }} falls behind the topic: users_by_country lags",
    ),
    alert(
      "ProcessorStoresNothing",
      "critical",
      `${out(JOBS.relay)} > 0 unless ${out(JOBS.processor)} > 0`,
      s.processorStallFor,
      "The relay publishes and no processor stores: records stopped after Kafka",
    ),
  ];
}

function setAside(s: MonitoringSettings): AlertRule[] {
  const failed = (worker: string) =>
    counterGrowth(`pipeline_records_failed_total{job="${worker}",worker="${worker}"}`, s.setAsideWindow);
  return [
    alert(
      "DeadLettersWritten",
      "warning",
      `sum by (reason) (${failed(JOBS.processor)}) > 0`,
      s.setAsideFor,
      "The processor dead-lettered records ({{ $labels.reason }}) to users_created.dlq",
    ),
    alert(
      "OutboxRowsParked",
      "warning",
      `sum (${failed(JOBS.relay)}) > 0`,
      s.setAsideFor,
      "The relay parked outbox rows it cannot publish",
    ),
  ];
}

function members(s: MonitoringSettings): AlertRule[] {
  return [
    alert(
      "TargetDown",
      "critical",
      "up == 0",
      s.targetDownFor,
      "{{ $labels.job }} {{ $labels.instance }} does not answer its scrape",
    ),
    // postgres_exporter: pg_up is 0 while the exporter cannot connect to PostgreSQL
    alert(
      "PostgresDown",
      "critical",
      `pg_up{job="${JOBS.postgres}"} == 0`,
      s.postgresDownFor,
      "PostgreSQL does not accept connections",
    ),
    // JMX exporter, example_configs/kafka-2_0_0.yml: kafka.server<type=ReplicaManager, name=UnderReplicatedPartitions>
    alert(
      "KafkaUnderReplicatedPartitions",
      "warning",
      `sum by (job) (kafka_server_replicamanager_underreplicatedpartitions{job="${JOBS.kafka}"}) > 0`,
      s.underReplicatedFor,
      "Kafka has under-replicated partitions",
    ),
    // the same config: kafka.controller<type=KafkaController, name=OfflinePartitionsCount>
    alert(
      "KafkaOfflinePartitions",
      "critical",
      `sum by (job) (kafka_controller_kafkacontroller_offlinepartitionscount{job="${JOBS.kafka}"}) > 0`,
      s.offlinePartitionsFor,
      "Kafka has partitions with no leader: their records cannot be written or read",
    ),
    // JMX exporter with one rule beside example_configs/cassandra.yml (which exports only the metrics
    // domain): org.apache.cassandra.net<type=FailureDetector><>DownEndpointCount, lowercased
    alert(
      "CassandraNodeDown",
      "critical",
      `max by (job) (cassandra_failuredetector_downendpointcount{job="${JOBS.cassandra}"}) > 0`,
      s.cassandraDownFor,
      "Gossip sees a Cassandra node down (not UN in nodetool status)",
    ),
  ];
}

function dag(s: MonitoringSettings): AlertRule[] {
  // statsd_exporter with the Airflow Helm chart's mappings: dagrun.duration.failed.<dag> becomes
  // airflow_dagrun_failed{dag_id}, .success.<dag> airflow_dagrun_duration{dag_id}; timers are summaries
  const sel = `{job="${JOBS.airflow}",dag_id="${s.dagId}"}`;
  const ok = `airflow_dagrun_duration_count${sel}`;
  return [
    alert(
      "DagRunFailed",
      "warning",
      `sum by (dag_id) (${counterGrowth(`airflow_dagrun_failed_count${sel}`, s.dagFailureWindow)}) > 0`,
      s.dagFor,
      "A run of the DAG {{ $labels.dag_id }} failed",
    ),
    alert(
      "DagNoSuccessfulRun",
      "critical",
      `sum by (dag_id) (increase(${ok}[${s.dagSuccessWindow}])) == 0 or absent_over_time(${ok}[${s.dagSuccessWindow}])`,
      s.dagFor,
      `No run of the DAG ${s.dagId} succeeded in ${s.dagSuccessWindow}: no new users are staged`,
    ),
  ];
}

function disk(s: MonitoringSettings): AlertRule[] {
  // node_exporter: node_filesystem_{avail,size}_bytes{device, fstype, mountpoint}. A claim's
  // filesystem is one of the machine's mounts, which node_exporter sees (the host's root mounted).
  const fs = `{job="${JOBS.node}",fstype!~"tmpfs|overlay|squashfs"}`;
  return [
    alert(
      "FilesystemFilling",
      "warning",
      `node_filesystem_avail_bytes${fs} / node_filesystem_size_bytes${fs} < ${s.diskFreeMin}`,
      s.diskFor,
      `{{ $labels.mountpoint }} on {{ $labels.instance }} has less than ${s.diskFreeMin * 100} % free`,
    ),
  ];
}

export function alertGroups(s: MonitoringSettings): RuleGroup[] {
  return [
    { name: "pipeline-records-stop", rules: recordsStop(s) },
    { name: "pipeline-records-set-aside", rules: setAside(s) },
    { name: "pipeline-members", rules: members(s) },
    { name: "pipeline-dag", rules: dag(s) },
    { name: "pipeline-disk", rules: disk(s) },
  ];
}
