/**
 * The Prometheus JMX exporter's Java agent in the brokers, ZooKeeper and Cassandra: its config per
 * JVM and what a process spec needs to load it. Each config names only the MBeans its rules read
 * (a Cassandra node has thousands; asking all of them costs seconds of CPU per scrape), and the
 * rules give the names the alerts select on (alerts.ts): kafka_<domain>_<type>_<name>,
 * cassandra_failuredetector_downendpointcount, zookeeper_<attribute>. The agent adds the JVM's own
 * jvm_* and process_* series.
 */
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "../catalog/settings";
import { toYaml, type Yaml } from "../catalog/yaml";

export type JvmRole = "kafka" | "zookeeper" | "cassandra";

/** Where the agent's jar is, in the agent image (images/jmx-agent) and in the processes. */
export const JMX_AGENT_DIR = "/opt/jmx-agent";
const JAR = `${JMX_AGENT_DIR}/jmx_prometheus_javaagent.jar`;
const CONFIG_DIR = "/etc/jmx-exporter";

const gauge = (pattern: string, name: string, labels?: Record<string, string>): Yaml => ({
  pattern,
  name,
  type: "GAUGE",
  ...(labels ? { labels } : {}),
});
const counter = (pattern: string, name: string, labels?: Record<string, string>): Yaml => ({
  pattern,
  name,
  type: "COUNTER",
  ...(labels ? { labels } : {}),
});

const ZK_ATTRS =
  "(OutstandingRequests|AvgRequestLatency|MaxRequestLatency|NumAliveConnections|PacketsReceived|PacketsSent)";

const CONFIGS: Record<JvmRole, { includeObjectNames: string[]; rules: Yaml[] }> = {
  kafka: {
    includeObjectNames: [
      "kafka.server:type=BrokerTopicMetrics,*",
      "kafka.server:type=ReplicaManager,*",
      "kafka.controller:type=KafkaController,*",
      "kafka.network:type=RequestMetrics,name=RequestsPerSec,*",
    ],
    rules: [
      counter(
        "kafka.server<type=BrokerTopicMetrics, name=(\\w+)PerSec, topic=(.+)><>Count",
        "kafka_server_brokertopicmetrics_$1_total",
        { topic: "$2" },
      ),
      counter(
        "kafka.server<type=BrokerTopicMetrics, name=(\\w+)PerSec><>Count",
        "kafka_server_brokertopicmetrics_$1_total",
      ),
      counter(
        "kafka.network<type=RequestMetrics, name=RequestsPerSec, request=(\\w+), version=(\\d+)><>Count",
        "kafka_network_requestmetrics_requests_total",
        { request: "$1", version: "$2" },
      ),
      // UnderReplicatedPartitions, OfflinePartitionsCount, ActiveControllerCount, ...
      gauge("kafka.(\\w+)<type=(\\w+), name=(\\w+)><>Value", "kafka_$1_$2_$3"),
    ],
  },
  zookeeper: {
    includeObjectNames: ["org.apache.ZooKeeperService:*"],
    rules: [
      gauge(
        `org.apache.ZooKeeperService<name0=ReplicatedServer_id(\\d+), name1=replica.(\\d+), name2=(\\w+)><>${ZK_ATTRS}`,
        "zookeeper_$4",
        { server_id: "$1", role: "$3" },
      ),
      gauge(`org.apache.ZooKeeperService<name0=StandaloneServer_port(\\d+)><>${ZK_ATTRS}`, "zookeeper_$2", {
        role: "Standalone",
      }),
    ],
  },
  cassandra: {
    includeObjectNames: [
      "org.apache.cassandra.net:type=FailureDetector",
      "org.apache.cassandra.metrics:type=ClientRequest,*",
      "org.apache.cassandra.metrics:type=Storage,*",
      "org.apache.cassandra.metrics:type=CommitLog,*",
    ],
    rules: [
      gauge(
        "org.apache.cassandra.net<type=FailureDetector><>(Down|Up)EndpointCount",
        "cassandra_failuredetector_$1endpointcount",
      ),
      counter(
        "org.apache.cassandra.metrics<type=ClientRequest, scope=(\\w+), name=(Latency|Timeouts|Unavailables|Failures)><>Count",
        "cassandra_clientrequest_$2_total",
        { scope: "$1" },
      ),
      gauge(
        "org.apache.cassandra.metrics<type=ClientRequest, scope=(\\w+), name=Latency><>(\\d+)thPercentile",
        "cassandra_clientrequest_latency_microseconds",
        { scope: "$1", quantile: "0.$2" },
      ),
      gauge("org.apache.cassandra.metrics<type=Storage, name=(\\w+)><>(Count|Value)", "cassandra_storage_$1"),
      gauge("org.apache.cassandra.metrics<type=CommitLog, name=(\\w+)><>(Count|Value)", "cassandra_commitlog_$1"),
    ],
  },
};

