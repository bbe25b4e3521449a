/**
 * statsd_exporter's mapping of Airflow's StatsD metrics (prefix `airflow`) to Prometheus series
 * with labels, after the Airflow Helm chart's mappings: a DAG run's outcome is a timer named for
 * the DAG (dagrun.duration.success.<dag>, dagrun.duration.failed.<dag>); the alerts (alerts.ts)
 * read the summaries' _count. Anything unmapped keeps statsd_exporter's default name.
 */
import { toYaml } from "../catalog/yaml";

export const STATSD_PREFIX = "airflow";

const mapping = (match: string, name: string, labels: Record<string, string>) => ({
  match: `${STATSD_PREFIX}.${match}`,
  name,
  labels,
});

export function statsdMappingConfig(): string {
  return toYaml({
    defaults: { observer_type: "summary" },
    mappings: [
      mapping("dagrun.duration.success.*", "airflow_dagrun_duration", { dag_id: "$1" }),
      mapping("dagrun.duration.failed.*", "airflow_dagrun_failed", { dag_id: "$1" }),
      mapping("dagrun.schedule_delay.*", "airflow_dagrun_schedule_delay", { dag_id: "$1" }),
      mapping("ti.finish.*.*.*", "airflow_ti_finish", { dag_id: "$1", task_id: "$2", state: "$3" }),
      mapping("dag.*.*.duration", "airflow_task_duration", { dag_id: "$1", task_id: "$2" }),
    ],
  });
}
