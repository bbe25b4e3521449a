"""DAG user_automation: run the TypeScript ingest worker once per schedule.

The ingest itself is TypeScript (runtime/ingest); this DAG only schedules it, retries it, bounds
it in time and puts its counts in the task log (and in XCom: the summary JSON is the last line).

Environment (of the scheduler / worker running the task):
  USER_AUTOMATION_SCHEDULE             cron or preset, default "@hourly"; "none": manual runs only
  USER_AUTOMATION_RETRIES              default 2
  USER_AUTOMATION_RETRY_DELAY_SECONDS  default 60
  USER_AUTOMATION_TIMEOUT_SECONDS      execution timeout of one run, default 600
  WORKER_BUNDLE                 built worker bundle (tsc output), default /opt/pipeline/dist
  WORKER_RUNNER, WORKER_ENTRY   override `node` and `$WORKER_BUNDLE/runtime/main.js` (in a
                                checkout: node_modules/.bin/tsx and runtime/main.ts)
  WORKER_CWD                    working directory of the worker (default: the task's temp dir)
  WORKER_ENV_FILE               optional KEY=VALUE file of defaults for the worker (services.env)
  and the worker's own variables (PG_*, API_BASE_URL, INGEST_*), passed through untouched, but
  INGEST_RUN_ID, which is the DAG run's id: a retry stores only the pages the run still lacks.
A manual run may override a few worker variables: `airflow dags trigger user_automation
-c '{"env": {"INGEST_BATCH_SIZE": "50", "INGEST_BATCHES": "2"}}'`.
"""

from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

DAG_ID = "user_automation"
# Worker variables a manual run (dag_run.conf["env"]) may set; anything else is ignored.
OVERRIDABLE = ["API_BASE_URL", "INGEST_BATCH_SIZE", "INGEST_BATCHES", "INGEST_SEED", "LOG_LEVEL"]


def _schedule() -> str | None:
    s = os.environ.get("USER_AUTOMATION_SCHEDULE", "").strip() or "@hourly"
    return None if s.lower() in ("none", "manual") else s


def _int_env(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


INGEST_COMMAND = r"""
set -euo pipefail
if [ -n "${WORKER_ENV_FILE:-}" ] && [ -f "$WORKER_ENV_FILE" ]; then
  # defaults only: a variable already in the task's environment wins
  while IFS= read -r line; do
    k="${line%%=*}"
    if [[ "$line" == *=* && "$k" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && [ -z "${!k+x}" ]; then export "$line"; fi
  done < "$WORKER_ENV_FILE"
fi
# the run's pages: a retried try stores only those its earlier tries did not
export INGEST_RUN_ID={{ run_id | sh }}
{% for k, v in ((dag_run.conf or {}).get('env') or {}).items() if k in params.overridable %}
export {{ k }}={{ v | string | sh }}
{% endfor %}
export METRICS_PORT="${METRICS_PORT:-0}"
cmd="${WORKER_RUNNER:-node} ${WORKER_ENTRY:-${WORKER_BUNDLE:-/opt/pipeline/dist}/runtime/main.js}"
cd "${WORKER_CWD:-.}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "ingest: $cmd ingest --once (run {{ run_id }}, try {{ ti.try_number }})"
set +e
$cmd ingest --once 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || { echo "ingest: failed with exit code $rc"; exit "$rc"; }
summary="$(grep '^{"seed"' "$out" | tail -n 1 || true)"
[ -n "$summary" ] || { echo "ingest: no summary line in the worker output"; exit 1; }
echo "ingest summary: $summary"
echo "$summary"
"""

with DAG(
    dag_id=DAG_ID,
    description="Fetch users from the API into PostgreSQL (staging + outbox) with the TypeScript ingest worker",
    schedule=_schedule(),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["pipeline", "ingest"],
    params={"overridable": OVERRIDABLE},
    user_defined_filters={"sh": shlex.quote},
    default_args={
        "owner": "pipeline",
        "retries": _int_env("USER_AUTOMATION_RETRIES", 2),
        "retry_delay": timedelta(seconds=_int_env("USER_AUTOMATION_RETRY_DELAY_SECONDS", 60)),
        "execution_timeout": timedelta(seconds=_int_env("USER_AUTOMATION_TIMEOUT_SECONDS", 600)),
    },
) as dag:
    ingest = BashOperator(
        task_id="ingest_users",
        bash_command=INGEST_COMMAND,
        # The worker reads its configuration from the environment the task inherits.
        append_env=True,
        do_xcom_push=True,
    )
