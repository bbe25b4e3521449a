# Cassandra 5.0 (the stacks' major version; it runs on Java 17) from the Apache Cassandra jars on
# Maven Central: scripts/maven/cassandra/pom.xml lists cassandra-all, mvn copies it and its
# dependencies into $DOWNLOADS/cassandra/<version>/lib once. Runs CassandraDaemon in the
# foreground with cassandra.yaml rendered from cassandraSettings() (scripts/render-config.ts),
# the JPMS flags of Cassandra's own conf/jvm17-server.options, a 1 GiB heap, and start-up
# shortcuts for one node (no gossip settle wait, no superuser setup delay).
# Listens on 127.0.0.1:9042 (CQL), 7000 (storage), 7199 (JMX, loopback only).
# PasswordAuthenticator, CassandraAuthorizer: after start, scripts/cassandra-setup.ts makes the roles
# the stacks make (setup role pipeline_admin; pipeline, no superuser, on spark_streams only; the
# read-only pipeline_reader), creates spark_streams, and disables the default `cassandra` role
# after giving it a generated password; all passwords in $RUN/secrets.
# --nodes N: a ring, node i on $(member_host i) (CQL 9042, storage 7000 on its own address; JMX on
# 127.0.0.1:7201+i, beside the single node's 7199), seeds the first two, a 512 MiB heap each,
# started one at a time (Cassandra refuses concurrent bootstraps); the pipeline keyspace and
# system_auth at RF min(3, N), NetworkTopologyStrategy; the workers write at LOCAL_QUORUM.
# Sourced by scripts/services; see the convention at its top.

CASSANDRA_PORT=9042
CASSANDRA_VERSION=5.0.6
CASSANDRA_DC=datacenter1

_cassandra_lib() { printf '%s' "$DOWNLOADS/cassandra/$CASSANDRA_VERSION/lib"; }

cassandra_install() {
  mvn_copy_deps "$REPO/scripts/maven/cassandra" "$(_cassandra_lib)" -Dcassandra.version="$CASSANDRA_VERSION" \
    || die "cassandra: could not fetch cassandra-all $CASSANDRA_VERSION"
}

_cassandra_rf() { if [ "$NODES" -ge 3 ]; then echo 3; else echo "$NODES"; fi; }

cassandra_running() { if [ "$NODES" -gt 1 ]; then members_running cassandra; else pid_alive cassandra; fi; }
cassandra_stop() { if [ "$NODES" -gt 1 ]; then members_stop cassandra; else stop_pid cassandra; fi; }

# One node at a time: each is serving before the next starts (a node that joins while another
# is joining is refused).
_cassandra_start_members() {
  local i t0
  for i in $(members); do
    pid_alive "cassandra-$i" && continue
    _cassandra_spawn "cassandra-$i" "$(member_host "$i")" "$((7201 + i))" 512m "$i"
    t0=$(date +%s)
    until _cassandra_node_healthy "cassandra-$i" "$(member_host "$i")"; do
      pid_alive "cassandra-$i" || { tail -25 "$(svc_log "cassandra-$i")" >&2; die "cassandra-$i exited during start; see $(svc_log "cassandra-$i")"; }
      [ $(( $(date +%s) - t0 )) -lt 600 ] || die "cassandra-$i not serving after 600s; see $(svc_log "cassandra-$i")"
      sleep 2
    done
    log "cassandra-$i: serving after $(( $(date +%s) - t0 ))s"
  done
}

cassandra_start() {
  if [ "$NODES" -gt 1 ]; then _cassandra_start_members; return; fi
  port_open "$CASSANDRA_PORT" && die "port $CASSANDRA_PORT is taken by another process (not ours)"
  _cassandra_spawn cassandra 127.0.0.1 7199 1g ""
}

