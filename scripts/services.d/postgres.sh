# PostgreSQL 15 from Debian's packages, as a private cluster (initdb) owned by the postgres OS
# user, on 127.0.0.1:5432. Databases: pipeline (owned by role pipeline) and airflow (role airflow),
# and the read-only role pipeline_reader: the roles the stacks' postgres-roles job makes, by the
# same SQL (infra/catalog/db-roles.ts), run as the cluster's superuser postgres (peer, no password)
# on every `up` (idempotent, also on a data directory from before); passwords generated once into
# $RUN/secrets, given to psql in env. (/usr/local/bin/pg_ctl on these machines is only a
# symlink to /usr/lib/postgresql/15/bin/pg_ctl; we call the versioned bin dir directly.)
# --nodes N: the replicated set's own cluster on $SVC_HOST (127.0.0.2):5432, kept apart from the
# single-node one. Sourced by scripts/services; see the convention at its top.

PG_PORT=5432
PG_BIN=/usr/lib/postgresql/15/bin

# The cluster lives in $RUN/postgres/data when the postgres user can reach it; under /root
# (mode 700) it cannot, so the cluster then lives in /var/lib/postgresql/realtime-pipeline-<hash>
# and $RUN/postgres/data is a symlink to it.
_pg_root() {
  local d; d="$(svc_dir postgres)"
  if setpriv --reuid=postgres --regid=postgres --init-groups test -x "$d" 2>/dev/null; then
    printf '%s' "$d"
  else
    # Keyed by PIPELINE_HOME (the single-node set: as it always was) or by its own RUN (--nodes).
    local key="$PIPELINE_HOME"; [ "$RUN" = "$PIPELINE_HOME/run" ] || key="$RUN"
    printf '/var/lib/postgresql/realtime-pipeline-%s' "$(printf '%s' "$key" | sha1sum | cut -c1-10)"
  fi
}
_pg_data() { printf '%s/data' "$(_pg_root)"; }
_pg_sock() { printf '%s/socket' "$(_pg_root)"; }
_as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
_psql() { _as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(_pg_sock)" -p "$PG_PORT" -U postgres "$@"; }

postgres_install() {
  [ -x "$PG_BIN/postgres" ] || die "PostgreSQL 15 missing in $PG_BIN after apt-get install postgresql"
  local root data; root="$(_pg_root)"; data="$root/data"
  if [ ! -s "$data/PG_VERSION" ]; then
    log "postgres: initdb $data"
    mkdir -p "$root" && chown postgres:postgres "$root" && chmod 700 "$root"
    _as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$(svc_dir postgres)/initdb.log" 2>&1 \
      || { cat "$(svc_dir postgres)/initdb.log" >&2; die "initdb failed"; }
  fi
  if [ "$root" != "$RUN/postgres" ] && [ ! -e "$RUN/postgres/data" ]; then
    ln -s "$data" "$RUN/postgres/data"
  fi
}

postgres_start() {
  if [ "$NODES" -gt 1 ]; then
    port_open "$SVC_HOST" "$PG_PORT" && die "$SVC_HOST:$PG_PORT is taken by another process (not ours)"
  fi
  # A Debian default cluster started by the package would hold the port: stop it.
  if [ "$NODES" -eq 1 ] && port_open "$PG_PORT" && command -v pg_lsclusters >/dev/null \
     && pg_lsclusters -h 2>/dev/null | awk '$4=="online" && $3==5432' | grep -q .; then
    log "postgres: stopping the Debian default cluster on $PG_PORT"
    pg_lsclusters -h | awk '$4=="online" && $3==5432 {print $1, $2}' | while read -r v c; do
      pg_ctlcluster "$v" "$c" stop || true
    done
  fi
  [ "$NODES" -gt 1 ] || ! port_open "$PG_PORT" || die "port $PG_PORT is taken by another process (not ours)"
  local sock; sock="$(_pg_sock)"
  mkdir -p "$sock" && chown postgres:postgres "$sock"
  # checkpoints and every autovacuum of 1 s or more in postgres.log: what PostgreSQL did when a
  # latency tail came (the bench logs every autovacuum of its own tables: a per-table setting)
  spawn postgres setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PG_BIN/postgres" -D "$(_pg_data)" -c listen_addresses="$SVC_HOST" -c port="$PG_PORT" \
    -c unix_socket_directories="$sock" -c max_connections=200 -c shared_buffers=128MB \
    -c logging_collector=off -c log_min_messages=warning -c fsync=on \
    -c log_checkpoints=on -c log_autovacuum_min_duration=1s
}

postgres_healthy() { "$PG_BIN/pg_isready" -q -h "$SVC_HOST" -p "$PG_PORT"; }

postgres_stop() {
  # SIGINT: fast shutdown (SIGTERM would wait for every client to disconnect).
  # Only a live postmaster of ours: a recycled pid is another process. stop_pid ends what is left.
  if pid_alive postgres; then
    kill -INT "$(cat "$(svc_pidfile postgres)")" 2>/dev/null || true
    local i; for i in $(seq 1 120); do pid_alive postgres || break; sleep 0.5; done
  fi
  stop_pid postgres
}

postgres_ready() {
  local sql; sql="$(svc_dir postgres)/roles.sql"
  render_config postgres-roles "$sql"
  # The image makes the pipeline database (POSTGRES_DB) in the stacks; here, this does.
  _psql -d postgres >/dev/null <<'SQL'
SELECT 'CREATE DATABASE pipeline' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname='pipeline')\gexec
SQL
  PG_PIPELINE_PASSWORD="$(secret pg-pipeline)" PG_AIRFLOW_PASSWORD="$(secret pg-airflow)" \
    PG_READER_PASSWORD="$(secret pg-reader)" PG_MONITOR_PASSWORD="$(secret pg-monitor)" \
    _psql -d postgres -f - >/dev/null <"$sql"
}

postgres_env() {
  cat <<ENV
PG_HOST=$SVC_HOST
PG_PORT=$PG_PORT
PG_DATABASE=pipeline
PG_USER=pipeline
PG_PASSWORD=$(secret pg-pipeline)
PG_READER_USER=pipeline_reader
PG_READER_PASSWORD=$(secret pg-reader)
PG_MONITOR_USER=pipeline_monitor
PG_MONITOR_PASSWORD=$(secret pg-monitor)
AIRFLOW_DB_URL=postgresql+psycopg2://airflow:$(secret pg-airflow)@$SVC_HOST:$PG_PORT/airflow
ENV
}

postgres_where() { printf 'postgresql://%s:%s (databases pipeline, airflow)' "$SVC_HOST" "$PG_PORT"; }
