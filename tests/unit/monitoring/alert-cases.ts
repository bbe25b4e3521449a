/**
 * Input series per alert for `promtool test rules`, one sample a minute: a failing scenario whose
 * condition first holds at `onset` (minutes, derived from the settings' windows and thresholds),
 * and healthy series on which the alert must stay silent. Labels are the alert's own, less severity.
 */
import type { MonitoringSettings } from "../../../infra/monitoring/settings";

export interface Series {
  series: string;
  values: string;
}

export interface AlertCase {
  alert: string;
  scenario: string;
  failing: Series[];
  onset: number;
  labels: Record<string, string>;
  healthy: Series[];
}

/** Whole minutes of a Prometheus duration (the tests sample once a minute). */
export const minutes = (d: string): number => {
  const n = Number(d.slice(0, -1));
  return d.endsWith("h") ? n * 60 : d.endsWith("m") ? n : Math.ceil(n / 60);
};

const s = (series: string, values: string): Series => ({ series, values });
/** a backlog drained every other minute: never empty for long, never growing */
const sawtooth = Array.from({ length: 40 }, () => "500 0").join(" ");
// every series lasts 81 samples (minutes 0..80); things go wrong at minute 21. "_x21": 21 blanks
// (minutes 0..20), while "0x20" is 21 zeros
const RELAY = 'job="relay",instance="relay:9464"';
const PROCESSOR = 'job="processor",instance="processor-0:9464"';
const LAG = 'job="kafka-exporter",instance="kafka-exporter:9308",consumergroup="users-processor",topic="users_created"';
const INGEST = 'job="ingest",instance="ingest:9464"';
const SPARK_Q = 'job="spark-query",instance="",query="users_by_country",source="KafkaV2[Subscribe[users_created]]"';
const DAG = 'job="airflow-statsd",instance="statsd:9102"';

export function alertCases(c: MonitoringSettings): AlertCase[] {
  const W = minutes(c.backlogWindow);
  const dag = `${DAG},dag_id="${c.dagId}"`;
  const fs = 'job="node",instance="host:9100",device="/dev/sda1",mountpoint="/"';
  const tmpfs = 'job="node",instance="host:9100",device="tmpfs",mountpoint="/run",fstype="tmpfs"';
  return [
    {
      alert: "OutboxBacklogGrowing",
      scenario: "the backlog grows from minute 21 and never empties",
      failing: [s(`pipeline_outbox_pending{${RELAY}}`, "0x20 5+5x60")],
      onset: 21 + W,
      labels: { job: "relay", instance: "relay:9464" },
      healthy: [s(`pipeline_outbox_pending{${RELAY}}`, `${sawtooth} 0`)],
    },
    {
      alert: "OutboxOldestRowTooOld",
      scenario: "the oldest row ages a minute a minute from minute 21",
      failing: [s(`pipeline_outbox_oldest_pending_seconds{${RELAY}}`, "0x20 60+60x60")],
      onset: 21 + Math.floor(c.oldestPendingMaxSeconds / 60),
      labels: { job: "relay", instance: "relay:9464" },
      healthy: [s(`pipeline_outbox_oldest_pending_seconds{${RELAY}}`, `0x20 ${c.oldestPendingMaxSeconds - 1}x60`)],
    },
    {
      alert: "RelayCannotReadOutbox",
      scenario: "the count fails (-1) from minute 21",
      failing: [s(`pipeline_outbox_pending{${RELAY}}`, "0x20 -1x60")],
      onset: 21,
      labels: { job: "relay", instance: "relay:9464" },
      healthy: [s(`pipeline_outbox_pending{${RELAY}}`, "0x80")],
    },
    {
      alert: "SparkQueryLagGrowing",
      scenario: "the query's records behind grow from minute 21",
      failing: [
        s(`spark_query_offsets_behind_latest{${SPARK_Q},stat="max"}`, "0x20 50+50x60"),
        s(`spark_query_offsets_behind_latest{${SPARK_Q},stat="min"}`, "0x80"),
      ],
      onset: 21 + W,
      labels: { query: "users_by_country" },
      healthy: [s(`spark_query_offsets_behind_latest{${SPARK_Q},stat="max"}`, `${sawtooth} 0`)],
    },
    {
      alert: "ConsumerLagGrowing",
      scenario: "partition 0's lag grows from minute 21, partition 1 keeps up",
      failing: [
        s(`kafka_consumergroup_lag{${LAG},partition="0"}`, "0x20 5+5x60"),
        s(`kafka_consumergroup_lag{${LAG},partition="1"}`, "0x80"),
      ],
      onset: 21 + W,
      labels: { consumergroup: "users-processor", topic: "users_created" },
      healthy: [s(`kafka_consumergroup_lag{${LAG},partition="0"}`, `${sawtooth} 0`)],
    },
    {
      alert: "ProcessorStoresNothing",
      scenario: "the relay publishes, the processor stops at minute 20",
      failing: [
        s(`pipeline_records_out_total{${RELAY},worker="relay"}`, "0+100x80"),
        s(`pipeline_records_out_total{${PROCESSOR},worker="processor"}`, "0+100x20 2000x60"),
      ],
      onset: 20 + W,
      labels: {},
      healthy: [
        s(`pipeline_records_out_total{${RELAY},worker="relay"}`, "0+100x80"),
        s(`pipeline_records_out_total{${PROCESSOR},worker="processor"}`, "0+100x80"),
      ],
    },
    {
      alert: "DeadLettersWritten",
      scenario: "the first dead letter at minute 21 (a series born then)",
      failing: [s(`pipeline_records_failed_total{${PROCESSOR},worker="processor",reason="contract"}`, "_x21 1x59")],
      onset: 21,
      labels: { reason: "contract" },
      healthy: [
        s(`pipeline_records_failed_total{${PROCESSOR},worker="processor",reason="contract"}`, "3x80"),
        s(`pipeline_records_failed_total{${INGEST},worker="ingest",reason="invalid"}`, "_x77 1x3"),
      ],
    },
    {
      alert: "OutboxRowsParked",
      scenario: "the relay parks a row a minute from minute 21",
      failing: [s(`pipeline_records_failed_total{${RELAY},worker="relay",reason="parked"}`, "0x20 1+1x60")],
      onset: 21,
      labels: {},
      healthy: [
        s(`pipeline_records_failed_total{${RELAY},worker="relay",reason="parked"}`, "2x80"),
        s(`pipeline_records_failed_total{${PROCESSOR},worker="processor",reason="contract"}`, "0+1x80"),
      ],
    },
    {
      alert: "TargetDown",
      scenario: "a processor stops answering at minute 21",
      failing: [s(`up{${PROCESSOR}}`, "1x20 0x60"), s(`up{${RELAY}}`, "1x80")],
      onset: 21,
      labels: { job: "processor", instance: "processor-0:9464" },
      healthy: [s(`up{${PROCESSOR}}`, "1x80")],
    },
    {
      alert: "PostgresDown",
      scenario: "postgres_exporter cannot connect from minute 21",
      failing: [s('pg_up{job="postgres",instance="pg-exporter:9187"}', "1x20 0x60")],
      onset: 21,
      labels: { job: "postgres", instance: "pg-exporter:9187" },
      healthy: [s('pg_up{job="postgres",instance="pg-exporter:9187"}', "1x80")],
    },
    ...brokerCases(),
    ...dagCases(dag, minutes(c.dagSuccessWindow)),
    {
      alert: "FilesystemFilling",
      scenario: "/ drops to 5 % free at minute 21; a full tmpfs is no disk",
      failing: [
        s(`node_filesystem_avail_bytes{${fs},fstype="ext4"}`, "50x20 5x60"),
        s(`node_filesystem_size_bytes{${fs},fstype="ext4"}`, "100x80"),
      ],
      onset: 21,
      labels: { job: "node", instance: "host:9100", device: "/dev/sda1", mountpoint: "/", fstype: "ext4" },
      healthy: [
        s(`node_filesystem_avail_bytes{${fs},fstype="ext4"}`, "50x80"),
        s(`node_filesystem_size_bytes{${fs},fstype="ext4"}`, "100x80"),
        s(`node_filesystem_avail_bytes{${tmpfs}}`, "1x80"),
        s(`node_filesystem_size_bytes{${tmpfs}}`, "100x80"),
      ],
    },
  ];
}