# _cassandra_spawn <name> <address> <jmx port> <heap> <node index or empty>
_cassandra_spawn() {
  local name="$1" addr="$2" jmx="$3" heap="$4" node="$5"
  local d lib; d="$(svc_dir "$name")"; lib="$(_cassandra_lib)"
  mkdir -p "$d/conf" "$d/data" "$d/commitlog" "$d/saved_caches" "$d/hints" "$d/logs" "$d/triggers"
  MEMBER="$node" render_config cassandra "$d/conf/cassandra.yaml"
  # CASSANDRA_COMMITLOG_SYNC=periodic: Cassandra's own default (acks before the commitlog sync, 10 s
  # period) instead of cassandraSettings' group mode, only to measure or show what group mode buys
  # (bench/commitlog-ab.ts, tests/faults/cassandra-kill.test.ts); a later start without it renders ours.
  if [ "${CASSANDRA_COMMITLOG_SYNC:-}" = periodic ]; then
    sed -i -E -e 's/^commitlog_sync: .*/commitlog_sync: "periodic"/' \
      -e 's/^commitlog_sync_period: .*/commitlog_sync_period: "10000ms"/' -e '/^commitlog_sync_group_window:/d' \
      "$d/conf/cassandra.yaml"
  elif [ -n "${CASSANDRA_COMMITLOG_SYNC:-}" ]; then
    die "CASSANDRA_COMMITLOG_SYNC takes periodic or nothing, not $CASSANDRA_COMMITLOG_SYNC"
  fi
  printf 'dc=%s\nrack=rack1\n' "$CASSANDRA_DC" >"$d/conf/cassandra-rackdc.properties"
  cat >"$d/conf/logback.xml" <<'XML'
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="com.thinkaurelius.thrift" level="ERROR"/>
</configuration>
XML
  [ -z "$node" ] || ! port_open "$addr" "$CASSANDRA_PORT" || die "$addr:$CASSANDRA_PORT is taken by another process (not ours)"
  local jpms=(
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
  )
  spawn "$name" "$(java_bin)" -Xms"$heap" -Xmx"$heap" -Xss256k \
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m \
    -XX:MaxGCPauseMillis=300 -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$d/logs" -XX:+ExitOnOutOfMemoryError \
    -XX:CICompilerCount=2 -XX:+UseStringDeduplication \
    -Djdk.attach.allowAttachSelf=true "${jpms[@]}" \
    -Dio.netty.tryReflectionSetAccessible=true -Dio.netty.allocator.useCacheForAllThreads=true \
    -Dio.netty.allocator.maxOrder=11 -Djava.net.preferIPv4Stack=true \
    -javaagent:"$(ls "$lib"/jamm-*.jar | head -1)" \
    -Dcassandra.jmx.local.port="$jmx" -Dcom.sun.management.jmxremote.authenticate=false \
    -Dcassandra-foreground=yes -Dcassandra.storagedir="$d" -Dcassandra.logdir="$d/logs" \
    -Dcassandra.config="file://$d/conf/cassandra.yaml" -Dcassandra.triggers_dir="$d/triggers" \
    -Dlogback.configurationFile="file://$d/conf/logback.xml" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.superuser_setup_delay_ms=0 \
    -Dcassandra.ring_delay_ms=1000 -Dcassandra.max_local_pause_in_ms=5000 \
    -cp "$d/conf:$lib/*" org.apache.cassandra.service.CassandraDaemon
}

# Healthy: the CQL port accepts and the daemon logged "Startup complete" since its last start
# (every node of a ring).
_cassandra_node_healthy() {
  port_open "$2" "$CASSANDRA_PORT" || return 1
  awk '/^===== .* start: /{ok=0} /Startup complete|Starting listening for CQL clients/{ok=1} END{exit !ok}' \
    "$(svc_log "$1")"
}
cassandra_healthy() {
  if [ "$NODES" -eq 1 ]; then _cassandra_node_healthy cassandra 127.0.0.1; return; fi
  local i
  for i in $(members); do _cassandra_node_healthy "cassandra-$i" "$(member_host "$i")" || return 1; done
}

_cassandra_contact_points() {
  local i out=()
  for i in $(members); do out+=("$(member_host "$i"):$CASSANDRA_PORT"); done
  local IFS=,; printf '%s' "${out[*]}"
}

cassandra_timeout() { if [ "$NODES" -gt 1 ]; then echo 600; else echo 240; fi; }

cassandra_ready() {
  (cd "$REPO" && CASSANDRA_CONTACT_POINTS="$(_cassandra_contact_points)" CASSANDRA_LOCAL_DC="$CASSANDRA_DC" CASSANDRA_AUTH_RF="$(_cassandra_rf)" \
    CASSANDRA_PASSWORD="$(secret cassandra-pipeline)" CASSANDRA_ADMIN_PASSWORD="$(secret cassandra-setup)" \
    CASSANDRA_READER_PASSWORD="$(secret cassandra-reader)" CASSANDRA_DEFAULT_PASSWORD="$(secret cassandra-admin)" \
    node_modules/.bin/tsx scripts/cassandra-setup.ts) \
    || die "cassandra: making the roles failed; see $(svc_log cassandra)"
}

cassandra_env() {
  cat <<ENV
CASSANDRA_CONTACT_POINTS=$(_cassandra_contact_points)
CASSANDRA_LOCAL_DC=$CASSANDRA_DC
CASSANDRA_USER=pipeline
CASSANDRA_PASSWORD=$(secret cassandra-pipeline)
CASSANDRA_READER_USER=pipeline_reader
CASSANDRA_READER_PASSWORD=$(secret cassandra-reader)
CASSANDRA_REPLICATION_FACTOR=$(_cassandra_rf)
CASSANDRA_CONSISTENCY=LOCAL_QUORUM
ENV
}

cassandra_where() { printf '%s (CQL, dc %s, user pipeline, RF %s)' "$(_cassandra_contact_points)" "$CASSANDRA_DC" "$(_cassandra_rf)"; }
