# ZooKeeper 3.8 from Debian's package `zookeeper` (its jar's manifest carries its classpath),
# standalone on 127.0.0.1:2181, zoo.cfg rendered from zookeeperSettings().
# Fallback when the Debian jar is not there: the org.apache.zookeeper jars that the Kafka broker's
# Maven dependencies already bring (same 3.8 line), so no second download.
# --nodes N: an ensemble, member i on $(member_host i):2181 (peers 2888, election 3888 on the same
# address), server id i+1, its own dir $RUN/zookeeper-<i>; healthy when every member is in the
# quorum (`srvr` says leader or follower).
# Sourced by scripts/services; see the convention at its top.

ZK_PORT=2181

_zk_classpath() {
  if [ -f /usr/share/java/zookeeper.jar ] && [ -f /usr/share/java/slf4j-simple.jar ]; then
    printf '/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar'
  else
    kafka_install >&2
    printf '%s/*' "$(_kafka_lib)"
  fi
}

zookeeper_install() {
  [ -f /usr/share/java/zookeeper.jar ] || { log "zookeeper: Debian jar missing, using the Maven jars"; kafka_install; }
}

_zk_log4j() {
  printf 'log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%%d] %%p %%m (%%c)%%n\n' >"$1/log4j.properties"
}

_zk_start_member() {
  local i="$1" d="$2"
  echo "$((i + 1))" >"$d/data/myid"
  MEMBER="$i" render_config zookeeper "$d/zoo.cfg"
  _zk_log4j "$d"
  spawn "zookeeper-$i" "$(java_bin)" -Xms32m -Xmx128m -XX:+UseSerialGC \
    -Dorg.slf4j.simpleLogger.showDateTime=true -Dzookeeper.jmx.log4j.disable=true \
    -Dlog4j.configuration="file:$d/log4j.properties" \
    -cp "$(_zk_classpath)" org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg"
}

zookeeper_running() { if [ "$NODES" -gt 1 ]; then members_running zookeeper; else pid_alive zookeeper; fi; }
zookeeper_stop() { if [ "$NODES" -gt 1 ]; then members_stop zookeeper; else stop_pid zookeeper; fi; }

zookeeper_start() {
  if [ "$NODES" -gt 1 ]; then members_start zookeeper "$ZK_PORT" _zk_start_member; return; fi
  local d; d="$(svc_dir zookeeper)"
  mkdir -p "$d/data"
  render_config zookeeper "$d/zoo.cfg"
  # Used by the Maven-jar fallback (reload4j); the Debian path logs through slf4j-simple.
  printf 'log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%%d] %%p %%m (%%c)%%n\n' >"$d/log4j.properties"
  port_open "$ZK_PORT" && die "port $ZK_PORT is taken by another process (not ours)"
  spawn zookeeper "$(java_bin)" -Xms64m -Xmx256m -XX:+UseG1GC \
    -Dorg.slf4j.simpleLogger.showDateTime=true -Dzookeeper.jmx.log4j.disable=true \
    -Dlog4j.configuration="file:$d/log4j.properties" \
    -cp "$(_zk_classpath)" org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg"
}

# ZooKeeper's four-letter words: "ruok" answers "imok". zk_4lw <word> [host]
zk_4lw() {
  local out
  exec 3<>"/dev/tcp/${2:-127.0.0.1}/$ZK_PORT" || return 1
  printf '%s' "$1" >&3
  out="$(timeout 5 cat <&3)"
  exec 3<&- 3>&-
  printf '%s' "$out"
}

zookeeper_healthy() {
  if [ "$NODES" -eq 1 ]; then [ "$(zk_4lw ruok 2>/dev/null)" = "imok" ]; return; fi
  local i
  for i in $(members); do
    zk_4lw srvr "$(member_host "$i")" 2>/dev/null | grep -Eq '^Mode: (leader|follower)' || return 1
  done
}

zookeeper_timeout() { echo 180; }

zookeeper_where() {
  local i out=()
  for i in $(members); do out+=("$(member_host "$i"):$ZK_PORT"); done
  local IFS=,; printf '%s' "${out[*]}"
}
