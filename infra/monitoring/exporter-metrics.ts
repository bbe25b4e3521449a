/**
 * Exporter series the consoles read beyond those the alerts name (alerts.ts): each with the exporter
 * and config that publishes it, as the alerts' comments do, so the unit test can hold every console
 * query to names that exist. A name here is a claim about that exporter: check it when deploying it.
 */
export const CONSOLE_EXPORTER_METRICS: Record<string, string> = {
  // the JMX exporter agent with our rules (jmx.ts): kafka.server<type=BrokerTopicMetrics,
  // name=MessagesInPerSec, topic=...><>Count, and kafka.controller<...ActiveControllerCount><>Value
  kafka_server_brokertopicmetrics_messagesin_total: "jmx_exporter, jmx.ts kafka rules",
  kafka_controller_kafkacontroller_activecontrollercount: "jmx_exporter, jmx.ts kafka rules",
  // the JMX exporter agent's own JVM collector (0.x names, the agent is 0.20.0)
  jvm_memory_bytes_used: "jmx_exporter JVM collector",
  // jmx.ts cassandra rules: ClientRequest <scope> Latency/Timeouts Count, Storage Load Count (bytes)
  cassandra_clientrequest_latency_total: "jmx_exporter, jmx.ts cassandra rules",
  cassandra_clientrequest_timeouts_total: "jmx_exporter, jmx.ts cassandra rules",
  cassandra_storage_load: "jmx_exporter, jmx.ts cassandra rules",
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
