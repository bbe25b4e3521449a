# Apache Airflow 2.10 from PyPI (pinned by requirements/airflow.lock, used as pip constraints),
# against the PostgreSQL database `airflow` that postgres.sh creates. `up` runs `airflow db
# migrate`, creates the admin user, then starts the scheduler (LocalExecutor) and the webserver
# on 127.0.0.1:8088. The DAGs folder is images/airflow/dags of this checkout; DAGs start paused,
# and user_automation has no schedule here (manual runs only: no hourly ingest on a dev machine).
# The DAG's task runs the TypeScript ingest from this checkout (tsx) with the worker variables of
# $RUN/services.env (WORKER_ENV_FILE), read at task run time.
# services.env gets AIRFLOW_HOME, AIRFLOW_BIN and AIRFLOW_ENV_FILE (KEY=VALUE lines: the Airflow
# configuration), so a test can run `airflow dags test ...` with the very same configuration.
# Sourced by scripts/services; see the convention at its top.

AIRFLOW_VERSION=2.10.5
AIRFLOW_WEB_PORT=8088

_airflow_venv() { printf '%s' "$DOWNLOADS/airflow/venv-$AIRFLOW_VERSION"; }
_airflow_bin() { printf '%s/bin/airflow' "$(_airflow_venv)"; }
_airflow_envfile() { printf '%s/airflow.env' "$(svc_dir airflow)"; }
_airflow_python() { command -v python3.11 || command -v python3; }

airflow_install() {
  local venv; venv="$(_airflow_venv)"
  if [ ! -x "$venv/bin/airflow" ] || [ "$REPO/requirements/airflow.lock" -nt "$venv/.installed" ]; then
    log "airflow: pip install apache-airflow[postgres]==$AIRFLOW_VERSION into $venv"
    [ -x "$venv/bin/pip" ] || "$(_airflow_python)" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
      "apache-airflow[postgres]==$AIRFLOW_VERSION" -c "$REPO/requirements/airflow.lock"
    touch "$venv/.installed"
  fi
}

# The Airflow configuration as environment variables (AIRFLOW__SECTION__KEY), written to a file.
_airflow_write_env() {
  local home db fernet
  home="$(svc_dir airflow)"
  db="$(postgres_env | sed -n 's/^AIRFLOW_DB_URL=//p')"
  [ -n "$db" ] || die "airflow: no AIRFLOW_DB_URL from postgres (is scripts/services.d/postgres.sh there?)"
  if [ ! -s "$RUN/secrets/airflow-fernet" ]; then
    mkdir -p "$RUN/secrets"
    (umask 077; "$(_airflow_venv)/bin/python" -c \
      'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' >"$RUN/secrets/airflow-fernet")
  fi
  fernet="$(cat "$RUN/secrets/airflow-fernet")"
  (umask 077; cat >"$(_airflow_envfile)" <<ENV
AIRFLOW_HOME=$home
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$db
AIRFLOW__CORE__EXECUTOR=LocalExecutor
AIRFLOW__CORE__PARALLELISM=4
AIRFLOW__CORE__DAGS_FOLDER=$REPO/images/airflow/dags
AIRFLOW__CORE__LOAD_EXAMPLES=False
AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
AIRFLOW__CORE__FERNET_KEY=$fernet
AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL=30
AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL=30
AIRFLOW__WEBSERVER__WEB_SERVER_HOST=127.0.0.1
AIRFLOW__WEBSERVER__WEB_SERVER_PORT=$AIRFLOW_WEB_PORT
AIRFLOW__WEBSERVER__WORKERS=1
AIRFLOW__WEBSERVER__SECRET_KEY=$(secret airflow-webserver)
AIRFLOW__WEBSERVER__EXPOSE_CONFIG=False
AIRFLOW__LOGGING__BASE_LOG_FOLDER=$home/logs
USER_AUTOMATION_SCHEDULE=none
WORKER_RUNNER=$REPO/node_modules/.bin/tsx
WORKER_ENTRY=$REPO/runtime/main.ts
WORKER_CWD=$REPO
WORKER_ENV_FILE=$RUN/services.env
ENV
  )
}

_airflow_load_env() { set -a; . "$(_airflow_envfile)"; set +a; }

airflow_start() {
  postgres_healthy 2>/dev/null || die "airflow: PostgreSQL is not up (scripts/services up postgres)"
  # Not running as a whole: what is left of it (one part, a webserver's gunicorn) goes first.
  stop_pid airflow-web; stop_pid airflow
  port_open "$AIRFLOW_WEB_PORT" && die "port $AIRFLOW_WEB_PORT is taken by another process (not ours)"
  _airflow_write_env
  _airflow_load_env
  local af t0; af="$(_airflow_bin)"; t0=$(date +%s)
  "$af" db migrate >>"$(svc_log airflow)" 2>&1 || { tail -20 "$(svc_log airflow)" >&2; die "airflow db migrate failed"; }
  log "airflow: db migrate in $(( $(date +%s) - t0 ))s"
  "$af" users create --role Admin --username admin --password "$(secret airflow-admin)" \
    --firstname Pipeline --lastname Admin --email admin@example.invalid >>"$(svc_log airflow)" 2>&1 || true
  spawn airflow "$af" scheduler
  spawn airflow-web "$af" webserver
}

airflow_running() { pid_alive airflow && pid_alive airflow-web; }

# Healthy = the webserver answers and reports the metadatabase and the scheduler healthy.
airflow_healthy() {
  local h
  h="$(curl -fsS --max-time 5 "http://127.0.0.1:$AIRFLOW_WEB_PORT/health" 2>/dev/null)" || return 1
  python3 -c 'import json,sys; h=json.loads(sys.argv[1]); sys.exit(0 if h["metadatabase"]["status"]=="healthy" and h["scheduler"]["status"]=="healthy" else 1)' "$h"
}

airflow_timeout() { echo 240; }

# The webserver's gunicorn master and workers, and the scheduler's executor and task runners, live
# in the sessions spawn started: SIGTERM to all of both at once (the webserver alone waits 30 s for
# gunicorn and may leave it), then stop_pid of each ends what is left.
airflow_stop() {
  local n left=""
  for n in airflow-web airflow; do left+=" $(svc_procs "$n" | paste -sd' ' -)"; done
  # shellcheck disable=SC2086
  [ -z "${left// /}" ] || kill -TERM $left 2>/dev/null || true
  for n in airflow-web airflow; do stop_pid "$n"; done
}

airflow_env() {
  cat <<ENV
AIRFLOW_HOME=$(svc_dir airflow)
AIRFLOW_BIN=$(_airflow_bin)
AIRFLOW_ENV_FILE=$(_airflow_envfile)
AIRFLOW_WEB_URL=http://127.0.0.1:$AIRFLOW_WEB_PORT
ENV
}

airflow_where() {
  printf 'http://127.0.0.1:%s (scheduler: LocalExecutor; user admin, password in %s)' \
    "$AIRFLOW_WEB_PORT" "$RUN/secrets/airflow-admin"
}
