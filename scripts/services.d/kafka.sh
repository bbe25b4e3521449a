# Kafka broker, the 3.9 line in ZooKeeper mode (as the Confluent Platform 7.9 images), from the
# Apache Kafka jars on Maven Central: scripts/maven/kafka/pom.xml lists them, mvn copies them into
# $DOWNLOADS/kafka/<version>/lib once. Run as `java -cp 'lib/*' kafka.Kafka server.properties`,
# server.properties rendered from kafkaBrokerSettings(): INTERNAL 127.0.0.1:29092 and EXTERNAL
# 127.0.0.1:9092, replication 1, auto.create.topics.enable=false.
# Topics: after start, scripts/kafka-topics.ts creates users_created (6 partitions) and
# users_created.dlq (1 partition) if absent, as a convenience; the workers ensure them too.
# --nodes N: N brokers, broker i (id i) with both listeners on $(member_host i) (EXTERNAL 9092,
# INTERNAL 29092), ZooKeeper the ensemble, topics and internal topics at RF min(3, N) and
# min.insync.replicas RF-1 (the stacks' rule, config.ts replicationOf), a 384 MiB heap each, a
# 6 s ZooKeeper session (a killed broker's partitions get new leaders 6 s after the kill, not 18).
# Sourced by scripts/services; see the convention at its top.

KAFKA_PORT=9092
KAFKA_VERSIONS=(3.9.1 3.9.0)   # first that Maven Central serves

_kafka_lib() {
  local v
  for v in "${KAFKA_VERSIONS[@]}"; do
    if [ -f "$DOWNLOADS/kafka/$v/lib/.complete" ]; then printf '%s' "$DOWNLOADS/kafka/$v/lib"; return; fi
  done
  printf '%s' "$DOWNLOADS/kafka/${KAFKA_VERSIONS[0]}/lib"
}

kafka_install() {
  local v
  for v in "${KAFKA_VERSIONS[@]}"; do
    [ -f "$DOWNLOADS/kafka/$v/lib/.complete" ] && return 0
  done
  for v in "${KAFKA_VERSIONS[@]}"; do
    if mvn_copy_deps "$REPO/scripts/maven/kafka" "$DOWNLOADS/kafka/$v/lib" -Dkafka.version="$v"; then
      return 0
    fi
    log "kafka: $v not fetched, trying the next version"
  done
  die "kafka: no version of ${KAFKA_VERSIONS[*]} could be fetched"
}

_kafka_rf() { if [ "$NODES" -ge 3 ]; then echo 3; else echo "$NODES"; fi; }

_kafka_start_member() {
  local i="$1" d="$2"
  MEMBER="$i" render_config kafka "$d/server.properties"
  _kafka_log4j "$d"
  spawn "kafka-$i" "$(java_bin)" -Xms384m -Xmx384m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d" \
    -cp "$(_kafka_lib)/*" kafka.Kafka "$d/server.properties"
}

kafka_running() { if [ "$NODES" -gt 1 ]; then members_running kafka; else pid_alive kafka; fi; }
kafka_stop() { if [ "$NODES" -gt 1 ]; then members_stop kafka; else stop_pid kafka; fi; }

_kafka_log4j() {
  cat >"$1/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.org.apache.zookeeper=WARN
PROPS
}

kafka_start() {
  if [ "$NODES" -gt 1 ]; then members_start kafka "$KAFKA_PORT" _kafka_start_member; return; fi
  local d; d="$(svc_dir kafka)"
  mkdir -p "$d/data"
  render_config kafka "$d/server.properties"
  _kafka_log4j "$d"
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process (not ours)"
  spawn kafka "$(java_bin)" -Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d" \
    -cp "$(_kafka_lib)/*" kafka.Kafka "$d/server.properties"
}

# Healthy: both listeners accept and the broker logged "started" since its last start (every
# broker of a replicated set).
_kafka_started() { awk '/^===== .* start: /{ok=0} /\[KafkaServer id=[0-9]+\] started/{ok=1} END{exit !ok}' "$1"; }
kafka_healthy() {
  if [ "$NODES" -gt 1 ]; then
    local i h
    for i in $(members); do
      h="$(member_host "$i")"
      port_open "$h" "$KAFKA_PORT" && port_open "$h" 29092 && _kafka_started "$(svc_log "kafka-$i")" || return 1
    done
    return 0
  fi
  port_open "$KAFKA_PORT" && port_open 29092 || return 1
  _kafka_started "$(svc_log kafka)"
}

_kafka_brokers() {
  local i out=()
  for i in $(members); do out+=("$(member_host "$i"):$KAFKA_PORT"); done
  local IFS=,; printf '%s' "${out[*]}"
}

kafka_timeout() { echo 180; }

# After a crash, the broker's registration in ZooKeeper lives until its session times out
# (18 s, Kafka's default; 6 s for the replicated set, render-config.ts LOCAL_SET_BROKER_OVERRIDES):
# a start before then exits with NodeExistsException. Start again, up to 4 times.
kafka_start_attempts() { echo 4; }

kafka_ready() {
  (cd "$REPO" && KAFKA_BROKERS="$(_kafka_brokers)" TOPIC_REPLICATION_FACTOR="$(_kafka_rf)" node_modules/.bin/tsx scripts/kafka-topics.ts) \
    || die "kafka: creating topics failed; see $(svc_log kafka)"
}

kafka_env() {
  echo "KAFKA_BROKERS=$(_kafka_brokers)"
  if [ "$NODES" -gt 1 ]; then echo "TOPIC_REPLICATION_FACTOR=$(_kafka_rf)"; fi
}

kafka_where() {
  if [ "$NODES" -gt 1 ]; then printf '%s (EXTERNAL; INTERNAL on :29092 of each), RF %s' "$(_kafka_brokers)" "$(_kafka_rf)"; return; fi
  printf '127.0.0.1:%s (EXTERNAL), 127.0.0.1:29092 (INTERNAL)' "$KAFKA_PORT"
}
