/**
 * The local services' config files are rendered from infra/catalog/settings.ts (the settings the
 * stacks deploy), and the tests read the services' environment through tests/support/services.ts.
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toYaml } from "../../infra/catalog/yaml";
import { cassandraYaml, kafkaServerProperties, zooCfg } from "../../scripts/render-config";
import { kafkaBrokerSettings } from "../../infra/catalog/settings";
import { loadServicesEnv, parseEnvFile } from "../support/services";

const props = (text: string) =>
  Object.fromEntries(
    text
      .trim()
      .split("\n")
      .map((l) => l.split(/=(.*)/s).slice(0, 2)),
  );

describe("scripts/render-config", () => {
  it("renders server.properties from kafkaBrokerSettings with loopback listeners", () => {
    const p = props(kafkaServerProperties("/state/run"));
    assert.equal(p["listeners"], "INTERNAL://127.0.0.1:29092,EXTERNAL://127.0.0.1:9092");
    assert.equal(p["advertised.listeners"], "INTERNAL://127.0.0.1:29092,EXTERNAL://127.0.0.1:9092");
    assert.equal(p["zookeeper.connect"], "127.0.0.1:2181");
    assert.equal(p["log.dirs"], "/state/run/kafka/data");
    assert.equal(p["offsets.topic.replication.factor"], "1");
    // Every key the stacks set is in the local file, with the same value where not local-specific.
    const shared = kafkaBrokerSettings({
      brokerId: 1,
      zookeeperConnect: "x",
      listeners: { internal: "a", external: "b" },
      advertised: { internal: "a", external: "b" },
      logDirs: "d",
      replicationFactor: 1,
    });
    for (const k of Object.keys(shared)) assert.ok(k in p, `server.properties lacks ${k}`);
    assert.equal(p["auto.create.topics.enable"], shared["auto.create.topics.enable"]);
  });

  it("renders zoo.cfg bound to loopback with the four-letter words the health check uses", () => {
    const p = props(zooCfg("/state/run"));
    assert.equal(p["clientPortAddress"], "127.0.0.1");
    assert.equal(p["clientPort"], "2181");
    assert.equal(p["dataDir"], "/state/run/zookeeper/data");
    assert.match(p["4lw.commands.whitelist"], /ruok/);
  });

  it("renders cassandra.yaml with our shared keys winning over the base", () => {
    const y = cassandraYaml("/state/run");
    assert.match(y, /^authenticator: "PasswordAuthenticator"$/m);
    assert.match(y, /^endpoint_snitch: "GossipingPropertyFileSnitch"$/m);
    assert.match(y, /^listen_address: "127\.0\.0\.1"$/m);
    assert.match(y, /^native_transport_port: 9042$/m);
    assert.match(y, /^data_file_directories:\n {2}- "\/state\/run\/cassandra\/data"$/m);
    assert.equal(y.match(/^num_tokens:/gm)?.length, 1, "one num_tokens key");
  });

  it("emits nested YAML lists of maps in block style", () => {
    assert.equal(
      toYaml({ seed_provider: [{ class_name: "S", parameters: [{ seeds: "127.0.0.1" }] }] }),
      'seed_provider:\n  - class_name: "S"\n    parameters:\n      - seeds: "127.0.0.1"\n',
    );
  });
});

describe("tests/support/services", () => {
  const saved = process.env.PIPELINE_HOME;
  afterEach(() => {
    if (saved === undefined) delete process.env.PIPELINE_HOME;
    else process.env.PIPELINE_HOME = saved;
  });

  it("parses KEY=VALUE lines, skipping comments, keeping '=' inside values", () => {
    assert.deepEqual(parseEnvFile("# c\n\nA=1\nURL=postgresql://u:p@h/db?x=y\n"), {
      A: "1",
      URL: "postgresql://u:p@h/db?x=y",
    });
  });

  it("tells to run scripts/services up when services.env is missing or lacks a key", () => {
    const home = mkdtempSync(join(tmpdir(), "pipeline-home-"));
    process.env.PIPELINE_HOME = home;
    assert.throws(() => loadServicesEnv(), /run scripts\/services up first/);
    mkdirSync(join(home, "run"));
    writeFileSync(join(home, "run", "services.env"), "PG_HOST=127.0.0.1\n");
    assert.equal(loadServicesEnv(["PG_HOST"]).PG_HOST, "127.0.0.1");
    assert.throws(() => loadServicesEnv(["KAFKA_BROKERS"]), /lacks KAFKA_BROKERS.*run scripts\/services up first/);
  });
});

describe("scripts/render-config: a member of the replicated set (scripts/services --nodes 3)", () => {
  const m = (node: number) => ({ node, nodes: 3 });

  it("ZooKeeper member i: its own address and data dir, every member as server.1..3", () => {
    const p = props(zooCfg("/state/run-nodes3", m(1)));
    assert.equal(p.clientPortAddress, "127.0.0.3");
    assert.equal(p.dataDir, "/state/run-nodes3/zookeeper-1/data");
    assert.deepEqual(
      [p["server.1"], p["server.2"], p["server.3"]],
      ["127.0.0.2:2888:3888", "127.0.0.3:2888:3888", "127.0.0.4:2888:3888"],
    );
    assert.equal(p["server.4"], undefined);
  });

  it("Kafka broker i: id i, listeners on its own address, RF 3, min ISR 2, the ensemble", () => {
    const p = props(kafkaServerProperties("/state/run-nodes3", m(2)));
    assert.equal(p["broker.id"], "2");
    assert.equal(p["listeners"], "INTERNAL://127.0.0.4:29092,EXTERNAL://127.0.0.4:9092");
    assert.equal(p["zookeeper.connect"], "127.0.0.2:2181,127.0.0.3:2181,127.0.0.4:2181");
    assert.equal(p["default.replication.factor"], "3");
    assert.equal(p["min.insync.replicas"], "2");
    assert.equal(p["unclean.leader.election.enable"], "false");
    assert.equal(p["log.dirs"], "/state/run-nodes3/kafka-2/data");
  });

  it("Kafka broker of the local set: a 4 s ZooKeeper session on a 1 s tick (a killed broker's leaders move 4-5 s after); the single node and the stacks keep Kafka's 18 s and the 2 s tick", () => {
    assert.equal(props(kafkaServerProperties("/state/run-nodes3", m(0)))["zookeeper.session.timeout.ms"], "4000");
    const zk = props(zooCfg("/state/run-nodes3", m(1)));
    assert.deepEqual([zk.tickTime, zk.initLimit, zk.syncLimit], ["1000", "20", "10"]);
    // ZooKeeper refuses a session under 2 ticks: the broker's 4 s must stay at or above it
    assert.ok(
      Number(props(kafkaServerProperties("/state/run-nodes3", m(0)))["zookeeper.session.timeout.ms"]) >=
        2 * Number(zk.tickTime),
    );
    assert.equal(props(zooCfg("/state/run")).tickTime, "2000");
    assert.equal(props(kafkaServerProperties("/state/run"))["zookeeper.session.timeout.ms"], undefined);
    const stack = kafkaBrokerSettings({
      brokerId: 0,
      zookeeperConnect: "zk:2181",
      listeners: { internal: "a:1", external: "a:2" },
      advertised: { internal: "a:1", external: "a:2" },
      logDirs: "/d",
      replicationFactor: 3,
    });
    assert.equal(stack["zookeeper.session.timeout.ms"], undefined);
  });

  it("Cassandra node i: its own address, seeded by the first two, its own dirs", () => {
    const y = cassandraYaml("/state/run-nodes3", m(2));
    assert.match(y, /listen_address: "127\.0\.0\.4"/);
    assert.match(y, /rpc_address: "127\.0\.0\.4"/);
    assert.match(y, /seeds: "127\.0\.0\.2,127\.0\.0\.3"/);
    assert.match(y, /\/state\/run-nodes3\/cassandra-2\/commitlog/);
    assert.match(y, /allocate_tokens_for_local_replication_factor: 3/);
    // The single node keeps its own file.
    assert.match(cassandraYaml("/state/run"), /listen_address: "127\.0\.0\.1"/);
  });
});
