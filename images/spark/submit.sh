#!/usr/bin/env bash
# The driver container: submit the streaming job to the standalone master (client mode) and stay
# with it. SPARK_MASTER_URL (spark://master:7077), KAFKA_BROKERS, CASSANDRA_* and
# SPARK_CHECKPOINT_DIR (a volume) come from the environment; sizes from SPARK_DRIVER_MEMORY,
# SPARK_EXECUTOR_MEMORY, SPARK_EXECUTOR_CORES, SPARK_CORES_MAX. The driver's metrics, the query's
# among them (input and processing rates, batch duration), are served on its UI at
# /metrics/prometheus, named users_by_country_* (a fixed namespace, not the run's app id).
set -euo pipefail
exec /opt/spark/bin/spark-submit \
  --master "${SPARK_MASTER_URL:?set SPARK_MASTER_URL, e.g. spark://spark-master:7077}" \
  --name users_by_country \
  --conf "spark.driver.memory=${SPARK_DRIVER_MEMORY:-1g}" \
  --conf "spark.executor.memory=${SPARK_EXECUTOR_MEMORY:-1g}" \
  --conf "spark.executor.cores=${SPARK_EXECUTOR_CORES:-1}" \
  --conf "spark.cores.max=${SPARK_CORES_MAX:-1}" \
  --conf "spark.driver.host=${SPARK_DRIVER_HOST:-$(hostname -i | awk '{print $1}')}" \
  --conf "spark.metrics.conf.*.sink.prometheusServlet.class=org.apache.spark.metrics.sink.PrometheusServlet" \
  --conf "spark.metrics.conf.*.sink.prometheusServlet.path=/metrics/prometheus" \
  --conf "spark.metrics.namespace=users_by_country" \
  --conf "spark.sql.streaming.metricsEnabled=true" \
  /opt/pipeline/job/users_by_country.py "$@"
