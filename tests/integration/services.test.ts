/**
 * Smoke test of the local services that scripts/services starts: each one really answers.
 * Needs `scripts/services up` (npm run test:integration does it).
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { Client } from "pg";
import { Client as CassandraClient, auth } from "cassandra-driver";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { DLQ_TOPIC, USERS_TOPIC, USERS_VALUE_SUBJECT } from "../../runtime/contracts/names";
import { loadServicesEnv } from "../support/services";
import { sampleRecord } from "../support/registry";

/** ZooKeeper's four-letter-word command over a raw socket. */
async function zk4lw(cmd: string, port = 2181): Promise<string> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port }, () => sock.write(cmd));
    let out = "";
    sock.setTimeout(5000, () => sock.destroy(new Error(`zookeeper ${cmd}: timeout`)));
    sock.on("data", (d) => (out += d.toString()));
    sock.on("end", () => resolve(out));
    sock.on("error", reject);
  });
}

describe("local services (scripts/services)", function () {
  this.timeout(60_000);

  it("PostgreSQL answers SQL as the pipeline user", async () => {
    const env = loadServicesEnv(["PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER", "PG_PASSWORD"]);
    const pg = new Client({
      host: env.PG_HOST,
      port: Number(env.PG_PORT),
      database: env.PG_DATABASE,
      user: env.PG_USER,
      password: env.PG_PASSWORD,
    });
    await pg.connect();
    try {
      const r = await pg.query<{ db: string; usr: string; v: string }>(
        "SELECT current_database() AS db, current_user AS usr, current_setting('server_version_num') AS v",
      );
      assert.equal(r.rows[0].db, "pipeline");
      assert.equal(r.rows[0].usr, "pipeline");
      assert.ok(Number(r.rows[0].v) >= 150000 && Number(r.rows[0].v) < 160000, `PostgreSQL 15, got ${r.rows[0].v}`);
    } finally {
      await pg.end();
    }
  });

  it("ZooKeeper answers ruok with imok", async () => {
    assert.equal(await zk4lw("ruok"), "imok");
  });

  it("Kafka gives metadata and holds the pipeline topics", async () => {
    const env = loadServicesEnv(["KAFKA_BROKERS"]);
    const kafka = new Kafka({
      clientId: "services-smoke",
      brokers: env.KAFKA_BROKERS.split(","),
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      assert.equal(cluster.brokers.length, 1);
      assert.equal(cluster.brokers[0].host, "127.0.0.1");
      const meta = await admin.fetchTopicMetadata({ topics: [USERS_TOPIC, DLQ_TOPIC] });
      const users = meta.topics.find((t) => t.name === USERS_TOPIC);
      assert.equal(users?.partitions.length, 6);
      assert.ok(meta.topics.find((t) => t.name === DLQ_TOPIC));
    } finally {
      await admin.disconnect();
    }
  });

  it("Schema Registry speaks Confluent's REST API: subjects, register, encode, decode", async () => {
    const env = loadServicesEnv(["SCHEMA_REGISTRY_URL"]);
    const res = await fetch(`${env.SCHEMA_REGISTRY_URL}/subjects`);
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(await res.json()));

    const registry = new SchemaRegistry({ host: env.SCHEMA_REGISTRY_URL });
    const schema = readFileSync(join(__dirname, "../../runtime/contracts/user-created.avsc"), "utf8");
    const { id } = await registry.register({ type: SchemaType.AVRO, schema }, { subject: USERS_VALUE_SUBJECT });
    assert.ok(Number.isInteger(id) && id > 0);
    // Not the subject's latest: a compatible evolution (the fault suite registers one) may follow ours.
    assert.equal(await registry.getRegistryIdBySchema(USERS_VALUE_SUBJECT, { type: SchemaType.AVRO, schema }), id);

    const record = sampleRecord(JSON.parse(schema));
    const bytes = await registry.encode(id, record);
    assert.equal(bytes[0], 0, "Confluent wire format: magic byte 0");
    assert.equal(bytes.readInt32BE(1), id, "Confluent wire format: schema id");
    assert.deepEqual({ ...(await registry.decode(bytes)) }, record);
  });

  it("Cassandra answers CQL with password auth", async () => {
    const env = loadServicesEnv([
      "CASSANDRA_CONTACT_POINTS",
      "CASSANDRA_LOCAL_DC",
      "CASSANDRA_USER",
      "CASSANDRA_PASSWORD",
      "CASSANDRA_REPLICATION_FACTOR",
    ]);
    const client = new CassandraClient({
      contactPoints: env.CASSANDRA_CONTACT_POINTS.split(","),
      localDataCenter: env.CASSANDRA_LOCAL_DC,
      authProvider: new auth.PlainTextAuthProvider(env.CASSANDRA_USER, env.CASSANDRA_PASSWORD),
    });
    await client.connect();
    try {
      const rs = await client.execute("SELECT release_version, data_center FROM system.local");
      assert.match(String(rs.first().release_version), /^5\.0\./);
      assert.equal(rs.first().data_center, env.CASSANDRA_LOCAL_DC);
    } finally {
      await client.shutdown();
    }
    const wrong = new CassandraClient({
      contactPoints: env.CASSANDRA_CONTACT_POINTS.split(","),
      localDataCenter: env.CASSANDRA_LOCAL_DC,
      authProvider: new auth.PlainTextAuthProvider(env.CASSANDRA_USER, "not-the-password"),
    });
    await assert.rejects(wrong.connect(), /auth|credentials|password/i);
    await wrong.shutdown();
  });
});