/** A gauge that goes from 0 to `bad` at minute 21 on member 0, member 1 staying at 0. */
function memberGauge(alert: string, metric: string, job: string, bad: number): AlertCase {
  const m = (i: number) => `${metric}{job="${job}",instance="${job}-${i}:7071"}`;
  return {
    alert,
    scenario: `member 0 reports ${bad} from minute 21`,
    failing: [s(m(0), `0x20 ${bad}x60`), s(m(1), "0x80")],
    onset: 21,
    labels: { job },
    healthy: [s(m(0), "0x80"), s(m(1), "0x80")],
  };
}

function brokerCases(): AlertCase[] {
  return [
    memberGauge("KafkaUnderReplicatedPartitions", "kafka_server_replicamanager_underreplicatedpartitions", "kafka", 3),
    memberGauge("KafkaOfflinePartitions", "kafka_controller_kafkacontroller_offlinepartitionscount", "kafka", 2),
    memberGauge("CassandraNodeDown", "cassandra_failuredetector_downendpointcount", "cassandra", 1),
  ];
}

function dagCases(dag: string, successWindow: number): AlertCase[] {
  const ok = (values: string) => s(`airflow_dagrun_duration_count{${dag}}`, values);
  const dagId = /dag_id="([^"]+)"/.exec(dag)?.[1] ?? "";
  return [
    {
      alert: "DagRunFailed",
      scenario: "the DAG's first failure at minute 21 (a series born then)",
      failing: [s(`airflow_dagrun_failed_count{${dag}}`, "_x21 1x59"), ok("0+1x80")],
      onset: 21,
      labels: { dag_id: dagId },
      healthy: [
        s(`airflow_dagrun_failed_count{${dag}}`, "2x80"),
        ok("0+1x80"),
        s(`airflow_dagrun_failed_count{${DAG},dag_id="other"}`, "_x77 1x3"),
      ],
    },
    {
      alert: "DagNoSuccessfulRun",
      scenario: "the last success at minute 20",
      failing: [ok("0+1x20 20x60")],
      onset: 20 + successWindow,
      labels: { dag_id: dagId },
      healthy: [ok("0+1x80")],
    },
    {
      alert: "DagNoSuccessfulRun",
      scenario: "no success ever recorded",
      failing: [s('up{job="airflow-statsd",instance="statsd:9102"}', "1x80")],
      onset: 0,
      labels: { job: "airflow-statsd", dag_id: dagId },
      healthy: [ok("0+1x80")],
    },
  ];
}