/** The agent's config file for one kind of JVM (YAML). */
export function jmxExporterConfig(role: JvmRole): string {
  const c = CONFIGS[role];
  return toYaml({
    lowercaseOutputName: true,
    lowercaseOutputLabelNames: true,
    includeObjectNames: c.includeObjectNames,
    rules: c.rules,
  });
}

/**
 * The parts of a service spec (infra/spec.ts) the agent touches, written out here so that the
 * catalog stays below the spec in the folder picture; a ServiceSpec is one of these.
 */
interface AgentFolder {
  image: pulumi.Input<string>;
  from: string;
  path: string;
}
export interface JvmServiceSpec {
  env: Record<string, pulumi.Input<string>>;
  files?: { path: string; content: string; executable?: boolean }[];
  imageFolders?: AgentFolder[];
  ports: Record<string, { container: number; published?: number }>;
  metrics?: { port: string; path?: string };
}

/** What a JVM's process spec adds to run the agent. */
export interface JmxAgent {
  imageFolders: AgentFolder[];
  files: { path: string; content: string }[];
  /** The JVM option that loads the agent (into KAFKA_OPTS, JVM_EXTRA_OPTS). */
  javaOption: string;
  port: { container: number };
}

/** The agent from `agentImage` (images/jmx-agent), serving /metrics on PORTS.jmxExporter. */
export function jmxAgent(role: JvmRole, agentImage: pulumi.Input<string>): JmxAgent {
  const config = `${CONFIG_DIR}/${role}.yml`;
  return {
    imageFolders: [{ image: agentImage, from: JMX_AGENT_DIR, path: JMX_AGENT_DIR }],
    files: [{ path: config, content: jmxExporterConfig(role) }],
    javaOption: `-javaagent:${JAR}=${PORTS.jmxExporter}:${config}`,
    port: { container: PORTS.jmxExporter },
  };
}

/**
 * `spec` with the agent loaded (`optsVar` is the variable its start script passes to the JVM, kept
 * with what it held) and its metrics port declared for Prometheus; `spec` as is without an image.
 */
export function withJmxAgent<T extends JvmServiceSpec>(
  spec: T,
  role: JvmRole,
  agentImage: pulumi.Input<string> | undefined,
  optsVar: string,
): T {
  if (agentImage === undefined) return spec;
  const a = jmxAgent(role, agentImage);
  const prior = spec.env[optsVar];
  return {
    ...spec,
    env: { ...spec.env, [optsVar]: joinOptions(prior, a.javaOption) },
    files: [...(spec.files ?? []), ...a.files],
    imageFolders: [...(spec.imageFolders ?? []), ...a.imageFolders],
    ports: { ...spec.ports, jmx: a.port },
    metrics: { port: "jmx" },
  };
}

function joinOptions(prior: pulumi.Input<string> | undefined, option: string): pulumi.Input<string> {
  if (prior === undefined || prior === "") return option;
  return typeof prior === "string" ? `${prior} ${option}` : pulumi.interpolate`${prior} ${option}`;
}
