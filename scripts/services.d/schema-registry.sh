# Schema Registry speaking Confluent's REST API on 127.0.0.1:8081, Avro schemas stored in the
# local PostgreSQL (database schema_registry). It is scripts/schema-registry/server.ts: neither
# Karapace (not served by PyPI here) nor Apicurio Registry (its app's dependency
# apicurio-registry-schema-util-provider is not published on Maven Central) installs on these
# machines; the server's header says what it implements. The stacks run Confluent's image.
# SCHEMA_REGISTRY_URL is the base URL @kafkajs/confluent-schema-registry takes as `host`.
# Needs postgres (started before it). Sourced by scripts/services; see the convention at its top.

SR_PORT=8081

schema_registry_install() {
  [ -d "$REPO/node_modules/avsc" ] && [ -d "$REPO/node_modules/pg" ] \
    || die "schema-registry: node_modules lacks avsc/pg: run npm ci"
}

schema_registry_start() {
  postgres_healthy || die "schema-registry needs postgres: scripts/services up postgres schema-registry"
  _sr_database
  port_open "$SR_PORT" && die "port $SR_PORT is taken by another process (not ours)"
  # Secrets go through the environment, not the command line (the log shows the command).
  (
    export SR_HOST=127.0.0.1 SR_PORT="$SR_PORT" PGHOST=127.0.0.1 PGPORT="$PG_PORT" \
      PGDATABASE=schema_registry PGUSER=pipeline PGPASSWORD="$(secret pg-pipeline)"
    spawn schema-registry node --require "$(cd "$REPO" && node -p 'require.resolve("tsx/cjs")')" \
      "$REPO/scripts/schema-registry/server.ts"
  )
}

_sr_database() {
  _psql -d postgres >/dev/null <<SQL
SELECT 'CREATE DATABASE schema_registry OWNER pipeline' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname='schema_registry')\gexec
SQL
}

schema_registry_healthy() {
  local out
  out="$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$SR_PORT"'; printf "GET /subjects HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3; cat <&3' 2>/dev/null)" || return 1
  [[ "$out" == "HTTP/1.1 200"* ]]
}

schema_registry_timeout() { echo 60; }

schema_registry_env() { echo "SCHEMA_REGISTRY_URL=http://127.0.0.1:$SR_PORT"; }

schema_registry_where() { printf 'http://127.0.0.1:%s (Confluent REST API, Avro; stored in PostgreSQL db schema_registry)' "$SR_PORT"; }
