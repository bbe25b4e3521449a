/**
 * Exporter series the consoles read beyond those the alerts name (alerts.ts): each with the exporter
 * and config that publishes it, as the alerts' comments do, so the unit test can hold every console
 * query to names that exist. A name here is a claim about that exporter: check it when deploying it.
 */
export const CONSOLE_EXPORTER_METRICS: Record<string, string> = {
  // JMX exporter agent, example_configs/kafka-2_0_0.yml: kafka.server<type=BrokerTopicMetrics,
  // name=MessagesInPerSec, topic=...><>Count, and kafka.controller<...ActiveControllerCount><>Value
  kafka_server_brokertopicmetrics_messagesin_total: "jmx_exporter kafka-2_0_0.yml",
  kafka_controller_kafkacontroller_activecontrollercount: "jmx_exporter kafka-2_0_0.yml",
  // the JMX exporter agent's own JVM collector (0.x names; 1.x renames it jvm_memory_used_bytes)
  jvm_memory_bytes_used: "jmx_exporter JVM collector",
  // example_configs/cassandra.yml's catch-all rule: cassandra_<type>_<name>{<type>=<scope>}
  cassandra_clientrequest_latency: "jmx_exporter cassandra.yml (ClientRequest Latency Count)",
  cassandra_clientrequest_timeouts: "jmx_exporter cassandra.yml (ClientRequest Timeouts Count)",
  cassandra_storage_load: "jmx_exporter cassandra.yml (Storage Load Count, bytes)",
  // prometheus-community/postgres_exporter's default collectors
  pg_stat_database_numbackends: "postgres_exporter stat_database",
  pg_stat_database_xact_commit: "postgres_exporter stat_database",
  pg_stat_database_xact_rollback: "postgres_exporter stat_database",
  pg_database_size_bytes: "postgres_exporter database",
  // statsd_exporter: the chart's summary airflow_dagrun_duration{dag_id,quantile}; scheduler_heartbeat
  // has no mapping and keeps statsd_exporter's default name
  airflow_dagrun_duration: "statsd_exporter, Airflow chart statsd-mappings.yml",
  airflow_scheduler_heartbeat: "statsd_exporter default mapping of airflow.scheduler_heartbeat",
};
