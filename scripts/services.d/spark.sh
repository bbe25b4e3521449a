# Spark 3.5 standalone cluster: one master (127.0.0.1:7077, UI 8090) and one worker (UI 8091),
# both started by pyspark's own launcher (bin/spark-class) from a venv with the pinned pyspark
# (requirements/spark.txt). The job's connectors (Kafka source, Avro, Cassandra) come from Maven
# Central through images/spark/connectors/pom.xml; only the jars that Spark does not ship itself
# are kept, and services.env tells spark-submit where they are (SPARK_CONNECTOR_JARS).
# Sourced by scripts/services; see the convention at its top.

SPARK_VERSION=3.5.1
SPARK_MASTER_PORT=7077
SPARK_MASTER_UI_PORT=8090
SPARK_WORKER_UI_PORT=8091
# Modest on a 2-core machine; override to taste.
SPARK_WORKER_CORES="${SPARK_WORKER_CORES:-1}"
SPARK_WORKER_MEMORY="${SPARK_WORKER_MEMORY:-2g}"

_spark_venv() { printf '%s' "$DOWNLOADS/spark/venv-$SPARK_VERSION"; }
_spark_home() {
  local d; for d in "$(_spark_venv)"/lib/python3*/site-packages/pyspark; do printf '%s' "$d"; return; done
}
_spark_jars() { printf '%s' "$DOWNLOADS/spark/jars-$SPARK_VERSION"; }
_spark_python() { command -v python3.11 || command -v python3; }

_spark_env() {
  export SPARK_HOME; SPARK_HOME="$(_spark_home)"
  export SPARK_LOCAL_IP=127.0.0.1
  export SPARK_LOG_DIR; SPARK_LOG_DIR="$(svc_dir spark)"
  export SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-256m}"
  export JAVA_HOME="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(java_bin)")")")}"
  export PYSPARK_PYTHON; PYSPARK_PYTHON="$(_spark_venv)/bin/python"
}

spark_install() {
  local venv; venv="$(_spark_venv)"
  if [ ! -x "$venv/bin/spark-class" ]; then
    log "spark: pip install pyspark $SPARK_VERSION into $venv"
    rm -rf "$venv"
    "$(_spark_python)" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$REPO/requirements/spark.txt"
  fi
  local all="$DOWNLOADS/spark/connectors-$SPARK_VERSION" dest; dest="$(_spark_jars)"
  if [ ! -f "$dest/.complete" ]; then
    mvn_copy_deps "$REPO/images/spark/connectors" "$all" -q
    # Keep only what Spark does not ship (by artifact name, whatever the version).
    rm -rf "$dest" && mkdir -p "$dest"
    local shipped jar base
    shipped="$(ls "$(_spark_home)/jars" | sed -E 's/-[0-9][^-]*(-[A-Za-z0-9.]+)*\.jar$//' | sort -u)"
    for jar in "$all"/*.jar; do
      base="$(basename "$jar" | sed -E 's/-[0-9][^-]*(-[A-Za-z0-9.]+)*\.jar$//')"
      grep -qxF "$base" <<<"$shipped" || cp "$jar" "$dest/"
    done
    touch "$dest/.complete"
  fi
}

spark_start() {
  _spark_env
  local d; d="$(svc_dir spark)"; mkdir -p "$d/work"
  spawn spark "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$SPARK_MASTER_PORT" --webui-port "$SPARK_MASTER_UI_PORT"
  local i; for i in $(seq 1 60); do port_open "$SPARK_MASTER_PORT" && break; sleep 1; done
  SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=3600" \
  spawn spark-worker "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
    "spark://127.0.0.1:$SPARK_MASTER_PORT" --host 127.0.0.1 --cores "$SPARK_WORKER_CORES" \
    --memory "$SPARK_WORKER_MEMORY" --webui-port "$SPARK_WORKER_UI_PORT" --work-dir "$d/work"
}

spark_running() { pid_alive spark && pid_alive spark-worker; }

# Healthy = the master answers and counts one ALIVE worker.
spark_healthy() {
  curl -fsS --max-time 3 "http://127.0.0.1:$SPARK_MASTER_UI_PORT/json/" 2>/dev/null \
    | grep -q '"aliveworkers" *: *[1-9]'
}

spark_timeout() { echo 180; }

spark_stop() { stop_pid spark-worker; stop_pid spark; }

spark_env() {
  local jars; jars="$(ls "$(_spark_jars)"/*.jar 2>/dev/null | paste -sd, -)"
  cat <<ENV
SPARK_MASTER_URL=spark://127.0.0.1:$SPARK_MASTER_PORT
SPARK_MASTER_UI=http://127.0.0.1:$SPARK_MASTER_UI_PORT
SPARK_HOME=$(_spark_home)
SPARK_PYTHON=$(_spark_venv)/bin/python
SPARK_CONNECTOR_JARS=$jars
ENV
}

spark_where() {
  printf 'spark://127.0.0.1:%s (UI http://127.0.0.1:%s, worker UI :%s, %s core(s), %s)' \
    "$SPARK_MASTER_PORT" "$SPARK_MASTER_UI_PORT" "$SPARK_WORKER_UI_PORT" "$SPARK_WORKER_CORES" "$SPARK_WORKER_MEMORY"
}
