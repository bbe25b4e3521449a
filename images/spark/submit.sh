#!/usr/bin/env bash
# The driver container: submit the streaming job to the standalone master (client mode) and stay
# with it. SPARK_MASTER_URL (spark://master:7077), KAFKA_BROKERS, CASSANDRA_* and
# SPARK_CHECKPOINT_DIR (a volume) come from the environment; sizes from SPARK_DRIVER_MEMORY,
# SPARK_EXECUTOR_MEMORY, SPARK_EXECUTOR_CORES, SPARK_CORES_MAX.
set -euo pipefail
exec /opt/spark/bin/spark-submit \
  --master "${SPARK_MASTER_URL:?set SPARK_MASTER_URL, e.g. spark://spark-master:7077}" \
  --name users_by_country \
  --conf "spark.driver.memory=${SPARK_DRIVER_MEMORY:-1g}" \
  --conf "spark.executor.memory=${SPARK_EXECUTOR_MEMORY:-1g}" \
  --conf "spark.executor.cores=${SPARK_EXECUTOR_CORES:-1}" \
  --conf "spark.cores.max=${SPARK_CORES_MAX:-1}" \
  --conf "spark.driver.host=${SPARK_DRIVER_HOST:-$(hostname -i | awk '{print $1}')}" \
  /opt/pipeline/job/users_by_country.py "$@"
