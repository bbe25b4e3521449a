import { strict as assert } from "node:assert";
import {
  jmxAgent,
  jmxExporterConfig,
  withJmxAgent,
  type JvmRole,
  type JvmServiceSpec,
} from "../../../infra/monitoring/jmx";
import { alertGroups } from "../../../infra/monitoring/alerts";
import { monitoringSettings } from "../../../infra/monitoring/settings";

type Rule = { pattern: string; name: string; labels?: Record<string, string> };

/** The series name the agent makes of one MBean attribute (its first matching rule, lowercased), or undefined. */
function seriesOf(role: JvmRole, bean: string): string | undefined {
  const rules = parseRules(jmxExporterConfig(role));
  for (const r of rules) {
    const m = new RegExp(`^${r.pattern}`).exec(bean);
    if (m) return r.name.replace(/\$(\d)/g, (_, i: string) => m[Number(i)]).toLowerCase();
  }
  return undefined;
}

/** The rules of the YAML jmxExporterConfig writes (quoted JSON scalars, two-space lists). */
function parseRules(yaml: string): Rule[] {
  const rules: Rule[] = [];
  for (const line of yaml.split("\n")) {
    const p = /^ {2}- pattern: (".*")$/.exec(line);
    if (p) rules.push({ pattern: JSON.parse(p[1]) as string, name: "" });
    const n = /^ {4}name: (".*")$/.exec(line);
    if (n) rules[rules.length - 1].name = JSON.parse(n[1]) as string;
  }
  return rules;
}

describe("monitoring: the JMX exporter agent in Kafka, ZooKeeper and Cassandra", () => {
  it("gives the MBeans the alerts read the names the alerts select", () => {
    const exprs = alertGroups(monitoringSettings()).flatMap((g) => g.rules.map((r) => ("expr" in r ? r.expr : "")));
    const cases: [JvmRole, string, string][] = [
      [
        "kafka",
        "kafka.server<type=ReplicaManager, name=UnderReplicatedPartitions><>Value",
        "kafka_server_replicamanager_underreplicatedpartitions",
      ],
      [
        "kafka",
        "kafka.controller<type=KafkaController, name=OfflinePartitionsCount><>Value",
        "kafka_controller_kafkacontroller_offlinepartitionscount",
      ],
      [
        "cassandra",
        "org.apache.cassandra.net<type=FailureDetector><>DownEndpointCount",
        "cassandra_failuredetector_downendpointcount",
      ],
    ];
    for (const [role, bean, name] of cases) {
      assert.equal(seriesOf(role, bean), name, bean);
      assert.ok(
        exprs.some((e) => e.includes(name)),
        `no alert reads ${name}`,
      );
    }
  });

  it("names per-topic counters with their topic and ZooKeeper's attributes by role", () => {
    assert.equal(
      seriesOf("kafka", "kafka.server<type=BrokerTopicMetrics, name=MessagesInPerSec, topic=users_created><>Count"),
      "kafka_server_brokertopicmetrics_messagesin_total",
    );
    assert.equal(
      seriesOf(
        "zookeeper",
        "org.apache.ZooKeeperService<name0=ReplicatedServer_id2, name1=replica.2, name2=Follower><>NumAliveConnections",
      ),
      "zookeeper_numaliveconnections",
    );
    assert.equal(
      seriesOf("zookeeper", "org.apache.ZooKeeperService<name0=StandaloneServer_port2181><>OutstandingRequests"),
      "zookeeper_outstandingrequests",
    );
    assert.equal(
      seriesOf("cassandra", "org.apache.cassandra.metrics<type=Table, keyspace=x, name=ReadLatency><>Count"),
      undefined,
    );
  });

  it("asks only the MBeans its rules read (a Cassandra node has thousands)", () => {
    for (const role of ["kafka", "zookeeper", "cassandra"] as const) {
      const yaml = jmxExporterConfig(role);
      assert.match(yaml, /^includeObjectNames:\n( {2}- ".+"\n)+/m, role);
      assert.match(yaml, /^lowercaseOutputName: true$/m, role);
    }
  });

  it("adds the agent to what the start script already hands the JVM, and declares its port for Prometheus", () => {
    const spec: JvmServiceSpec = {
      env: { KAFKA_OPTS: "-Dzookeeper.4lw.commands.whitelist=*" },
      ports: { client: { container: 2181 } },
    };
    const out = withJmxAgent(spec, "zookeeper", "agent:1", "KAFKA_OPTS");
    const opt = jmxAgent("zookeeper", "agent:1").javaOption;
    assert.equal(opt, "-javaagent:/opt/jmx-agent/jmx_prometheus_javaagent.jar=9404:/etc/jmx-exporter/zookeeper.yml");
    assert.equal(out.env.KAFKA_OPTS, `-Dzookeeper.4lw.commands.whitelist=* ${opt}`);
    assert.deepEqual(out.ports.jmx, { container: 9404 });
    assert.deepEqual(out.metrics, { port: "jmx" });
    assert.deepEqual(out.imageFolders, [{ image: "agent:1", from: "/opt/jmx-agent", path: "/opt/jmx-agent" }]);
    assert.deepEqual(
      out.files?.map((f) => f.path),
      ["/etc/jmx-exporter/zookeeper.yml"],
    );
    const bare: JvmServiceSpec = { env: {}, ports: {} };
    assert.equal(
      withJmxAgent(bare, "kafka", "agent:1", "KAFKA_OPTS").env.KAFKA_OPTS,
      jmxAgent("kafka", "agent:1").javaOption,
    );
    assert.equal(withJmxAgent(spec, "zookeeper", undefined, "KAFKA_OPTS"), spec);
  });
});
