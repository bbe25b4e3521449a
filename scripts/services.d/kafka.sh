# Kafka broker, the 3.9 line in ZooKeeper mode (as the Confluent Platform 7.9 images), from the
# Apache Kafka jars on Maven Central: scripts/maven/kafka/pom.xml lists them, mvn copies them into
# $DOWNLOADS/kafka/<version>/lib once. Run as `java -cp 'lib/*' kafka.Kafka server.properties`,
# server.properties rendered from kafkaBrokerSettings(): INTERNAL 127.0.0.1:29092 and EXTERNAL
# 127.0.0.1:9092, replication 1, auto.create.topics.enable=false.
# Topics: after start, scripts/kafka-topics.ts creates users_created (6 partitions) and
# users_created.dlq (1 partition) if absent, as a convenience; the workers ensure them too.
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

kafka_start() {
  local d; d="$(svc_dir kafka)"
  mkdir -p "$d/data"
  render_config kafka "$d/server.properties"
  cat >"$d/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.org.apache.zookeeper=WARN
PROPS
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process (not ours)"
  spawn kafka "$(java_bin)" -Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d" \
    -cp "$(_kafka_lib)/*" kafka.Kafka "$d/server.properties"
}

# Healthy: both listeners accept and the broker logged "started" since its last start.
kafka_healthy() {
  port_open "$KAFKA_PORT" && port_open 29092 || return 1
  awk '/^===== .* start: /{ok=0} /\[KafkaServer id=[0-9]+\] started/{ok=1} END{exit !ok}' "$(svc_log kafka)"
}

kafka_timeout() { echo 180; }

# After a crash, the broker's registration in ZooKeeper lives until its session times out
# (18 s): a start before then exits with NodeExistsException. Start again, up to 4 times.
kafka_start_attempts() { echo 4; }

kafka_ready() {
  (cd "$REPO" && KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" node_modules/.bin/tsx scripts/kafka-topics.ts) \
    || die "kafka: creating topics failed; see $(svc_log kafka)"
}

kafka_env() { echo "KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"; }

kafka_where() { printf '127.0.0.1:%s (EXTERNAL), 127.0.0.1:29092 (INTERNAL)' "$KAFKA_PORT"; }
