# Schema Registry: Karapace 5.0.3 (Aiven, Apache-2.0), Confluent's REST API on 127.0.0.1:8081,
# schemas kept in the Kafka topic _schemas of the local broker (as Confluent's registry, which the
# stacks run). Installed from the team's tool set beside the repo, ../shared/tools (no internet
# here: its wheel and 91 pinned PyPI wheels), into a venv under $PIPELINE_HOME/tools/karapace:
#   $PIPELINE_SHARED/tools/install.sh karapace DEST   (PIPELINE_SHARED defaults to $REPO/../shared)
# Run by the tool's start.sh (`python -m karapace`, registry only). Compatibility BACKWARD, as
# Confluent's default. Healthy = takes writes: GET /master_available says true (a plain
# GET /subjects answers 200 seconds before that, and writes then fail with 500 / 50003).
# SCHEMA_REGISTRY_URL is the base URL @kafkajs/confluent-schema-registry takes as `host`.
# Needs kafka (started before it). --nodes N: on $SVC_HOST (127.0.0.2), bootstrapped from every
# broker, _schemas at the brokers' RF. Sourced by scripts/services; see the convention at its top.

SR_PORT=8081
SR_COMPATIBILITY=BACKWARD

_sr_shared() { printf '%s' "${PIPELINE_SHARED:-$REPO/../shared}"; }
_sr_home() { printf '%s' "$PIPELINE_HOME/tools/karapace"; }

schema_registry_install() {
  local shared; shared="$(_sr_shared)"
  if [ ! -x "$shared/tools/install.sh" ] || [ ! -d "$shared/tools/karapace" ]; then
    die "schema-registry: Karapace's tool set is not at $shared/tools/karapace (the shared/ folder beside the repo); set PIPELINE_SHARED to the folder that holds tools/install.sh and tools/karapace/"
  fi
  # Idempotent: a venv that already imports karapace is kept (a second call takes well under 1 s).
  "$shared/tools/install.sh" karapace "$(_sr_home)" >/dev/null \
    || die "schema-registry: installing Karapace into $(_sr_home) failed (needs python3.11 with venv)"
}

schema_registry_start() {
  kafka_healthy || die "schema-registry needs kafka: scripts/services up kafka schema-registry"
  port_open "$SVC_HOST" "$SR_PORT" && die "$SVC_HOST:$SR_PORT is taken by another process (not ours)"
  local d; d="$(svc_dir schema-registry)"
  (
    export KARAPACE_VENV="$(_sr_home)/venv" \
      KARAPACE_COMPATIBILITY="$SR_COMPATIBILITY" \
      KARAPACE_TOPIC_NAME=_schemas \
      KARAPACE_REPLICATION_FACTOR="$(_kafka_rf)" \
      KARAPACE_PROTOBUF_RUNTIME_DIRECTORY="$d/protobuf-runtime"
    spawn schema-registry "$(_sr_home)/bin/start.sh" "$(_kafka_brokers)" "$SR_PORT" "$SVC_HOST"
  )
}

schema_registry_healthy() {
  "$(_sr_home)/bin/healthy.sh" "http://$SVC_HOST:$SR_PORT"
}

schema_registry_timeout() { echo 120; }

schema_registry_env() { echo "SCHEMA_REGISTRY_URL=http://$SVC_HOST:$SR_PORT"; }

schema_registry_where() {
  printf 'http://%s:%s (Karapace 5.0.3, Confluent REST API; schemas in Kafka topic _schemas, %s)' \
    "$SVC_HOST" "$SR_PORT" "$SR_COMPATIBILITY"
}
