/**
 * The images the stacks run and how each one takes its settings. Upstream images are pinned to
 * the versions of the stage config; the env conventions are the images' own (Confluent images
 * read KAFKA_ZOOKEEPER_CONNECT for zookeeper.connect), so they live here, beside the settings
 * (settings.ts) they translate, and not in a target.
 */

/** The versions the upstream images are pinned to (the stage config's). */
export interface UpstreamVersions {
  postgresVersion: string;
  confluentVersion: string;
  cassandraVersion: string;
  sparkVersion: string;
  prometheusVersion: string;
}

export function upstreamImages(c: UpstreamVersions) {
  return {
    postgres: `postgres:${c.postgresVersion}-bookworm`,
    zookeeper: `confluentinc/cp-zookeeper:${c.confluentVersion}`,
    kafka: `confluentinc/cp-kafka:${c.confluentVersion}`,
    schemaRegistry: `confluentinc/cp-schema-registry:${c.confluentVersion}`,
    controlCenter: `confluentinc/cp-enterprise-control-center:${c.confluentVersion}`,
    /** Aiven's Karapace (Apache-2.0), the schemaRegistry: karapace choice; its own version line. */
    karapace: "ghcr.io/aiven-open/karapace:5.0.3",
    cassandra: `cassandra:${c.cassandraVersion}`,
    // The Python variant: the streaming job is PySpark.
    spark: `apache/spark:${c.sparkVersion}-scala2.12-java17-python3-ubuntu`,
    prometheus: `prom/prometheus:v${c.prometheusVersion}`,
    // The exporters beside Prometheus: their own version lines, pinned here.
    postgresExporter: "quay.io/prometheuscommunity/postgres-exporter:v0.11.1",
    pushgateway: "prom/pushgateway:v1.5.1",
    statsdExporter: "prom/statsd-exporter:v0.28.0",
    nodeExporter: "prom/node-exporter:v1.5.0",
  };
}

/** Confluent's convention: `KAFKA_` + key upper-cased, `.` → `_`, `_` → `__`, `-` → `___`. */
export function confluentEnv(prefix: string, settings: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(settings)) {
    env[`${prefix}_${k.replace(/_/g, "__").replace(/-/g, "___").replace(/\./g, "_").toUpperCase()}`] = v;
  }
  return env;
}

/**
 * cp-zookeeper writes zoo.cfg from ZOOKEEPER_<CAMEL_AS_SNAKE> for its plain keys and keeps its data
 * in /var/lib/zookeeper/data; dotted keys are ZooKeeper system properties (zookeeper.<key>).
 */
export function zookeeperEnv(settings: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const props: string[] = [];
  for (const [k, v] of Object.entries(settings)) {
    if (k === "dataDir") continue;
    if (k.includes(".")) props.push(`-Dzookeeper.${k}=${v}`);
    else env[`ZOOKEEPER_${k.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()}`] = v;
  }
  if (props.length) env.KAFKA_OPTS = props.join(" ");
  return env;
}

/** The official cassandra image takes these cassandra.yaml keys from CASSANDRA_* variables. */
export function cassandraEnv(
  s: {
    cluster_name: string;
    seed_provider: { parameters: { seeds: string }[] }[];
    endpoint_snitch: string;
    num_tokens: number;
  },
  dc: string,
) {
  return {
    CASSANDRA_CLUSTER_NAME: s.cluster_name,
    CASSANDRA_SEEDS: s.seed_provider[0].parameters[0].seeds,
    CASSANDRA_ENDPOINT_SNITCH: s.endpoint_snitch,
    CASSANDRA_NUM_TOKENS: String(s.num_tokens),
    CASSANDRA_DC: dc,
  };
}

/**
 * The image has no variable for authenticator/authorizer: set them in its cassandra.yaml before
 * the entrypoint starts. Cassandra 5.0 writes `authenticator:` as a block with `class_name`, so
 * the block's next line goes with it.
 */
/** The cassandra.yaml keys the image's env cannot set and its start command writes. */
const DURABILITY_KEYS = [
  "commitlog_sync",
  "commitlog_sync_group_window",
  "commitlog_sync_period",
  "concurrent_writes",
] as const;
type CassandraYamlKeys = { authenticator: string; authorizer: string } & Record<
  (typeof DURABILITY_KEYS)[number],
  string | number
>;

/** Until the first of CASSANDRA_SEEDS resolves, at most 120 s. */
export const SEED_WAIT = `timeout 120 bash -c 'until getent hosts "\${CASSANDRA_SEEDS%%,*}" >/dev/null; do sleep 1; done'`;

export function cassandraAuthCommand(s: CassandraYamlKeys): string[] {
  const yaml = "/etc/cassandra/cassandra.yaml";
  // Durability keys: any line of the image's own removed, ours appended (one value per key).
  const durable = DURABILITY_KEYS.map((k) => `${k}: ${s[k]}`).join("\\n");
  const script = [
    `sed -i -E -e '/^authenticator:/{s/.*/authenticator: ${s.authenticator}/;n;/^[[:space:]]+class_name/d}' -e '/^authorizer:/{s/.*/authorizer: ${s.authorizer}/;n;/^[[:space:]]+class_name/d}' ${yaml}`,
    `sed -i -E '/^(${DURABILITY_KEYS.join("|")}):/d' ${yaml}`,
    `printf '${durable}\\n' >> ${yaml}`,
    // Cassandra exits at once when no seed name resolves, and a StatefulSet member's own name
    // appears in DNS a few seconds after its pod: wait for the first seed (bounded) instead.
    `{ ${SEED_WAIT} || true; }`,
    `exec docker-entrypoint.sh cassandra -f`,
  ].join(" && ");
  return ["bash", "-c", script];
}

/** A JVM heap of `mib` (rounded down), as -Xms/-Xmx: a fixed heap well inside the container limit. */
export function jvmHeap(mib: number): string {
  const m = Math.max(64, Math.floor(mib));
  return `-Xms${m}m -Xmx${m}m`;
}
