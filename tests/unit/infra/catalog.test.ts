import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cassandraAuthCommand, confluentEnv, SEED_WAIT, zookeeperEnv } from "../../../infra/catalog/images";
import { kafkaBrokerSettings, zookeeperSettings } from "../../../infra/catalog/settings";

describe("infra: image env conventions", () => {
  it("Confluent: KAFKA_ + upper case, . → _, _ → __, - → ___", () => {
    assert.deepEqual(
      confluentEnv("KAFKA", { "zookeeper.connect": "zookeeper:2181", "log.retention_ms": "1", "a-b.c": "2" }),
      {
        KAFKA_ZOOKEEPER_CONNECT: "zookeeper:2181",
        KAFKA_LOG_RETENTION__MS: "1",
        KAFKA_A___B_C: "2",
      },
    );
  });

  it("every broker setting of the shared catalog reaches the Kafka image", () => {
    const s = kafkaBrokerSettings({
      brokerId: 1,
      zookeeperConnect: "zookeeper:2181",
      logDirs: "/var/lib/kafka/data",
      replicationFactor: 1,
      listeners: { internal: "0.0.0.0:29092", external: "0.0.0.0:9092" },
      advertised: { internal: "kafka:29092", external: "127.0.0.1:9092" },
    });
    const env = confluentEnv("KAFKA", s);
    assert.equal(Object.keys(env).length, Object.keys(s).length);
    assert.equal(env.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP, "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT");
    assert.equal(env.KAFKA_AUTO_CREATE_TOPICS_ENABLE, "false");
  });

  it("ZooKeeper: zoo.cfg keys as ZOOKEEPER_*, dotted keys as zookeeper.* system properties", () => {
    const env = zookeeperEnv(zookeeperSettings({ dataDir: "/var/lib/zookeeper/data" }));
    assert.equal(env.ZOOKEEPER_CLIENT_PORT, "2181");
    assert.equal(env.ZOOKEEPER_TICK_TIME, "2000");
    assert.match(env.KAFKA_OPTS, /-Dzookeeper\.4lw\.commands\.whitelist=ruok,srvr,mntr/);
    assert.match(env.KAFKA_OPTS, /-Dzookeeper\.admin\.enableServer=false/);
    assert.ok(!("ZOOKEEPER_DATA_DIR" in env), "the image fixes its data dir");
  });

  it("Cassandra: the start command turns on password auth in both yaml forms and writes the durability keys once, then runs the entrypoint", () => {
    const keys = {
      authenticator: "PasswordAuthenticator",
      authorizer: "CassandraAuthorizer",
      commitlog_sync: "group",
      commitlog_sync_group_window: "10ms",
      commitlog_sync_period: "0ms",
      concurrent_writes: 128,
    };
    const [, , script] = cassandraAuthCommand(keys);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cass-"));
    const yaml = path.join(dir, "cassandra.yaml");
    // 5.0 writes the authenticator as a block; older files as one line.
    fs.writeFileSync(
      yaml,
      "authenticator:\n  class_name : org.apache.cassandra.auth.AllowAllAuthenticator\nauthorizer: AllowAllAuthorizer\nrole_manager: CassandraRoleManager\ncommitlog_sync: periodic\ncommitlog_sync_period: 10000ms\n# commitlog_sync_group_window: 1000ms\nconcurrent_writes: 32\n",
    );
    const edits = script
      .replace(/ && \{ timeout .* \|\| true; \} && exec docker-entrypoint\.sh cassandra -f$/, "")
      .replaceAll("/etc/cassandra/cassandra.yaml", yaml);
    const want =
      "authenticator: PasswordAuthenticator\nauthorizer: CassandraAuthorizer\nrole_manager: CassandraRoleManager\n# commitlog_sync_group_window: 1000ms\n" +
      "commitlog_sync: group\ncommitlog_sync_group_window: 10ms\ncommitlog_sync_period: 0ms\nconcurrent_writes: 128\n";
    execFileSync("bash", ["-c", edits]);
    assert.equal(fs.readFileSync(yaml, "utf8"), want);
    // A restart runs it again on the same file: still one line per key.
    execFileSync("bash", ["-c", edits]);
    assert.equal(fs.readFileSync(yaml, "utf8"), want);
    fs.rmSync(dir, { recursive: true });
    assert.match(script, /exec docker-entrypoint\.sh cassandra -f$/);
  });

  it("Cassandra: the start command waits for the first seed's name to resolve (a member's DNS name lags its pod)", () => {
    const run = (seeds: string) =>
      execFileSync("bash", ["-c", SEED_WAIT.replace("timeout 120", "timeout 0.3") + "; echo $?"], {
        env: { ...process.env, CASSANDRA_SEEDS: seeds },
        encoding: "utf8",
      }).trim();
    assert.equal(run("localhost,cassandra-1.invalid"), "0");
    assert.equal(run("cassandra-0.invalid,localhost"), "124");
    assert.ok(
      cassandraAuthCommand({
        authenticator: "a",
        authorizer: "b",
        commitlog_sync: "group",
        commitlog_sync_group_window: "1ms",
        commitlog_sync_period: "0ms",
        concurrent_writes: 1,
      })[2].includes(`{ ${SEED_WAIT} || true; } && exec`),
    );
  });
});
